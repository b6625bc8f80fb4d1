// Proves the CacheRuntime entrypoints run the roles: `strata fluid cache-runtime` started as the
// master and a worker pod would be (fluid-pods.ts), both become Ready, a file written through the
// cluster reads back, and the mount-ufs hook run with the master's derived configuration serves a
// file:// UFS.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { runStrata } from '../helpers/process.js';
import { startFluidPods } from './fluid-pods.js';

test('cache-runtime master and worker entrypoints form a cluster that serves reads', async (t) => {
  const pods = await startFluidPods(t);
  const { fs } = pods;
  assert.equal(pods.config.cluster_id, 'default-strata-demo');

  // The worker registered with the tiers derived from tieredStoreLevels.
  assert.equal((await fs.listWorkers()).length, 1);
  const payload = Buffer.alloc(2 * 1024 * 1024 + 17, 'fluid');
  await fs.writeFile('/written.bin', payload);
  assert.ok((await fs.readFile('/written.bin')).equals(payload));

  // The mountUFS hook as Fluid execs it in master-0: the master's own configuration file.
  const hook = await runStrata(['fluid', 'mount-ufs'], { env: pods.podEnv('master'), timeoutMs: 60_000 });
  assert.equal(hook.code, 0, hook.stderr);
  assert.equal(hook.stdout, '{"mounted":["/local"]}\n');
  assert.equal((await fs.readFile('/local/hello.txt')).toString(), 'hello from the UFS\n');

  // SIGTERM stops each role gracefully (exit 0), as the pod's PID 1 forwards it.
  assert.equal(await pods.worker.stop('SIGTERM'), 0);
  assert.equal(await pods.master.stop('SIGTERM'), 0);
});
