// Proves the `strata fluid` commands through the compiled CLI: --dry-run prints what a pod would
// write and run, a bad input is a one-line error naming the field with exit code 2, and without
// --dry-run the derived configuration is written atomically where STRATA_CONF_FILE says.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import { runStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { FLUID_FIXTURES } from './helpers.js';

const RUNTIME_JSON = join(FLUID_FIXTURES, 'cache-runtime.json');

function podEnv(component: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    FLUID_DATASET_NAME: 'strata-demo',
    FLUID_DATASET_NAMESPACE: 'default',
    FLUID_RUNTIME_CONFIG_PATH: RUNTIME_JSON,
    FLUID_RUNTIME_COMPONENT_TYPE: component,
    FLUID_RUNTIME_COMPONENT_SVC_NAME: `svc-strata-demo-${component}`,
    FLUID_RUNTIME_MOUNT_PATH: '/runtime-mnt/cache/default/strata-demo/cache-fuse',
    POD_NAME: `strata-demo-${component}-0`,
  };
}

test('cache-runtime --dry-run --json: the worker plan from the environment alone', async () => {
  const r = await runStrata(['fluid', 'cache-runtime', '--dry-run', '--json'], { env: podEnv('worker') });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    component: string;
    command: string;
    readyPort: number;
    dirs: string[];
    toml: string;
  };
  assert.equal(out.component, 'worker');
  assert.equal(out.command, 'worker');
  assert.equal(out.readyPort, 9001);
  assert.equal(out.dirs.length, 3);
  const { config } = parseConfigText(out.toml, 'dry-run', { env: {} });
  assert.equal(config.worker.hostname, 'strata-demo-worker-0.svc-strata-demo-worker.default.svc');
});

test('a malformed runtime.json is one line naming the field, exit code 2, no stack', async (t) => {
  const dir = tempDir(t);
  const bad = JSON.parse(readFileSync(RUNTIME_JSON, 'utf8')) as {
    worker: { tieredStoreLevels: { quotas: string[] }[] };
  };
  const level = bad.worker.tieredStoreLevels[0];
  assert.ok(level);
  level.quotas = ['two gigs'];
  writeFileSync(join(dir, 'runtime.json'), JSON.stringify(bad));
  const r = await runStrata(['fluid', 'cache-runtime', '--dry-run', '--config', join(dir, 'runtime.json')], {
    env: podEnv('worker'),
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /worker\.tieredStoreLevels\[0\]\.quotas\[0\]: expected a Kubernetes quantity/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  writeFileSync(join(dir, 'broken.json'), '{"mounts": [');
  const j = await runStrata(['fluid', 'thin', '--dry-run', '--config', join(dir, 'broken.json')]);
  assert.equal(j.code, 2);
  assert.match(j.stderr, /broken\.json: invalid configuration:\n {2}\(file\): not valid JSON/);
  const none = await runStrata(['fluid', 'cache-runtime', '--dry-run'], { env: { PATH: process.env.PATH } });
  assert.equal(none.code, 2);
  assert.match(
    none.stderr,
    /no CacheRuntime runtime\.json found \(looked at \/etc\/fluid\/config\/runtime\.json/,
  );
});

test('thin without --dry-run writes the configuration where STRATA_CONF_FILE says, then runs fuse', async (t) => {
  const dir = tempDir(t);
  const config = join(dir, 'config.json');
  // No master listens and targetPath is a regular file: `strata fuse` starts from the written
  // configuration and gives up with one line, so the hand-over is proved without mounting.
  const target = join(dir, 'not-a-dir');
  writeFileSync(target, 'x');
  writeFileSync(
    config,
    JSON.stringify({
      mounts: [{ mountPoint: 'strata:///data', options: { 'master-endpoints': '127.0.0.1:1' } }],
      targetPath: target,
    }),
  );
  const out = join(dir, 'conf', 'strata-cluster.toml');
  const r = await runStrata(['fluid', 'thin', '--config', config], {
    env: { PATH: process.env.PATH, STRATA_CONF_FILE: out, FLUID_RUNTIME_TYPE: 'thin' },
    timeoutMs: 30_000,
  });
  const written = parseConfigText(readFileSync(out, 'utf8'), out, { env: {} }).config;
  assert.deepEqual(written.client.master_addrs, [{ hostname: '127.0.0.1', port: 1 }]);
  assert.equal(written.fuse.mnt_path, target);
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /^strata: fuse: /);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
});
