// Load jobs outlive their master: a MiniCluster (processes) over a slow loopback HTTP origin. A job
// interrupted by SIGKILL and one interrupted by SIGTERM run again under the same id after the
// restart and finish with every block cached; finished and cancelled jobs keep their outcome.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import type { LoadJobStatus } from '../../src/protocol/ufs-types.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from '../ufs/http-origin.js';

/** Deadline for state that background work brings about (restarts, jobs) on a loaded machine. */
const BACKGROUND_WAIT_MS = 60_000;
const MiB = 1024 * 1024;
/** Origin GETs held this long while a job is to be interrupted: far longer than the interruption. */
const HELD_MS = 4_000;

test('load jobs are recorded and resumed across master restarts', { timeout: 180_000 }, async (t) => {
  const root = tempDir(t, 'strata-load-resume-');
  mkdirSync(join(root, 'ds'));
  const sizes: Record<string, number> = { 'small.bin': MiB + 7, 'a.bin': 3 * MiB + 1, 'b.bin': 2 * MiB };
  for (const [name, size] of Object.entries(sizes)) writeFileSync(join(root, 'ds', name), randomBytes(size));
  writeFileSync(join(root, 'ds', 'never.bin'), randomBytes(MiB));
  const origin = await HttpOrigin.start(root);
  t.after(() => origin.close());

  const cluster = await MiniCluster.start(t, { workers: 1, masterToml: 'heartbeat_interval = 100' });
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config });
  t.after(() => fs.close());
  const master = cluster.masters[0] ?? assert.fail('no master');
  await fs.mount(`${origin.url}/ds`, '/ds', { options: {}, blockSize: MiB });

  const cachedBytes = async (name: string): Promise<number> =>
    (await fs.stat(`/ds/${name}`)).cachedBytes ?? 0;
  /** Workers report loaded blocks with their next heartbeat: the master's view follows shortly. */
  const waitCached = async (name: string): Promise<void> => {
    await waitFor(
      `${name} cached`,
      async () => (await cachedBytes(name)) === sizes[name],
      BACKGROUND_WAIT_MS,
    );
  };
  const finished = async (jobId: string): Promise<LoadJobStatus> => {
    let last: LoadJobStatus | undefined;
    await waitFor(
      `load job ${jobId} finished`,
      async () => {
        last = await fs.loadStatus(jobId);
        return last.state === 'completed' || last.state === 'failed' || last.state === 'cancelled';
      },
      BACKGROUND_WAIT_MS,
    );
    return last ?? assert.fail('no status');
  };

  // A job that completes before any restart.
  const small = await fs.load('/ds/small.bin');
  const smallDone = await finished(small.jobId);
  assert.equal(smallDone.state, 'completed');
  assert.equal(smallDone.doneBytes, sizes['small.bin']);

  // With the origin held, one job is cancelled and one is left running; then the master is killed.
  origin.behaviour = { delayMs: HELD_MS };
  const cancelled = await fs.load('/ds/never.bin');
  assert.equal((await fs.cancelLoad(cancelled.jobId)).state, 'cancelled');
  const killed = await fs.load('/ds/a.bin');
  assert.ok((await fs.loadStatus(killed.jobId)).state !== 'completed');
  await cluster.stopNode(master, 'SIGKILL');
  origin.behaviour = {};
  await cluster.restartNode(master);

  const resumed = await finished(killed.jobId);
  assert.equal(resumed.state, 'completed', `resumed job: ${JSON.stringify(resumed)}`);
  assert.equal(resumed.path, '/ds/a.bin');
  assert.equal(resumed.totalBytes, sizes['a.bin']);
  assert.equal(resumed.doneBytes, sizes['a.bin']);
  assert.ok(resumed.resumedAtMs !== undefined, 'marked as resumed');
  assert.equal(resumed.startedAtMs, killed.startedAtMs, 'same job, not a new one');
  await waitCached('a.bin');
  const afterKill = await fs.loadStatus(small.jobId);
  assert.equal(afterKill.state, 'completed');
  assert.equal(afterKill.doneBytes, sizes['small.bin']);
  assert.equal(afterKill.endedAtMs, smallDone.endedAtMs);
  assert.equal((await fs.loadStatus(cancelled.jobId)).state, 'cancelled', 'a cancelled job is not resumed');
  assert.equal(await cachedBytes('never.bin'), 0);

  // A graceful stop (SIGTERM) leaves its running job to the next master as well.
  origin.behaviour = { delayMs: HELD_MS };
  const stopped = await fs.load('/ds/b.bin');
  await cluster.stopNode(master, 'SIGTERM');
  origin.behaviour = {};
  await cluster.restartNode(master);
  const resumed2 = await finished(stopped.jobId);
  assert.equal(resumed2.state, 'completed', `resumed job: ${JSON.stringify(resumed2)}`);
  assert.equal(resumed2.doneBytes, sizes['b.bin']);
  await waitCached('b.bin');

  const ids = (await fs.listLoads()).map((j) => j.jobId).sort();
  assert.deepEqual(ids, [small.jobId, cancelled.jobId, killed.jobId, stopped.jobId].sort());
});
