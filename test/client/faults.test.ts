// Faults with real processes: a worker SIGKILLed mid-read (2 replicas: the read completes from
// the other copy), a worker SIGKILLed mid-write (the block is re-placed, the file is intact), a
// master SIGKILLed mid-operation (a clear STRATA_UNAVAILABLE, exit 3 from the CLI; after a restart
// the same client works again).
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileSystem } from '../../src/client/index.js';
import type { ClientSettings } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { StrataError } from '../../src/common/errors.js';
import { Registry } from '../../src/common/metrics.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { runStrata } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function client(
  t: { after: (fn: () => Promise<void>) => void },
  cluster: MiniCluster,
  settings: Partial<ClientSettings>,
  registry?: Registry,
): FileSystem {
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config, settings, ...(registry === undefined ? {} : { registry }) });
  t.after(() => fs.close());
  return fs;
}

/** Files in a MiniCluster worker's staging directory (blocks being received). */
function stagingFiles(workerDir: string, clusterId: string): number {
  try {
    return readdirSync(join(workerDir, 'data', clusterId, 'staging')).length;
  } catch {
    return 0;
  }
}

async function counter(registry: Registry, name: string): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).reduce((a, v) => a + v.value, 0);
}

for (const shortCircuit of [false, true]) {
  test(`replicas = 2: a worker killed mid-read, the read completes (${shortCircuit ? 'short-circuit' : 'remote'})`, async (t) => {
    const cluster = await MiniCluster.start(t, { workers: 2 });
    const registry = new Registry();
    const fs = client(
      t,
      cluster,
      { blockSizeBytes: MiB, replicas: 2, shortCircuit, readAheadBytes: MiB },
      registry,
    );
    const data = randomBytes(48 * MiB);
    await fs.writeFile('/r2/file', data, { parents: true });
    for (const b of (await fs.blockLocations('/r2/file')).blocks) assert.equal(b.workers.length, 2);
    const h = createHash('sha256');
    let got = 0;
    let killed = false;
    for await (const chunk of fs.createReadStream('/r2/file')) {
      h.update(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (!killed && got >= 8 * MiB) {
        killed = true;
        await cluster.stopNode(cluster.workers[0] as NonNullable<(typeof cluster.workers)[0]>, 'SIGKILL');
      }
    }
    assert.ok(killed);
    assert.equal(got, data.length);
    assert.equal(h.digest('hex'), sha(data));
    assert.ok(
      (await counter(registry, 'strata_client_worker_failovers_total')) >= 1,
      'a replica failed over',
    );
  });
}

test('a worker killed mid-write: the block is re-placed and the file is intact', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 3 });
  const registry = new Registry();
  const fs = client(t, cluster, { blockSizeBytes: MiB, replicas: 1 }, registry);
  const data = randomBytes(40 * MiB);
  const w = await fs.create('/w/file', { parents: true });
  const piece = 256 * 1024;
  let victim: (typeof cluster.workers)[number] | undefined;
  for (let at = 0; at < data.length; at += piece) {
    if (at === 10 * MiB + 3 * piece) {
      // The worker receiving the current block has its staging file: kill that one.
      victim = cluster.workers.find((n) => stagingFiles(n.dir, cluster.clusterId) > 0);
      assert.ok(victim !== undefined, 'a worker is receiving the block');
      await cluster.stopNode(victim, 'SIGKILL');
    }
    await w.write(data.subarray(at, at + piece));
  }
  await w.close();
  assert.ok(
    (await counter(registry, 'strata_client_block_replacements_total')) >= 1,
    'a block was re-placed',
  );
  // Blocks written before the kill live on the dead worker: bring it back to read them.
  assert.ok(victim !== undefined);
  await cluster.restartNode(victim);
  const want = sha(data);
  await waitFor(
    'the file to read back whole',
    async () => sha(await fs.readFile('/w/file')) === want,
    20_000,
    200,
  );
});

test('a master killed mid-operation: a clear error (exit 3 from the CLI), and the client works after a restart', async (t) => {
  const cluster = await MiniCluster.start(t, {
    workers: 1,
    clientToml: 'rpc_timeout = "3s"\nrpc_retry_max = 3\n',
  });
  const fs = client(t, cluster, { blockSizeBytes: MiB });
  await fs.writeFile('/m/before', 'kept', { parents: true });
  const w = await fs.create('/m/during');
  await w.write(randomBytes(3 * MiB));
  const master = cluster.masters[0] as NonNullable<(typeof cluster.masters)[0]>;
  await cluster.stopNode(master, 'SIGKILL');
  await assert.rejects(
    (async () => {
      await w.write(randomBytes(2 * MiB));
      await w.close();
    })(),
    (err: unknown) =>
      err instanceof StrataError &&
      err.code === 'STRATA_UNAVAILABLE' &&
      /no master answered at 127\.0\.0\.1:\d+/.test(err.message),
  );
  await w.abort();
  const cli = await runStrata(['--conf', cluster.clientConfPath, 'fs', 'ls', '/m'], { timeoutMs: 30_000 });
  assert.equal(cli.code, 3, cli.stderr);
  assert.match(cli.stderr, /^strata: fs ls: no master answered at 127\.0\.0\.1:\d+/);
  await cluster.restartNode(master);
  // The same client instance reconnects (the worker re-registers its blocks with the new master).
  await waitFor(
    'the file written before the crash to read back',
    async () => (await fs.readFile('/m/before')).toString() === 'kept',
    20_000,
    200,
  );
  await fs.writeFile('/m/after', 'works');
  assert.equal((await fs.readFile('/m/after')).toString(), 'works');
  const ok = await runStrata(['--conf', cluster.clientConfPath, 'fs', 'cat', '/m/after'], {
    timeoutMs: 30_000,
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'works');
});
