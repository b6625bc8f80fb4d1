// Proves the CacheRuntime entrypoints run the roles: `strata fluid cache-runtime` started as the
// master and a worker pod would be (fluid-pods.ts), both become Ready, a file written through the
// cluster reads back; then the hooks as Fluid runs them: mount-ufs (s3rver + file:// UFS),
// dataload of the S3 mount, report-summary.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { runStrata } from '../helpers/process.js';
import { S3Server } from '../ufs/s3-server.js';
import { startFluidPods } from './fluid-pods.js';

test('cache-runtime master and worker entrypoints form a cluster that serves reads', async (t) => {
  const s3 = await S3Server.start(['test']);
  t.after(() => s3.stop());
  const object = Buffer.alloc(3 * 1024 * 1024 + 5, 's3');
  const raw = s3.client();
  t.after(() => raw.destroy());
  await raw.send(new PutObjectCommand({ Bucket: 'test', Key: 'obj.bin', Body: object }));
  const pods = await startFluidPods(t, { s3Endpoint: s3.endpoint });
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
  assert.equal(hook.stdout, '{"mounted":["/minio","/local"]}\n');
  assert.equal((await fs.readFile('/local/hello.txt')).toString(), 'hello from the UFS\n');

  // DataLoad of the S3 mount (the Job's environment: no configuration file, the master by variable).
  const load = await runStrata(['fluid', 'dataload'], {
    env: {
      ...pods.podEnv('master'),
      STRATA_CONF_FILE: '/nonexistent/strata.toml',
      FLUID_DATALOAD_DATA_PATH: '/minio',
    },
    timeoutMs: 60_000,
  });
  assert.equal(load.code, 0, load.stderr);
  assert.match(
    load.stderr,
    new RegExp(`/minio: job \\S+ completed: 1/1 files, ${object.length} of ${object.length} bytes cached`),
  );
  assert.ok((await fs.readFile('/minio/obj.bin')).equals(object));
  const summary = await runStrata(['fluid', 'report-summary'], { env: pods.podEnv('master') });
  assert.equal(summary.code, 0, summary.stderr);
  const parsed = JSON.parse(summary.stdout) as Record<string, string>;
  assert.equal(parsed.fileNum, '2');
  assert.equal(parsed.cachedPercentage, '100.0%');

  // SIGTERM stops each role gracefully (exit 0), as the pod's PID 1 forwards it.
  assert.equal(await pods.worker.stop('SIGTERM'), 0);
  assert.equal(await pods.master.stop('SIGTERM'), 0);
});
