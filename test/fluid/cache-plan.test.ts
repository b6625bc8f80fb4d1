// Proves the CacheRuntime derivation: runtime.json and the legacy config.json give each component
// (master, worker, client) the exact TOML, directories and readiness port; options merge over the
// derived values; HA masters need etcd; every malformed input names its field.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  clusterIdFor,
  deriveTiers,
  parseQuantityBytes,
  parseRuntimeSpec,
  planCacheRole,
  renderBytes,
} from '../../src/fluid/index.js';
import type { ConfigProblem } from '../../src/common/errors.js';
import { assertProblem, fixtureJson } from './helpers.js';

const MNT = '/runtime-mnt/cache/default/strata-demo/cache-fuse';

/** The environment Fluid gives pod `<name>-<component>-<i>` of dataset default/strata-demo. */
function podEnv(component: string, index = 0, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FLUID_DATASET_NAME: 'strata-demo',
    FLUID_DATASET_NAMESPACE: 'default',
    FLUID_RUNTIME_CONFIG_PATH: '/etc/fluid/config/runtime.json',
    FLUID_RUNTIME_MOUNT_PATH: MNT,
    FLUID_RUNTIME_COMPONENT_TYPE: component,
    FLUID_RUNTIME_COMPONENT_SVC_NAME: component === 'client' ? '' : `svc-strata-demo-${component}`,
    POD_NAME: component === 'client' ? 'strata-demo-client-x7k2p' : `strata-demo-${component}-${index}`,
    ...extra,
  };
}

function plan(json: unknown, component: string, env = podEnv(component)) {
  return planCacheRole({ spec: parseRuntimeSpec(json, 'runtime.json'), env, source: 'runtime.json' });
}

/** runtime.json with one component changed. */
function withComponent(component: string, patch: Record<string, unknown>): Record<string, unknown> {
  const json = structuredClone(fixtureJson('cache-runtime.json')) as Record<string, Record<string, unknown>>;
  json[component] = { ...json[component], ...patch };
  return json;
}

const MASTER_ADDR = `[[client.master_addrs]]
hostname = "strata-demo-master-0.svc-strata-demo-master.default.svc"
port = 8995`;

test('runtime.json: the master pod', () => {
  const p = plan(fixtureJson('cache-runtime.json'), 'master');
  assert.equal(
    p.toml,
    `# Written by \`strata fluid cache-runtime\` for the master from runtime.json.
# Rewritten on every start; change the CacheRuntime instead.

cluster_id = "default-strata-demo"

[master]
hostname = "strata-demo-master-0.svc-strata-demo-master.default.svc"
rpc_port = 8995

${MASTER_ADDR}
`,
  );
  assert.equal(p.command, 'master');
  assert.equal(p.readyPort, 9000);
  assert.deepEqual(p.dirs, ['/opt/strata/data/meta']);
  assert.deepEqual(p.warnings, []);
});

test('runtime.json: a worker pod gets its tiers, quotas and watermarks from tieredStoreLevels', () => {
  const p = plan(fixtureJson('cache-runtime.json'), 'worker', podEnv('worker', 1));
  assert.equal(
    p.toml,
    `# Written by \`strata fluid cache-runtime\` for the worker from runtime.json.
# Rewritten on every start; change the CacheRuntime instead.

cluster_id = "default-strata-demo"

[worker]
hostname = "strata-demo-worker-1.svc-strata-demo-worker.default.svc"
data_dir = [ "[MEM:2GiB]/etc/fluid/mount/tiered-store/level-0-index-0-emptydir", "[HDD:100GiB]/etc/fluid/mount/tiered-store/level-1-index-0-hostpath", "[HDD:50GiB]/etc/fluid/mount/tiered-store/level-1-index-1-hostpath" ]

[worker.watermarks.MEM]
high = 0.95
low = 0.85

[worker.watermarks.HDD]
high = 0.8
low = 0.5

${MASTER_ADDR}
`,
  );
  assert.equal(p.command, 'worker');
  assert.equal(p.readyPort, 9001);
  assert.deepEqual(p.config.worker.data_dir, [
    {
      storage_type: 'MEM',
      capacity: 2 * 2 ** 30,
      path: '/etc/fluid/mount/tiered-store/level-0-index-0-emptydir',
    },
    {
      storage_type: 'HDD',
      capacity: 100 * 2 ** 30,
      path: '/etc/fluid/mount/tiered-store/level-1-index-0-hostpath',
    },
    {
      storage_type: 'HDD',
      capacity: 50 * 2 ** 30,
      path: '/etc/fluid/mount/tiered-store/level-1-index-1-hostpath',
    },
  ]);
  assert.deepEqual(
    p.dirs,
    p.config.worker.data_dir.map((d) => d.path),
  );
});

test('runtime.json: the client pod mounts the whole namespace at FLUID_RUNTIME_MOUNT_PATH', () => {
  const p = plan(fixtureJson('cache-runtime.json'), 'client');
  assert.equal(
    p.toml,
    `# Written by \`strata fluid cache-runtime\` for the client from runtime.json.
# Rewritten on every start; change the CacheRuntime instead.

cluster_id = "default-strata-demo"

[fuse]
mnt_path = "${MNT}"
fs_path = "/"
options = "subtype=strata"

${MASTER_ADDR}
`,
  );
  assert.equal(p.command, 'fuse');
  assert.equal(p.mountPath, MNT);
  assert.equal(p.fsType, 'fuse.strata');
  assert.equal(p.readyPort, 9003);
  assert.deepEqual(p.dirs, [MNT]);
  // A ReadOnlyMany dataset mounts read-only.
  const ro = structuredClone(fixtureJson('cache-runtime.json')) as Record<string, unknown>;
  ro.accessModes = ['ReadOnlyMany'];
  assert.equal(plan(ro, 'client').config.fuse.options, 'ro,subtype=strata');
});

test('legacy config.json (topology.*.podConfigs, worker.tieredStore[]) gives the same roles', () => {
  const legacy = fixtureJson('cache-runtime-legacy-config.json');
  const env = (c: string) => {
    const e = podEnv(c);
    delete (e as Record<string, string | undefined>).FLUID_RUNTIME_COMPONENT_SVC_NAME;
    return e;
  };
  const master = plan(legacy, 'master', env('master'));
  assert.deepEqual(master.config.client.master_addrs, [
    { hostname: 'strata-demo-master-0.svc-strata-demo-master.default.svc', port: 8995 },
  ]);
  assert.equal(master.config.master.hostname, 'strata-demo-master-0.svc-strata-demo-master.default.svc');
  const worker = plan(legacy, 'worker', env('worker'));
  // No worker service in the legacy topology: the worker is reached by its pod IP.
  assert.equal(worker.config.worker.hostname, '10.0.0.6');
  assert.deepEqual(worker.config.worker.data_dir, [
    { storage_type: 'DISK', capacity: 10 * 2 ** 30, path: '/cache-data' },
  ]);
  assert.deepEqual(worker.config.worker.watermarks.DISK, { high: 0.8, low: 0.5 });
  const client = plan(legacy, 'client', env('client'));
  assert.equal(client.config.fuse.mnt_path, MNT);
  assert.equal(
    client.config.fuse.options,
    'subtype=strata',
    'no accessModes: read-write, as the seed writes through it',
  );
  assert.deepEqual(client.config.client.master_addrs, master.config.client.master_addrs);
});

test("component options merge over the derived values (seed 000's data_dir, dir_reserved, meta_dir)", () => {
  const w = plan(
    withComponent('worker', {
      options: {
        data_dir: '[MEM:32GB]/cache-mem,[SSD:500GB]/cache-ssd,[HDD:2TB]/cache-hdd',
        dir_reserved: '10GB',
        'client.block_size': '64MB',
      },
    }),
    'worker',
  );
  assert.deepEqual(
    w.config.worker.data_dir.map((d) => `${d.storage_type}:${d.capacity}:${d.path}`),
    [`MEM:${32 * 2 ** 30}:/cache-mem`, `SSD:${500 * 2 ** 30}:/cache-ssd`, `HDD:${2 * 2 ** 40}:/cache-hdd`],
  );
  assert.equal(w.config.worker.dir_reserved, 10 * 2 ** 30);
  assert.equal(w.config.client.block_size, 64 * 2 ** 20);
  assert.deepEqual(w.dirs, ['/cache-mem', '/cache-ssd', '/cache-hdd']);
  // The level's watermarks still apply to their tier types.
  assert.deepEqual(w.config.worker.watermarks.MEM, { high: 0.95, low: 0.85 });

  const m = plan(
    withComponent('master', { options: { meta_dir: '/opt/strata/data/meta2', rpc_port: '7995', key1: 'v' } }),
    'master',
  );
  assert.equal(m.config.master.meta_dir, '/opt/strata/data/meta2');
  assert.equal(m.config.master.rpc_port, 7995);
  assert.deepEqual(m.dirs, ['/opt/strata/data/meta2']);
  assert.match(m.warnings.join('\n'), /master\.options\.key1: not a Strata configuration key \(ignored\)/);
  // Every component dials the master's own port.
  const c = plan(withComponent('master', { options: { rpc_port: '7995' } }), 'client');
  assert.equal(c.config.client.master_addrs[0]?.port, 7995);

  const fuse = plan(
    withComponent('client', { options: { io_threads: '48', 'entry-timeout-ms': '5000' } }),
    'client',
  );
  assert.equal(fuse.config.fuse.io_threads, 48);
  assert.equal(fuse.config.fuse.entry_timeout_ms, 5000);
});

test('cluster_id: from the dataset, one for all components, master options may set it', () => {
  assert.equal(clusterIdFor('default', 'strata-demo'), 'default-strata-demo');
  assert.equal(clusterIdFor(undefined, 'x'), 'x');
  const long = clusterIdFor('a-very-long-namespace-name-for-testing', 'and-an-even-longer-dataset-name-here');
  assert.equal(long.length, 63);
  assert.match(long, /^a-very-long-namespace.*-[0-9a-f]{8}$/);
  assert.notEqual(
    long,
    clusterIdFor('a-very-long-namespace-name-for-testing', 'and-an-even-longer-dataset-name-herf'),
  );
  const json = withComponent('master', { options: { cluster_id: 'shared-id' } });
  for (const c of ['master', 'worker', 'client']) assert.equal(plan(json, c).config.cluster_id, 'shared-id');
  const w = plan(withComponent('worker', { options: { cluster_id: 'mine' } }), 'worker');
  assert.equal(w.config.cluster_id, 'default-strata-demo');
  assert.match(w.warnings.join('\n'), /set cluster_id in the master's options/);
});

test('three masters: every pod is listed, and they must share etcd', () => {
  const ha = withComponent('master', {
    replicas: 3,
    options: { meta_store: 'etcd', 'etcd.endpoints': 'etcd-0.etcd:2379,etcd-1.etcd:2379,etcd-2.etcd:2379' },
  });
  const m = plan(ha, 'master', podEnv('master', 2));
  assert.deepEqual(
    m.config.client.master_addrs.map((a) => a.hostname),
    [0, 1, 2].map((i) => `strata-demo-master-${i}.svc-strata-demo-master.default.svc`),
  );
  assert.equal(m.config.master.hostname, 'strata-demo-master-2.svc-strata-demo-master.default.svc');
  assert.equal(m.config.master.meta_store, 'etcd');
  assert.deepEqual(m.config.etcd.endpoints, ['etcd-0.etcd:2379', 'etcd-1.etcd:2379', 'etcd-2.etcd:2379']);
  assert.deepEqual(m.dirs, [], 'no local metadata directory on etcd');
  assert.deepEqual(m.warnings, []);
  assert.equal(plan(ha, 'worker').config.client.master_addrs.length, 3);
  assertProblem(() => plan(withComponent('master', { replicas: 3 }), 'master'), 'master.replicas', /etcd/);
});

test('Kubernetes quantities convert exactly; tiers share one quota or take one per path', () => {
  assert.equal(parseQuantityBytes('2Gi'), 2 * 2 ** 30);
  assert.equal(parseQuantityBytes('500M'), 500e6);
  assert.equal(parseQuantityBytes('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseQuantityBytes('1e9'), 1e9);
  assert.equal(parseQuantityBytes('12345'), 12345);
  assert.equal(parseQuantityBytes('100m'), undefined, 'millibytes are not a quota');
  assert.equal(parseQuantityBytes('-1Gi'), undefined);
  assert.equal(parseQuantityBytes('lots'), undefined);
  assert.equal(renderBytes(2 * 2 ** 30), '2GiB');
  assert.equal(renderBytes(500e6), '500000000');
  assert.equal(renderBytes(1536 * 2 ** 20), '1536MiB');
  const problems: ConfigProblem[] = [];
  const t = deriveTiers(
    [
      { mountPaths: ['/a', '/b'], mediumType: 'SSD', quotas: ['10Gi'], high: '0.9', low: '0.7', where: 'l0' },
      { mountPaths: ['/c'], mediumType: 'hdd', quotas: [], high: undefined, low: undefined, where: 'l1' },
    ],
    problems,
    [],
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(t.dataDirs, ['[SSD:5GiB]/a', '[SSD:5GiB]/b', '[HDD]/c']);
  assert.deepEqual(t.watermarks, { SSD: { high: 0.9, low: 0.7 } });
});

test('every malformed input is one clear problem naming its field', () => {
  const rt = fixtureJson('cache-runtime.json');
  const level = (patch: Record<string, unknown>) =>
    withComponent('worker', {
      tieredStoreLevels: [
        { mountPaths: ['/t0'], mediumType: 'MEM', quotas: ['1Gi'], high: '0.9', low: '0.5', ...patch },
      ],
    });
  assertProblem(
    () => plan(level({ quotas: ['lots'] }), 'worker'),
    'worker.tieredStoreLevels[0].quotas[0]',
    /Kubernetes quantity/,
  );
  assertProblem(
    () => plan(level({ quotas: ['0'] }), 'worker'),
    'worker.tieredStoreLevels[0].quotas[0]',
    /above zero/,
  );
  assertProblem(
    () => plan(level({ mediumType: 'FLASH' }), 'worker'),
    'worker.tieredStoreLevels[0].mediumType',
    /unknown medium \(expected MEM/,
  );
  assertProblem(() => plan(level({ high: '2' }), 'worker'), 'worker.tieredStoreLevels[0].high', /fraction/);
  assertProblem(
    () => plan(level({ low: '0.95' }), 'worker'),
    'worker.tieredStoreLevels[0].low',
    /below high/,
  );
  assertProblem(
    () => plan(level({ mountPaths: ['rel'] }), 'worker'),
    'worker.tieredStoreLevels[0].mountPaths[0]',
    /absolute/,
  );
  assertProblem(
    () => plan(level({ mountPaths: ['/a', '/b', '/c'], quotas: ['1Gi', '2Gi'] }), 'worker'),
    'worker.tieredStoreLevels[0].quotas',
    /one quota per path \(3\)/,
  );
  assertProblem(
    () => plan(level({ mountPaths: '/a' }), 'worker'),
    'worker.tieredStoreLevels[0].mountPaths',
    /list of paths/,
  );
  assertProblem(
    () => plan(withComponent('master', { replicas: 'two' }), 'master'),
    'master.replicas',
    /whole number/,
  );
  assertProblem(
    () => plan(withComponent('master', { replicas: 0 }), 'worker'),
    'master.replicas',
    /at least one/,
  );
  assertProblem(
    () => plan(withComponent('master', { service: { name: '' } }), 'worker'),
    'master.service.name',
    /headless/,
  );
  assertProblem(
    () => plan(withComponent('master', { options: { rpc_port: 'x' } }), 'worker'),
    'master.options.rpc_port',
    /port/,
  );
  assertProblem(
    () => plan(withComponent('worker', { options: { dir_reserved: 'lots' } }), 'worker'),
    'worker.dir_reserved',
    /expected a size/,
  );
  assertProblem(
    () => plan(withComponent('worker', { options: { data_dir: '[FLASH]/x' } }), 'worker'),
    'worker.data_dir[0]',
    /unknown storage type "FLASH"/,
  );
  assertProblem(
    () => plan(rt, 'master', podEnv('bogus')),
    'FLUID_RUNTIME_COMPONENT_TYPE',
    /expected one of master, worker, client/,
  );
  const noPod = podEnv('master');
  delete (noPod as Record<string, string | undefined>).POD_NAME;
  assertProblem(() => plan(rt, 'master', noPod), 'POD_NAME', /metadata\.name/);
  const noMount = podEnv('client');
  delete (noMount as Record<string, string | undefined>).FLUID_RUNTIME_MOUNT_PATH;
  const noTarget = structuredClone(rt) as Record<string, unknown>;
  delete noTarget.targetPath;
  assertProblem(() => plan(noTarget, 'client', noMount), 'FLUID_RUNTIME_MOUNT_PATH', /required/);
  const noMaster = structuredClone(rt) as Record<string, unknown>;
  delete noMaster.master;
  assertProblem(() => plan(noMaster, 'worker'), 'master', /no master component/);
  assertProblem(
    () => plan(noMaster, 'master'),
    'master',
    /runs the master component, but runtime\.json has none/,
  );
  // With STRATA_MASTER_ENDPOINTS the workers join an existing cluster.
  assert.deepEqual(
    plan(noMaster, 'worker', podEnv('worker', 0, { STRATA_MASTER_ENDPOINTS: 'm:8995' })).config.client
      .master_addrs,
    [{ hostname: 'm', port: 8995 }],
  );
  assertProblem(
    () => parseRuntimeSpec({ mounts: [{ mountPoint: 3 }] }, 'runtime.json'),
    'mounts[0].mountPoint',
    /expected a string/,
  );
  assertProblem(
    () => parseRuntimeSpec({ topology: 'x' }, 'config.json'),
    'topology',
    /master, worker and client/,
  );
  assertProblem(
    () =>
      parseRuntimeSpec({ topology: {}, worker: { tieredStore: [{ cacheCapacity: '1Gi' }] } }, 'config.json'),
    'worker.tieredStore[0].cacheDir',
    /path string/,
  );
});
