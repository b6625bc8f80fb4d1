// Proves `strata worker --conf FILE` as a real process against a stand-in master: it becomes
// ready once registered, finishes an in-flight write on SIGTERM and exits 0, loses no
// acknowledged block to SIGKILL during writes, is refused by a master of another cluster and
// refuses another cluster's data directory.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { WorkerCalls } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import { freePort } from '../helpers/ports.js';
import { runStrata, startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { FakeMaster } from './fake-master.js';
import { randomData } from './store-fixture.js';
import { rpcRead, rpcWrite } from './worker-fixture.js';

const MiB = 1024 * 1024;

interface ProcWorker {
  conf: string;
  dir: string;
  rpcPort: number;
  webPort: number;
}

async function writeConf(
  t: TestContext,
  master: FakeMaster,
  clusterId = 'test',
  dir?: string,
): Promise<ProcWorker> {
  const d = dir ?? tempDir(t, 'strata-wproc-');
  const rpcPort = await freePort();
  const webPort = await freePort();
  const conf = join(d, 'strata.toml');
  writeFileSync(
    conf,
    `cluster_id = "${clusterId}"
[log]
level = "INFO"
log_dir = "stderr"
[master]
heartbeat_interval = "100ms"
[[client.master_addrs]]
hostname = "127.0.0.1"
port = ${master.port}
[worker]
hostname = "127.0.0.1"
bind_host = "127.0.0.1"
rpc_port = ${rpcPort}
web_port = ${webPort}
data_dir = ["[MEM:16MB]${d}/mem", "[DISK:256MB]${d}/disk"]
`,
  );
  return { conf, dir: d, rpcPort, webPort };
}

function start(t: TestContext, w: ProcWorker): Proc {
  const env = { ...process.env };
  delete env.STRATA_CONF_FILE;
  return startStrata(['worker', '--conf', w.conf], { t, env });
}

async function ready(w: ProcWorker, p: Proc): Promise<void> {
  await waitFor(
    'worker ready',
    async () => {
      if (p.child.exitCode !== null) throw new Error(`worker exited ${p.child.exitCode}: ${p.stderr}`);
      const r = await fetch(`http://127.0.0.1:${w.webPort}/ready`).catch(() => undefined);
      return r?.status === 200;
    },
    15_000,
    50,
  );
}

function client(t: TestContext, w: ProcWorker): RpcClient {
  const c = new RpcClient({
    addresses: [{ host: '127.0.0.1', port: w.rpcPort }],
    deadlineMs: 5000,
    retryMax: 0,
  });
  t.after(() => c.close());
  return c;
}

test('SIGTERM lets an in-flight write finish, then the worker exits 0', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await writeConf(t, master);
  const p = start(t, w);
  await ready(w, p);
  const c = client(t, w);
  const data = randomData(8 * MiB);
  const call = c.write(WorkerCalls.WriteBlock, { blockId: 1, storageType: 'DISK', lengthHint: data.length });
  await call.write(data.subarray(0, 4 * MiB));
  p.child.kill('SIGTERM');
  await p.waitForOutput('worker stopping');
  await call.write(data.subarray(4 * MiB));
  assert.deepEqual(await call.end(), { length: data.length, storageType: 'DISK' });
  assert.equal(await p.exited, 0, p.stderr);
  // The block survived the restart.
  const again = start(t, w);
  await ready(w, again);
  assert.ok((await rpcRead(client(t, w), 1)).equals(data));
  await again.stop('SIGTERM');
});

test('SIGKILL during remote writes loses no acknowledged block and leaves no partial one', async (t) => {
  const master = await FakeMaster.start(t);
  const w = await writeConf(t, master);
  const p = start(t, w);
  await ready(w, p);
  const c = client(t, w);
  const acked = new Map<number, string>();
  let failed = 0;
  const writers = [0, 1].map(async (lane) => {
    for (let id = 1 + lane; ; id += 2) {
      const data = randomData(300_000 + ((id * 7919) % 900_000));
      try {
        await rpcWrite(c, id, data, id % 3 === 0 ? 'MEM' : 'DISK', 64 * 1024);
        acked.set(id, createHash('sha256').update(data).digest('hex'));
      } catch {
        failed++;
        return;
      }
    }
  });
  await waitFor('some writes acknowledged', () => acked.size >= 12, 20_000);
  p.child.kill('SIGKILL');
  await p.exited;
  await Promise.all(writers);
  assert.ok(failed >= 1, 'writes in flight failed');
  const again = start(t, w);
  await ready(w, again);
  const c2 = client(t, w);
  for (const [id, sha] of acked) {
    const got = await rpcRead(c2, id);
    assert.equal(createHash('sha256').update(got).digest('hex'), sha, `block ${id}`);
  }
  for (const tier of ['mem', 'disk']) assert.deepEqual(readdirSync(join(w.dir, tier, 'test', 'staging')), []);
  await again.stop('SIGTERM');
});

test('a master refuses a worker of another cluster; its data directory is refused too', async (t) => {
  const master = await FakeMaster.start(t, 'alpha');
  const stranger = await writeConf(t, master, 'beta');
  const s = start(t, stranger);
  await waitFor('refusal shown on /ready', async () => {
    const r = await fetch(`http://127.0.0.1:${stranger.webPort}/ready`).catch(() => undefined);
    if (r === undefined) return false;
    const body = (await r.json()) as { reason?: string };
    return r.status === 503 && /refused by cluster "alpha"/.test(body.reason ?? '');
  });
  assert.equal(master.registrations.length, 0);
  assert.equal(await s.stop('SIGTERM'), 0);

  const w = await writeConf(t, master, 'alpha');
  const p = start(t, w);
  await ready(w, p);
  assert.equal(await p.stop('SIGTERM'), 0);
  const other = await writeConf(t, master, 'beta', w.dir);
  const r = await runStrata(['worker', '--conf', other.conf], { timeoutMs: 20_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /strata: worker: worker\.data_dir .*\/mem: belongs to cluster "alpha" but this worker is in cluster "beta" \(use another directory, or set format_worker = true to wipe it\)/,
  );
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});
