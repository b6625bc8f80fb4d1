// Proves the HTTP API of one node (a real `strata kv` process): every bad input gets its
// documented status and error code, the LRU evicts by entries and by bytes, TTLs expire (given
// per write and by default_ttl), metrics count hits/misses/evictions, and SIGTERM exits cleanly.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePorts } from '../helpers/ports.js';
import { startStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { get, getJson, put } from './cluster-helper.js';

async function startNode(t: Parameters<typeof tempDir>[0], extra: string) {
  const dir = tempDir(t, 'strata-kv-http-');
  const [port] = (await freePorts(1)) as [number];
  const cfg = join(dir, 'node.yaml');
  writeFileSync(cfg, `node_id: solo\naddress: "127.0.0.1:${port}"\nlog_level: warn\n${extra}\n`);
  const proc = startStrata(['kv', `--config=${cfg}`, '--log-level', 'info'], { t });
  await proc.waitForOutput('kv node ready', 20_000);
  return { base: `http://127.0.0.1:${port}`, proc };
}

test('bad requests get their documented status and error code', async (t) => {
  const { base } = await startNode(t, 'limits:\n  max_key_bytes: 16\n  max_value_bytes: 100\n');
  const cases: {
    name: string;
    req: () => Promise<{ status: number; body: unknown }>;
    status: number;
    code: string;
  }[] = [
    {
      name: 'invalid JSON',
      req: () => put(base, 'k', '{"value": '),
      status: 400,
      code: 'STRATA_KV_BAD_JSON',
    },
    { name: 'empty body', req: () => put(base, 'k', ''), status: 400, code: 'STRATA_KV_BAD_JSON' },
    {
      name: 'not an object',
      req: () => put(base, 'k', '"hello"'),
      status: 400,
      code: 'STRATA_KV_BAD_REQUEST',
    },
    {
      name: 'missing value',
      req: () => put(base, 'k', { val: 1 }),
      status: 400,
      code: 'STRATA_KV_MISSING_VALUE',
    },
    {
      name: 'bad ttl',
      req: () => put(base, 'k', { value: 1, ttl: 'soon' }),
      status: 400,
      code: 'STRATA_KV_BAD_TTL',
    },
    {
      name: 'negative ttl',
      req: () => put(base, 'k', { value: 1, ttl: -5 }),
      status: 400,
      code: 'STRATA_KV_BAD_TTL',
    },
    {
      name: 'key over the limit',
      req: () => put(base, 'k'.repeat(17), { value: 1 }),
      status: 413,
      code: 'STRATA_KV_KEY_TOO_LONG',
    },
    {
      name: 'key over the limit (GET)',
      req: () => get(base, 'é'.repeat(9)),
      status: 413,
      code: 'STRATA_KV_KEY_TOO_LONG',
    },
    {
      name: 'value over the limit',
      req: () => put(base, 'k', { value: 'x'.repeat(101) }),
      status: 413,
      code: 'STRATA_KV_VALUE_TOO_LARGE',
    },
    {
      name: 'body over the limit',
      req: () => put(base, 'k', { value: 'x'.repeat(70_000) }),
      status: 413,
      code: 'STRATA_KV_BODY_TOO_LARGE',
    },
    { name: 'absent key', req: () => get(base, 'nope'), status: 404, code: 'STRATA_KV_NOT_FOUND' },
    {
      name: 'delete of an absent key',
      req: () => getJson(`${base}/api/v1/cache/nope`, { method: 'DELETE' }),
      status: 404,
      code: 'STRATA_KV_NOT_FOUND',
    },
    {
      name: 'empty key',
      req: () => getJson(`${base}/api/v1/cache/`),
      status: 400,
      code: 'STRATA_KV_BAD_KEY',
    },
    { name: 'no key', req: () => getJson(`${base}/api/v1/cache`), status: 400, code: 'STRATA_KV_BAD_KEY' },
    {
      name: 'bad percent-encoding',
      req: () => getJson(`${base}/api/v1/cache/%E0%A4%A`),
      status: 400,
      code: 'STRATA_KV_BAD_KEY',
    },
    {
      name: 'wrong method',
      req: () => getJson(`${base}/api/v1/cache/k`, { method: 'POST', body: '{}' }),
      status: 405,
      code: 'STRATA_KV_METHOD_NOT_ALLOWED',
    },
    {
      name: 'import of a non-document',
      req: () => getJson(`${base}/admin/import`, { method: 'POST', body: '42' }),
      status: 400,
      code: 'STRATA_KV_BAD_REQUEST',
    },
    {
      name: 'import with a bad entry',
      req: () =>
        getJson(`${base}/admin/import`, {
          method: 'POST',
          body: JSON.stringify({ entries: [{ key: 'a', value: 1 }, { key: 'b' }] }),
        }),
      status: 400,
      code: 'STRATA_KV_BAD_REQUEST',
    },
    {
      name: 'export with a bad scope',
      req: () => getJson(`${base}/admin/export?scope=all`),
      status: 400,
      code: 'STRATA_KV_BAD_REQUEST',
    },
    {
      name: 'locate without key',
      req: () => getJson(`${base}/admin/locate`),
      status: 400,
      code: 'STRATA_KV_BAD_KEY',
    },
  ];
  for (const c of cases) {
    const r = await c.req();
    assert.equal(r.status, c.status, `${c.name}: ${JSON.stringify(r.body)}`);
    const err = (r.body as { error?: { code: string; message: string } }).error;
    assert.equal(err?.code, c.code, c.name);
    assert.ok((err?.message.length ?? 0) > 10, `${c.name}: a message that says what was wrong`);
  }
  // Nothing of the rejected import was written; a key of exactly the limit is fine.
  assert.equal((await get(base, 'a')).status, 404);
  assert.equal((await put(base, 'k'.repeat(16), { value: 'x'.repeat(100) })).status, 200);
  assert.deepEqual((await get(base, 'k'.repeat(16))).body, { key: 'k'.repeat(16), value: 'x'.repeat(100) });
});

test('LRU evicts by cache_size and by max_memory; TTLs expire; metrics count it all', async (t) => {
  const { base, proc } = await startNode(
    t,
    'cache_size: 50\nmax_memory: 1MB\nttl_sweep_interval: 50ms\nlimits:\n  max_value_bytes: 200KB\n',
  );
  for (let i = 0; i < 50; i++) assert.equal((await put(base, `e${i}`, { value: i })).status, 200);
  assert.equal((await get(base, 'e0')).status, 200); // e0 is now the most recently used; e1 the oldest
  for (let i = 50; i < 60; i++) await put(base, `e${i}`, { value: i });
  assert.equal((await get(base, 'e0')).status, 200, 'a recently read key survives');
  for (let i = 1; i <= 10; i++) assert.equal((await get(base, `e${i}`)).status, 404, `e${i} evicted`);
  for (let i = 11; i < 60; i++) assert.equal((await get(base, `e${i}`)).status, 200, `e${i} kept`);

  // By bytes: 150 KB values, 1 MB budget: at most 6 fit.
  for (let i = 0; i < 10; i++) await put(base, `big${i}`, { value: 'b'.repeat(150_000) });
  const health = (await getJson(`${base}/api/v1/health`)).body as { keys: number };
  assert.ok(health.keys <= 50);
  for (let i = 0; i < 4; i++)
    assert.equal((await get(base, `big${i}`)).status, 404, `big${i} evicted for memory`);
  for (let i = 4; i < 10; i++) assert.equal((await get(base, `big${i}`)).status, 200, `big${i} kept`);

  // TTL: per write (seconds or a duration), read back with ttl_ms, then gone.
  // Long enough to read back on a loaded machine, short enough to watch expire.
  assert.equal((await put(base, 'short', { value: 's', ttl: '2s' })).status, 200);
  assert.equal((await put(base, 'frac', { value: 'f', ttl: 1.5 })).status, 200);
  const live = (await get(base, 'short')).body as { ttl_ms: number };
  assert.ok(live.ttl_ms > 0 && live.ttl_ms <= 2000, `ttl_ms ${live.ttl_ms}`);
  await waitFor(
    'short TTLs to expire',
    async () => (await get(base, 'short')).status === 404 && (await get(base, 'frac')).status === 404,
    15_000,
  );

  const metrics = (await getJson(`${base}/admin/metrics`)).text;
  const value = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN);
  assert.ok(value(/^cache_evictions_total\{[^}]*reason="entries"[^}]*\} (\d+)/m) >= 10);
  assert.ok(value(/^cache_evictions_total\{[^}]*reason="memory"[^}]*\} (\d+)/m) >= 4);
  assert.ok(value(/^cache_evictions_total\{[^}]*reason="expired"[^}]*\} (\d+)/m) >= 2);
  assert.ok(value(/^cache_hits_total\{[^}]*\} (\d+)/m) >= 57);
  assert.ok(value(/^cache_misses_total\{[^}]*\} (\d+)/m) >= 14);
  assert.match(metrics, /^cache_hit_ratio\{[^}]*\} 0\.\d+/m);
  assert.match(metrics, /^cache_request_duration_seconds_bucket\{[^}]*protocol="http",op="get"/m);
  assert.match(metrics, /^cache_keys\{[^}]*\} \d+/m);
  assert.match(metrics, /^cache_qps\{[^}]*\} [\d.]+/m);
  assert.equal((await getJson(`${base}/metrics`)).status, 200);
  assert.equal((await getJson(`${base}/ready`)).status, 200);
  assert.equal((await getJson(`${base}/live`)).status, 200);

  assert.equal(await proc.stop('SIGTERM'), 0);
  assert.match(proc.stdout, /"msg":"stopped"/);
});

test('default_ttl applies to writes without a ttl', async (t) => {
  const { base } = await startNode(t, 'default_ttl: 400ms\nttl_sweep_interval: 50ms\n');
  await put(base, 'd', { value: 1 });
  await put(base, 'explicit', { value: 2, ttl: 60 });
  assert.ok(((await get(base, 'd')).body as { ttl_ms: number }).ttl_ms <= 400);
  await waitFor('default TTL to expire', async () => (await get(base, 'd')).status === 404, 5000);
  assert.equal((await get(base, 'explicit')).status, 200);
});
