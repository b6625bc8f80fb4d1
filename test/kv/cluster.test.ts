// Proves the cluster end to end with real `strata kv` processes on loopback: any node serves any
// key; with replicas = 2 a SIGKILLed node loses no key (reads fail over at once, writes continue);
// when it rejoins, the keys it owns move back to it and the stand-ins drop theirs, with nothing
// lost; a node added at run time takes over its share and hands it back when stopped with
// SIGTERM; export/import round-trips the data.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HashRing } from '../../src/kv/index.js';
import { freePorts } from '../helpers/ports.js';
import { runStrata, startStrata } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { get, getJson, localKeys, put, startKvCluster } from './cluster-helper.js';
import type { KvTestCluster } from './cluster-helper.js';

interface ClusterInfo {
  nodes: { id: string; state: string; ownership: number }[];
  handoff_pending: number;
  distribution: { ownership_stddev_ratio: number };
}

/** Waits until each node holds exactly the keys whose home replica list includes it. */
async function waitForPlacement(
  c: KvTestCluster,
  ids: string[],
  keys: Map<string, unknown>,
  replicas: number,
): Promise<void> {
  const ring = new HashRing(ids, { virtualNodes: 150, probes: 5 });
  const expected = new Map(ids.map((id) => [id, new Set<string>()]));
  for (const key of keys.keys())
    for (const owner of ring.owners(key, replicas)) expected.get(owner)?.add(key);
  let last = '';
  await waitFor(
    'every key on exactly its home nodes',
    async () => {
      for (const n of c.nodes.filter((x) => ids.includes(x.id))) {
        const held = await localKeys(n.base);
        const want = expected.get(n.id) as Set<string>;
        const missing = [...want].filter((k) => !held.has(k));
        const extra = [...held.keys()].filter((k) => keys.has(k) && !want.has(k));
        last = `${n.id}: ${missing.length} missing, ${extra.length} extra`;
        if (missing.length > 0 || extra.length > 0) return false;
        for (const k of want) assert.deepEqual(held.get(k), keys.get(k), `${n.id} holds a stale ${k}`);
      }
      return true;
    },
    20_000,
    100,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message} (last: ${last})`);
  });
}

async function readAll(base: string, keys: Map<string, unknown>): Promise<string[]> {
  const wrong: string[] = [];
  await Promise.all(
    [...keys].map(async ([k, v]) => {
      const r = await get(base, k);
      if (r.status !== 200 || JSON.stringify((r.body as { value: unknown }).value) !== JSON.stringify(v))
        wrong.push(`${k}: ${r.status} ${r.text}`);
    }),
  );
  return wrong;
}

test('any node accepts any key (written via node 1, read via node 3); kv-client passes; an added node takes its share', async (t) => {
  const c = await startKvCluster(t, { size: 3 });
  const [n1, n2, n3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
  const w = await put(n1.base, 'test', { value: 'hello world' });
  assert.equal(w.status, 200, w.text);
  const r = await get(n3.base, 'test');
  assert.deepEqual(r.body, { key: 'test', value: 'hello world' });

  const keys = new Map<string, unknown>();
  for (let i = 0; i < 90; i++) keys.set(`k/${i}`, i % 3 === 0 ? { i, s: 'x'.repeat(i) } : `v${i}`);
  await Promise.all(
    [...keys].map(([k, v], i) => put((c.nodes[i % 3] as { base: string }).base, k, { value: v })),
  );
  for (const n of c.nodes) assert.deepEqual(await readAll(n.base, keys), [], `reads via ${n.id}`);
  // Each key lives only on its owner (replicas = 1), and every node owns some.
  const held = await Promise.all(c.nodes.map((n) => localKeys(n.base)));
  const total = held.reduce((s, m) => s + [...m.keys()].filter((k) => keys.has(k)).length, 0);
  assert.equal(total, keys.size);
  for (const m of held) assert.ok(m.size > 10, `a node holds only ${m.size} keys`);

  const info = (await getJson(`${n2.base}/admin/cluster`)).body as ClusterInfo;
  assert.deepEqual(
    info.nodes.map((n) => [n.id, n.state]),
    [
      ['node1', 'up'],
      ['node2', 'up'],
      ['node3', 'up'],
    ],
  );
  for (const n of info.nodes) assert.ok(Math.abs(n.ownership - 1 / 3) < 0.05, `ownership ${n.ownership}`);
  assert.ok(info.distribution.ownership_stddev_ratio < 0.05);

  const demo = await runStrata([
    'kv-client',
    '--nodes',
    c.nodes.map((n) => `127.0.0.1:${n.httpPort}`).join(','),
    '--keys',
    '6',
  ]);
  assert.equal(demo.code, 0, demo.stdout + demo.stderr);
  assert.match(demo.stdout, /(\d+)\/\1 checks passed/);
  assert.match(demo.stdout, /GET demo:1 via 127\.0\.0\.1:\d+/);
  // A node added at run time takes over its share without loss.
  for (let i = 0; i < 300; i++) keys.set(`item-${i}`, `value-${i}`);
  await Promise.all(
    [...keys].map(([k, v], i) => put((c.nodes[i % 3] as { base: string }).base, k, { value: v })),
  );

  // node4 lists all four nodes; the others learn it from its health checks.
  const [http4, resp4] = (await freePorts(2)) as [number, number];
  const cfg = join(c.dir, 'node4.yaml');
  const nodesYaml = c.nodes.map((n) => `  ${n.id}: "127.0.0.1:${n.httpPort}"`).join('\n');
  writeFileSync(
    cfg,
    `node_id: node4\naddress: "127.0.0.1:${http4}"\ncluster_nodes:\n${nodesYaml}\n  node4: "127.0.0.1:${http4}"\n` +
      `resp_address: "127.0.0.1:${resp4}"\nhealth_check_interval: 150ms\nfailure_threshold: 2\n`,
  );
  const p4 = startStrata(['kv', `-config=${cfg}`], { t });
  await p4.waitForOutput('kv node ready', 20_000);
  const base4 = `http://127.0.0.1:${http4}`;
  c.nodes.push({ id: 'node4', httpPort: http4, respPort: resp4, configPath: cfg, base: base4, proc: p4 });
  const all = ['node1', 'node2', 'node3', 'node4'];
  await c.waitForView(all);
  await waitForPlacement(c, all, keys, 1);
  const mine = await localKeys(base4);
  assert.ok(
    mine.size > keys.size / 4 - 40 && mine.size < keys.size / 4 + 40,
    `node4 holds ${mine.size} of ${keys.size}`,
  );
  for (const n of c.nodes) assert.deepEqual(await readAll(n.base, keys), [], `reads via ${n.id}`);

  // A graceful stop (SIGTERM) hands node4's keys to the others before it exits: none lost,
  // even with replicas = 1.
  assert.equal(await p4.stop('SIGTERM'), 0);
  assert.match(p4.stdout, /"msg":"keys handed off"/);
  c.nodes.pop();
  for (const n of c.nodes)
    assert.deepEqual(await readAll(n.base, keys), [], `reads via ${n.id} after node4 left`);
  await c.waitForView(['node1', 'node2', 'node3']);
  await waitForPlacement(c, ['node1', 'node2', 'node3'], keys, 1);
});

test('replicas = 2: SIGKILL loses no key; the rejoining node gets its keys back, stand-ins drop theirs; export/import round-trips', async (t) => {
  const c = await startKvCluster(t, { size: 3, replicas: 2 });
  const ids = ['node1', 'node2', 'node3'];
  const [n1, n2, n3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
  const keys = new Map<string, unknown>();
  for (let i = 0; i < 300; i++) keys.set(`user:${i}`, { n: i });
  await Promise.all(
    [...keys].map(([k, v], i) => put((c.nodes[i % 3] as { base: string }).base, k, { value: v })),
  );
  await waitForPlacement(c, ids, keys, 2);

  assert.equal(await n2.proc.stop('SIGKILL'), 'SIGKILL');
  // Immediately, before any health check noticed: reads fail over to the other replica.
  assert.deepEqual(await readAll(n1.base, keys), []);
  assert.deepEqual(await readAll(n3.base, keys), []);
  await c.waitForView(['node1', 'node3']);
  // Writes go on while node2 is down: new keys and updates of old ones.
  for (let i = 0; i < 300; i += 3) keys.set(`user:${i}`, { n: i, v: 2 });
  for (let i = 300; i < 400; i++) keys.set(`user:${i}`, { n: i });
  const statuses = await Promise.all(
    [...keys].map(([k, v]) => put(n3.base, k, { value: v }).then((r) => r.status)),
  );
  assert.deepEqual(new Set(statuses), new Set([200]));
  // With node2 down, the two survivors hold every key (re-replicated to keep two copies).
  await waitForPlacement(c, ['node1', 'node3'], keys, 2);

  await c.start(1);
  await c.waitForView(ids);
  await waitForPlacement(c, ids, keys, 2);
  for (const n of c.nodes) assert.deepEqual(await readAll(n.base, keys), [], `reads via ${n.id}`);
  const metrics = (await getJson(`${n1.base}/admin/metrics`)).text;
  assert.match(metrics, /cache_migrations_total\{[^}]*direction="sent"[^}]*\} [1-9]/);
  // Export, damage, import: the data comes back.
  const saved = new Map<string, unknown>([
    ['s', 'text'],
    ['n', 42.5],
    ['o', { a: [1, null, true], b: 'ü€😀' }],
    ['z', null],
    ['k/with/slashes?and=query', 'ok'],
  ]);
  for (let i = 0; i < 100; i++) saved.set(`bulk:${i}`, i);
  const saves = await Promise.all(
    [...saved].map(([k, v]) => put(n1.base, k, { value: v }).then((r) => r.status)),
  );
  assert.deepEqual(new Set(saves), new Set([200]));
  assert.equal((await put(n1.base, 'expiring', { value: 1, ttl: 600 })).status, 200);

  const exp = await getJson(`${n2.base}/admin/export`);
  assert.equal(exp.status, 200);
  const doc = exp.body as {
    format: string;
    count: number;
    complete: boolean;
    entries: { key: string; value: unknown; ttl_ms?: number }[];
  };
  assert.equal(doc.format, 'strata-kv-export');
  assert.equal(doc.complete, true);
  assert.equal(doc.count, keys.size + saved.size + 1, 'each key once, though every key has two copies');
  const ttl = doc.entries.find((e) => e.key === 'expiring')?.ttl_ms ?? 0;
  assert.ok(ttl > 590_000 && ttl <= 600_000, `ttl_ms ${ttl}`);

  // Damage the data, then restore it.
  await getJson(`${n3.base}/api/v1/cache/s`, { method: 'DELETE' });
  await put(n3.base, 'n', { value: 'overwritten' });
  const imp = await getJson(`${n3.base}/admin/import`, {
    method: 'POST',
    body: exp.text,
    headers: { 'content-type': 'application/json' },
  });
  assert.deepEqual(imp.body, { imported: keys.size + saved.size + 1 });
  for (const n of c.nodes) assert.deepEqual(await readAll(n.base, saved), [], `reads via ${n.id}`);
  const back = (await get(n1.base, 'expiring')).body as { ttl_ms?: number };
  assert.ok((back.ttl_ms ?? 0) > 500_000, 'the TTL survives the round trip');
});
