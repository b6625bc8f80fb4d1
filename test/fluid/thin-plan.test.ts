// Proves the ThinRuntime parser turns Fluid's config.json (the shared fixture and seed 001's
// example) into the exact cluster TOML and mount, honours secrets, FUSE options and STRATA_* env,
// and names the field of every malformed input.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { parseStrataUri, parseOptionList, planThin } from '../../src/fluid/index.js';
import type { ThinInputs } from '../../src/fluid/index.js';
import { assertProblem, fixtureJson } from './helpers.js';

/** Secrets as Fluid mounts them, without touching /etc. */
function secrets(files: Record<string, string>): ThinInputs['readSecret'] {
  return (path) => {
    const v = files[path];
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return v;
  };
}

function thin(json: unknown, env: Record<string, string> = {}, files: Record<string, string> = {}) {
  return planThin({ json, source: 'config.json', env, readSecret: secrets(files) });
}

const SEED_001 = {
  mounts: [{ mountPoint: 'strata:///data', options: { 'master-endpoints': '192.168.10.9:8995' } }],
  targetPath: '/runtime-mnt/thin/default/strata-dataset/thin-fuse',
};

test("seed 001's config.json gives the seed's TOML (Strata's names and ports)", () => {
  const plan = thin(SEED_001);
  assert.equal(
    plan.toml,
    `# Written by \`strata fluid thin\` from config.json; rewritten on every start and remount.

format_master = false
format_worker = false
testing = false
cluster_id = "strata"

[master]
hostname = "192.168.10.9"
rpc_port = 8995
web_port = 9000

[[client.master_addrs]]
hostname = "192.168.10.9"
port = 8995

[fuse]
debug = false
io_threads = 32
worker_threads = 56
mnt_path = "/runtime-mnt/thin/default/strata-dataset/thin-fuse"
fs_path = "/data"
options = "ro,subtype=strata"
`,
  );
  assert.equal(plan.mountPath, '/runtime-mnt/thin/default/strata-dataset/thin-fuse');
  assert.equal(plan.fsPath, '/data');
  assert.equal(plan.fsType, 'fuse.strata');
  assert.equal(plan.readOnly, true, 'Fluid defaults accessModes to ReadOnlyMany');
  assert.deepEqual(plan.warnings, []);
});

test('the shared fixture: two masters, io-threads, runtime options, a secret option read from its file', () => {
  const plan = thin(
    fixtureJson('thin-config.json'),
    {},
    { '/etc/fluid/secrets/strata-secret/token': 's3cr3t' },
  );
  assert.deepEqual(plan.config.client.master_addrs, [
    { hostname: 'strata-master-0.strata-master.default.svc', port: 8995 },
    { hostname: 'strata-master-1.strata-master.default.svc', port: 8995 },
  ]);
  assert.equal(plan.config.master.hostname, 'strata-master-0.strata-master.default.svc');
  assert.equal(plan.config.fuse.io_threads, 64);
  assert.equal(plan.config.fuse.entry_timeout_ms, 2000, 'runtimeOptions entry-timeout-ms');
  assert.equal(plan.config.fuse.fs_path, '/data');
  assert.equal(plan.config.fuse.options, 'ro,subtype=strata');
  assert.equal(plan.readOnly, true);
  // The token was read (a missing file is an error, next test) but Strata clients have no token.
  assert.deepEqual(plan.warnings, ['mounts[0].options.token: not a Strata configuration key (ignored)']);
  assert.ok(!plan.toml.includes('s3cr3t'), 'secrets never reach the file');
  assertProblem(
    () => thin(fixtureJson('thin-config.json')),
    'mounts[0].options.token',
    /cannot read secret file .*token: file not found/,
  );
});

test('an encrypted master-endpoints option is read from its secret file', () => {
  const plan = thin(
    {
      mounts: [
        {
          mountPoint: 'strata:///',
          options: { 'master-endpoints': '/etc/fluid/secrets/cluster/endpoints' },
        },
      ],
      targetPath: '/mnt/t',
      accessModes: ['ReadWriteMany'],
    },
    {},
    { '/etc/fluid/secrets/cluster/endpoints': 'm1.internal:7000,m2.internal:7001' },
  );
  assert.deepEqual(plan.config.client.master_addrs, [
    { hostname: 'm1.internal', port: 7000 },
    { hostname: 'm2.internal', port: 7001 },
  ]);
  assert.equal(plan.fsPath, '/');
  assert.equal(plan.readOnly, false);
  assert.equal(plan.config.fuse.options, 'subtype=strata');
});

test('precedence: defaults < mount options < runtimeOptions < MOUNT_OPTIONS < STRATA_* environment', () => {
  const json = {
    mounts: [
      {
        mountPoint: 'strata://a:1,b:2/x/./y/',
        options: { 'io-threads': '8', 'worker-threads': '9', 'mnt-number': '2', 'client.block_size': '64MB' },
      },
    ],
    targetPath: '/t',
    runtimeOptions: { 'io-threads': '10', allow_other: '' },
    accessModes: ['ReadWriteMany'],
  };
  let plan = thin(json);
  assert.deepEqual(plan.config.client.master_addrs, [
    { hostname: 'a', port: 1 },
    { hostname: 'b', port: 2 },
  ]);
  assert.equal(plan.fsPath, '/x/y');
  assert.equal(plan.config.fuse.io_threads, 10, 'runtimeOptions beat the mount options');
  assert.equal(plan.config.fuse.worker_threads, 9);
  assert.equal(plan.config.fuse.mnt_number, 2);
  assert.equal(plan.config.client.block_size, 64 * 1024 * 1024);
  assert.equal(plan.config.fuse.options, 'allow_other,subtype=strata');

  plan = thin(json, { MOUNT_OPTIONS: 'io-threads=11,max_read=131072,ro' });
  assert.equal(plan.config.fuse.io_threads, 11, 'MOUNT_OPTIONS beat runtimeOptions');
  // A dataset that may be written is mounted read-write whatever a FUSE option list says.
  assert.equal(plan.config.fuse.options, 'allow_other,max_read=131072,subtype=strata');

  plan = thin(json, {
    MOUNT_OPTIONS: 'io-threads=11',
    STRATA_IO_THREADS: '64',
    STRATA_WORKER_THREADS: '128',
    STRATA_MASTER_ENDPOINTS: 'master:8995',
    STRATA_MASTER_WEB_PORT: '8080',
    STRATA_FUSE_SUBTYPE: 'strata-fs',
  });
  assert.equal(plan.config.fuse.io_threads, 64);
  assert.equal(plan.config.fuse.worker_threads, 128);
  assert.deepEqual(plan.config.client.master_addrs, [{ hostname: 'master', port: 8995 }]);
  assert.equal(plan.config.master.hostname, 'master');
  assert.equal(plan.config.master.web_port, 8080);
  assert.equal(plan.fsType, 'fuse.strata-fs');
  assert.equal(plan.config.fuse.options, 'allow_other,subtype=strata-fs');
});

test('MOUNT_POINT stands in for a missing targetPath; an empty subtype mounts as plain "fuse"', () => {
  const plan = thin(
    {
      mounts: [{ mountPoint: 'strata:///d', options: { 'master-endpoints': 'm:8995', 'fuse-subtype': '' } }],
    },
    { MOUNT_POINT: '/runtime-mnt/thin/ns/n/thin-fuse' },
  );
  assert.equal(plan.mountPath, '/runtime-mnt/thin/ns/n/thin-fuse');
  assert.equal(plan.fsType, 'fuse');
  assert.equal(plan.config.fuse.options, 'ro');
});

test("a Dataset mount's readOnly mounts read-only whatever the access modes", () => {
  const rw = { ...SEED_001, accessModes: ['ReadWriteMany'] };
  assert.equal(thin(rw).readOnly, false);
  assert.equal(thin(rw).config.fuse.options, 'subtype=strata');
  const mount = SEED_001.mounts[0];
  const ro = thin({ ...rw, mounts: [{ ...mount, readOnly: true }] });
  assert.equal(ro.readOnly, true);
  assert.equal(ro.config.fuse.options, 'ro,subtype=strata');
  assert.equal(
    thin({ ...rw, mounts: [{ ...mount, readOnly: false }] }).config.fuse.options,
    'subtype=strata',
  );
});

test('URI and option-list helpers', () => {
  assert.deepEqual(parseStrataUri('strata:///data'), { authority: '', path: '/data' });
  assert.deepEqual(parseStrataUri('strata://h:1/'), { authority: 'h:1', path: '/' });
  assert.deepEqual(parseStrataUri('strata://h:1'), { authority: 'h:1', path: '/' });
  assert.equal(parseStrataUri('strata:///a/../etc'), undefined);
  assert.equal(parseStrataUri('s3://bucket/a'), undefined);
  assert.deepEqual(parseOptionList('a=1, b ,c=x=y,,'), { a: '1', b: '', c: 'x=y' });
});

test('every malformed input is one clear problem naming its field', () => {
  const ok = SEED_001.mounts[0];
  assertProblem(() => thin([]), '(root)', /expected a JSON object/);
  assertProblem(() => thin({ targetPath: '/t' }), 'mounts', /expected a list of mounts/);
  assertProblem(() => thin({ mounts: [], targetPath: '/t' }), 'mounts', /at least one mount/);
  assertProblem(
    () => thin({ mounts: [{ options: {} }], targetPath: '/t' }),
    'mounts[0].mountPoint',
    /expected a string/,
  );
  assertProblem(
    () =>
      thin({
        mounts: [{ mountPoint: 's3://bucket', options: { 'master-endpoints': 'm:1' } }],
        targetPath: '/t',
      }),
    'mounts[0].mountPoint',
    /expected "strata:\/\/\/<path>"/,
  );
  assertProblem(() => thin({ mounts: [ok, ok], targetPath: '/t' }), 'mounts', /one mount point \(got 2\)/);
  assertProblem(
    () => thin({ mounts: [{ mountPoint: 'strata:///d', options: {} }], targetPath: '/t' }),
    'mounts[0].options.master-endpoints',
    /required/,
  );
  assertProblem(
    () =>
      thin({
        mounts: [{ mountPoint: 'strata:///d', options: { 'master-endpoints': 'nohost' } }],
        targetPath: '/t',
      }),
    'mounts[0].options.master-endpoints',
    /expected "host:port" entries/,
  );
  assertProblem(
    () =>
      thin({
        mounts: [{ mountPoint: 'strata:///d', options: { 'master-endpoints': 'm:1', 'io-threads': 'many' } }],
        targetPath: '/t',
      }),
    'mounts[0].options.io-threads',
    /fuse\.io_threads: expected a number/,
  );
  assertProblem(
    () =>
      thin({
        mounts: [{ mountPoint: 'strata:///d', options: { 'master-endpoints': 'm:1', 'io-threads': '0' } }],
        targetPath: '/t',
      }),
    'fuse.io_threads',
    /expected an integer from 1 to 4096/,
  );
  assertProblem(
    () =>
      thin({
        mounts: [{ mountPoint: 'strata:///d', options: { 'master-endpoints': 'm:1', 'io-threads': ['x'] } }],
        targetPath: '/t',
      }),
    'mounts[0].options.io-threads',
    /expected a string value/,
  );
  assertProblem(() => thin({ mounts: [ok] }), 'targetPath', /required/);
  assertProblem(() => thin({ mounts: [ok], targetPath: 'relative/dir' }), 'targetPath', /absolute/);
  assertProblem(
    () => thin({ ...SEED_001, accessModes: ['ReadSometimes'] }),
    'accessModes[0]',
    /expected one of ReadOnlyMany/,
  );
  assertProblem(
    () => thin({ ...SEED_001, runtimeOptions: 'x' }),
    'runtimeOptions',
    /expected an object of string options/,
  );
  assertProblem(
    () => thin(SEED_001, { STRATA_IO_THREADS: 'lots' }),
    'STRATA_IO_THREADS',
    /expected a number/,
  );
  assertProblem(
    () => thin(SEED_001, { STRATA_MASTER_ENDPOINTS: 'a,b' }),
    'STRATA_MASTER_ENDPOINTS',
    /host:port/,
  );
  assertProblem(
    () => thin(SEED_001, { MOUNT_OPTIONS: 'worker-threads=x' }),
    'MOUNT_OPTIONS.worker-threads',
    /expected a number/,
  );
  assertProblem(() => thin(SEED_001, { STRATA_FUSE_SUBTYPE: 'a b' }), 'fuse-subtype', /expected letters/);
});
