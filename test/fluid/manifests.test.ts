// Proves the deploy files hang together without a cluster: `kubectl kustomize` renders every
// overlay, every object validates against the Kubernetes schemas (kubernetes-models) or Fluid's
// CRDs (ajv, unknown fields refused), the configurations inside are valid and agree with the
// objects that run them, and the Fluid objects derive valid Strata configurations.
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import type { ClusterConfig } from '../../src/common/config/index.js';
import { parseRuntimeSpec, planCacheRole, planThin } from '../../src/fluid/index.js';
import { requireTools } from '../helpers/ci.js';
import { run } from '../helpers/process.js';
import { FLUID_FIXTURES, REPO_ROOT } from './helpers.js';
import { commentedSections, CrdValidator, describe, parseDocs, validateBuiltin } from './schemas.js';
import type { Doc } from './schemas.js';

const K8S = join(REPO_ROOT, 'deploy', 'k8s');
const FLUID = join(REPO_ROOT, 'deploy', 'fluid');
const crds = new CrdValidator(join(FLUID_FIXTURES, 'crds'));

async function validateAll(docs: Doc[]): Promise<string[]> {
  const errors: string[] = [];
  for (const d of docs) errors.push(...(crds.handles(d) ? crds.validate(d) : await validateBuiltin(d)));
  return errors;
}

async function render(dir: string): Promise<Doc[]> {
  const r = await run('kubectl', ['kustomize', dir], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `kubectl kustomize ${dir}: ${r.stderr}`);
  return parseDocs(r.stdout);
}

// ---- typed views of the rendered objects ------------------------------------------------------

interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  securityContext?: { privileged?: boolean };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string }[];
}
interface Volume {
  name: string;
  emptyDir?: { medium?: string; sizeLimit?: string };
  hostPath?: { path: string };
  configMap?: { name: string };
}
interface Workload extends Doc {
  metadata: { name: string; namespace?: string };
  spec: {
    replicas?: number;
    serviceName?: string;
    template: { spec: { containers: Container[]; volumes?: Volume[] } };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

function find(docs: Doc[], kind: string, name: string): Workload {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(d, `${kind}/${name} rendered`);
  return d as Workload;
}

function clusterConfig(docs: Doc[]): { config: ClusterConfig; cmName: string } {
  const cm = docs.find((d) => d.kind === 'ConfigMap') as {
    metadata: { name: string };
    data: Record<string, string>;
  };
  const text = cm.data['strata-cluster.toml'];
  assert.ok(text !== undefined, 'ConfigMap holds strata-cluster.toml');
  const loaded = parseConfigText(text, cm.metadata.name, { env: {} });
  assert.deepEqual(loaded.warnings, [], 'no unknown keys');
  return { config: loaded.config, cmName: cm.metadata.name };
}

/** The container runs `strata <role> --conf F` with F from the config ConfigMap. */
function checkRunsRole(w: Workload, role: string, cmName: string): Container {
  const c = w.spec.template.spec.containers[0];
  assert.ok(c);
  assert.deepEqual(c.args?.slice(0, 2), [role, '--conf']);
  const conf = c.args?.[2] ?? '';
  const mount = c.volumeMounts?.find((m) => conf.startsWith(`${m.mountPath}/`));
  assert.ok(mount, `${w.metadata.name}: ${conf} is on a volume`);
  const vol = w.spec.template.spec.volumes?.find((v) => v.name === mount.name);
  assert.equal(vol?.configMap?.name, cmName, `${w.metadata.name}: config from the generated ConfigMap`);
  assert.equal(conf.slice(mount.mountPath.length + 1), 'strata-cluster.toml');
  return c;
}

function mountOf(w: Workload, c: Container, path: string): { volume: Volume | undefined; claim: boolean } {
  const m = c.volumeMounts?.find((v) => path === v.mountPath || path.startsWith(`${v.mountPath}/`));
  assert.ok(m, `${w.metadata.name}: ${path} is on a volume`);
  return {
    volume: w.spec.template.spec.volumes?.find((v) => v.name === m.name),
    claim: (w.spec.volumeClaimTemplates ?? []).some((t) => t.metadata.name === m.name),
  };
}

async function checkOverlay(
  dir: string,
  namespace: string | undefined,
): Promise<{ docs: Doc[]; config: ClusterConfig }> {
  const docs = await render(dir);
  assert.deepEqual(await validateAll(docs), [], `${dir}: every object validates`);
  if (namespace !== undefined) {
    for (const d of docs) {
      if (d.kind === 'Namespace') continue;
      assert.equal(
        (d.metadata as { namespace?: string }).namespace,
        namespace,
        `${describe(d)} in ${namespace}`,
      );
    }
  }
  const { config, cmName } = clusterConfig(docs);

  const master = find(docs, 'StatefulSet', 'strata-master');
  const mc = checkRunsRole(master, 'master', cmName);
  const masters = master.spec.replicas ?? 1;
  assert.equal(master.spec.serviceName, 'strata-master');
  assert.deepEqual(
    config.client.master_addrs,
    Array.from({ length: masters }, (_, i) => ({ hostname: `strata-master-${i}.strata-master`, port: 8995 })),
    'client.master_addrs lists every master pod',
  );
  assert.equal(mc.ports?.find((p) => p.name === 'rpc')?.containerPort, config.master.rpc_port);
  assert.equal(mc.ports?.find((p) => p.name === 'web')?.containerPort, config.master.web_port);
  assert.equal(mc.readinessProbe?.httpGet?.path, '/ready');
  assert.ok(
    mc.env?.some(
      (e) => e.name === 'STRATA_MASTER_HOSTNAME' && e.value?.startsWith('$(POD_NAME).strata-master.'),
    ),
  );
  if (config.master.meta_store === 'lmdb') {
    assert.equal(masters, 1, 'the embedded store serves one master');
    assert.ok(mountOf(master, mc, config.master.meta_dir).claim, 'LMDB metadata on a persistent volume');
  } else {
    assert.ok(masters >= 3, 'several masters on etcd');
    const etcd = find(docs, 'StatefulSet', 'strata-etcd');
    const members = Array.from(
      { length: etcd.spec.replicas ?? 1 },
      (_, i) => `http://strata-etcd-${i}.${etcd.spec.serviceName}:2379`,
    );
    assert.deepEqual(config.etcd.endpoints, members, '[etcd] endpoints are the etcd members');
  }

  const worker = find(docs, 'StatefulSet', 'strata-worker');
  const wc = checkRunsRole(worker, 'worker', cmName);
  assert.equal(wc.ports?.find((p) => p.name === 'rpc')?.containerPort, config.worker.rpc_port);
  assert.ok(wc.env?.some((e) => e.name === 'STRATA_WORKER_HOSTNAME'));
  for (const tier of config.worker.data_dir) {
    const { volume, claim } = mountOf(worker, wc, tier.path);
    if (tier.storage_type === 'MEM') {
      assert.equal(volume?.emptyDir?.medium, 'Memory', `${tier.path}: a MEM tier is a tmpfs`);
      const limit = volume?.emptyDir?.sizeLimit ?? '';
      assert.ok(tier.capacity !== null && tier.capacity <= Number(/^(\d+)Gi$/.exec(limit)?.[1]) * 2 ** 30);
    } else {
      assert.ok(claim, `${tier.path}: a disk tier on a persistent volume`);
    }
  }

  const fuse = find(docs, 'DaemonSet', 'strata-fuse');
  const fc = checkRunsRole(fuse, 'fuse', cmName);
  assert.equal(fc.securityContext?.privileged, true);
  assert.equal(mountOf(fuse, fc, '/dev/fuse').volume?.hostPath?.path, '/dev/fuse');
  const mnt = fc.volumeMounts?.find((m) => config.fuse.mnt_path.startsWith(`${m.mountPath}/`));
  assert.equal(mnt?.mountPropagation, 'Bidirectional', 'the FUSE mount propagates to the host');
  assert.match(config.fuse.options, /subtype=strata/);
  return { docs, config };
}

const kubectl = requireTools('kubectl');

test('base renders and validates', { skip: kubectl }, async () => {
  await checkOverlay(join(K8S, 'base'), undefined);
});

test('dev overlay: one master on LMDB, one worker', { skip: kubectl }, async () => {
  const { docs, config } = await checkOverlay(join(K8S, 'overlays', 'dev'), 'strata-dev');
  assert.equal(find(docs, 'StatefulSet', 'strata-worker').spec.replicas, 1);
  assert.equal(config.master.meta_store, 'lmdb');
});

test(
  'production overlay: three masters on a three-member etcd, four workers on SSD',
  { skip: kubectl },
  async () => {
    const { docs, config } = await checkOverlay(join(K8S, 'overlays', 'production'), 'strata');
    assert.equal(config.master.meta_store, 'etcd');
    assert.equal(find(docs, 'StatefulSet', 'strata-master').spec.replicas, 3);
    assert.equal(find(docs, 'StatefulSet', 'strata-etcd').spec.replicas, 3);
    assert.equal(find(docs, 'StatefulSet', 'strata-worker').spec.replicas, 4);
    assert.deepEqual(
      config.worker.data_dir.map((d) => d.storage_type),
      ['MEM', 'SSD'],
    );
  },
);

// ---- Fluid manifests -----------------------------------------------------------------------------

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );
}

const fluidFiles = yamlFiles(FLUID);
const fluidDocs = new Map(fluidFiles.map((f) => [relative(FLUID, f), parseDocs(readFileSync(f, 'utf8'))]));

function fluidDoc(file: string, kind: string, name?: string): Doc {
  const d = (fluidDocs.get(file) ?? []).find(
    (x) => x.kind === kind && (name === undefined || x.metadata?.name === name),
  );
  assert.ok(d, `${file}: ${kind} ${name ?? ''}`);
  return d;
}

test('every Fluid manifest validates against Fluid CRDs or the Kubernetes schemas', async () => {
  assert.ok(fluidFiles.length >= 8);
  const kinds = new Set<string>();
  for (const [file, docs] of fluidDocs) {
    assert.ok(docs.length > 0, file);
    for (const d of docs) kinds.add(d.kind ?? '');
    assert.deepEqual(await validateAll(docs), [], file);
  }
  for (const k of [
    'CacheRuntimeClass',
    'CacheRuntime',
    'Dataset',
    'DataLoad',
    'ThinRuntimeProfile',
    'ThinRuntime',
    'Pod',
  ])
    assert.ok(kinds.has(k), `ships a ${k}`);
});

test("the dataset file's commented sections (multi-tier, production) are valid when uncommented", async () => {
  const text = readFileSync(join(FLUID, 'cache-runtime', 'strata-dataset.yaml'), 'utf8');
  const sections = commentedSections(text);
  assert.deepEqual([...sections.keys()], ['MULTI-TIER', 'PRODUCTION']);
  for (const [name, yaml] of sections) {
    const docs = parseDocs(yaml);
    assert.ok(
      docs.some((d) => d.kind === 'CacheRuntime'),
      name,
    );
    assert.deepEqual(await validateAll(docs), [], name);
  }
  assert.equal(
    parseDocs(sections.get('PRODUCTION') ?? '').filter((d) => d.kind === 'PersistentVolumeClaim').length,
    2,
  );
});

test("the CRD check bites: the seed's own tieredStore shape is refused, naming the field", () => {
  const seedShape = {
    apiVersion: 'data.fluid.io/v1alpha1',
    kind: 'CacheRuntime',
    metadata: { name: 'x' },
    spec: {
      runtimeClassName: 'strata',
      worker: { tieredStore: { levels: [{ quota: '10Gi', low: '0.5', high: '0.8', path: '/cache-data' }] } },
    },
  };
  const errors = crds.validate(seedShape);
  assert.ok(
    errors.some((e) => e.includes('/spec/worker/tieredStore/levels/0') && e.includes('"path"')),
    errors.join('\n'),
  );
  assert.ok(crds.validate({ ...seedShape, spec: {} }).some((e) => e.includes('runtimeClassName')));
  // Fluid's own samples are valid.
  for (const f of ['cacheruntime.yaml', 'cacheruntimeclass.yaml', 'dataset.yaml', 'dataload.yaml']) {
    for (const d of parseDocs(readFileSync(join(FLUID_FIXTURES, 'e2e-samples', f), 'utf8')))
      assert.deepEqual(crds.validate(d), [], f);
  }
});

/** runtime.json as Fluid writes it for a CacheRuntime (see reference/fluid.md). */
function runtimeJsonFor(dataset: Doc, runtime: Doc): unknown {
  const ds = dataset.spec as {
    accessModes?: string[];
    mounts: {
      mountPoint: string;
      name: string;
      path?: string;
      options?: Record<string, string>;
      encryptOptions?: { name: string; valueFrom: { secretKeyRef: { name: string; key: string } } }[];
    }[];
  };
  const spec = runtime.spec as Record<
    string,
    {
      replicas?: number;
      options?: Record<string, string>;
      tieredStore?: { levels: Record<string, unknown>[] };
    }
  >;
  const name = runtime.metadata?.name ?? '';
  const levels = (spec.worker?.tieredStore?.levels ?? []).map((l, i) => {
    const emptyDir = l.emptyDir as { medium?: string; quota: string } | undefined;
    const hostPath = l.hostPath as { paths: string[]; quotas: string[] } | undefined;
    return emptyDir !== undefined
      ? {
          mountPaths: [`/etc/fluid/mount/tiered-store/level-${i}-index-0-emptydir`],
          mediumType: emptyDir.medium === 'Memory' ? 'MEM' : 'HDD',
          quotas: [emptyDir.quota],
          high: l.high,
          low: l.low,
        }
      : {
          mountPaths: (hostPath?.paths ?? []).map(
            (_, p) => `/etc/fluid/mount/tiered-store/level-${i}-index-${p}-hostpath`,
          ),
          mediumType: 'HDD',
          quotas: hostPath?.quotas ?? [],
          high: l.high,
          low: l.low,
        };
  });
  return {
    // Fluid hands encrypted options over as the files of the Secrets it mounts.
    mounts: ds.mounts.map((m) => ({
      ...m,
      path: m.path ?? `/${m.name}`,
      encryptOptions: Object.fromEntries(
        (m.encryptOptions ?? []).map((e) => [
          e.name,
          `/etc/fluid/secrets/${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`,
        ]),
      ),
    })),
    accessModes: ds.accessModes,
    targetPath: `/runtime-mnt/cache/default/${name}/cache-fuse`,
    master: {
      enabled: true,
      name: `${name}-master`,
      options: spec.master?.options ?? {},
      replicas: spec.master?.replicas ?? 1,
      service: { name: `svc-${name}-master` },
    },
    worker: {
      enabled: true,
      name: `${name}-worker`,
      options: spec.worker?.options ?? {},
      replicas: spec.worker?.replicas ?? 1,
      service: { name: `svc-${name}-worker` },
      tieredStoreLevels: levels,
    },
    client: {
      enabled: true,
      name: `${name}-client`,
      options: spec.client?.options ?? {},
      service: { name: '' },
      tieredStoreLevels: [],
    },
  };
}

test('the shipped CacheRuntimes derive valid configurations for every component, with no unknown option', () => {
  const text = readFileSync(join(FLUID, 'cache-runtime', 'strata-dataset.yaml'), 'utf8');
  const dataset = fluidDoc('cache-runtime/strata-dataset.yaml', 'Dataset');
  const runtimes: [string, Doc][] = [
    ['BASIC', fluidDoc('cache-runtime/strata-dataset.yaml', 'CacheRuntime')],
  ];
  for (const [name, yaml] of commentedSections(text)) {
    const rt = parseDocs(yaml).find((d) => d.kind === 'CacheRuntime');
    assert.ok(rt);
    runtimes.push([name, rt]);
  }
  const cls = fluidDoc('cache-runtime/strata-cache-runtime-class.yaml', 'CacheRuntimeClass') as Doc & {
    fileSystemType: string;
    topology: Record<
      string,
      { template: { spec: { containers: { ports?: { name: string; containerPort: number }[] }[] } } }
    >;
  };
  for (const [name, rt] of runtimes) {
    assert.equal((rt.spec as { runtimeClassName: string }).runtimeClassName, cls.metadata?.name, name);
    const spec = parseRuntimeSpec(runtimeJsonFor(dataset, rt), `${name} runtime.json`);
    for (const component of ['master', 'worker', 'client']) {
      const plan = planCacheRole({
        spec,
        component,
        env: {
          FLUID_DATASET_NAME: 'strata-demo',
          FLUID_DATASET_NAMESPACE: 'default',
          POD_NAME: `strata-demo-${component}-0`,
          FLUID_RUNTIME_MOUNT_PATH: '/runtime-mnt/cache/default/strata-demo/cache-fuse',
        },
        source: name,
      });
      assert.deepEqual(plan.warnings, [], `${name} ${component}`);
      const ports = cls.topology[component]?.template.spec.containers[0]?.ports ?? [];
      assert.equal(
        ports.find((p) => p.name === 'web')?.containerPort,
        plan.readyPort,
        `${component}: probe port is the role's web port`,
      );
      if (component === 'client') assert.equal(plan.fsType, cls.fileSystemType);
      if (component === 'worker' && name === 'BASIC') {
        assert.deepEqual(
          plan.config.worker.data_dir.map((d) => d.path),
          ['/etc/fluid/mount/tiered-store/level-0-index-0-emptydir'],
        );
      }
      if (component === 'master' && name === 'PRODUCTION')
        assert.equal(plan.config.master.meta_store, 'etcd');
    }
  }
  const entries = (
    cls.topology.master as unknown as {
      executionEntries: Record<string, { command: string[]; timeout: number }>;
    }
  ).executionEntries;
  assert.deepEqual(entries.mountUFS?.command, ['strata', 'fluid', 'mount-ufs']);
  assert.deepEqual(entries.reportSummary?.command, ['strata', 'fluid', 'report-summary']);
  for (const e of Object.values(entries)) assert.ok(e.timeout >= 20, 'Fluid waits at least 20 s');
});

test("the shipped ThinRuntime objects give a valid FUSE configuration of the profile's filesystem type", () => {
  const profiles = (fluidDocs.get('thin-runtime/strata-profile.yaml') ?? []) as (Doc & {
    spec: { fileSystemType: string; fuse: { env?: { name: string; value: string }[] } };
  })[];
  for (const rt of fluidDocs.get('thin-runtime/strata-thinruntime.yaml') ?? []) {
    const name = rt.metadata?.name ?? '';
    const profile = profiles.find(
      (p) => p.metadata?.name === (rt.spec as { profileName: string }).profileName,
    );
    assert.ok(profile, `${name}: profile exists`);
    const ds = fluidDoc('thin-runtime/strata-dataset.yaml', 'Dataset', name);
    const dspec = ds.spec as { mounts: unknown[]; accessModes: string[] };
    const env = Object.fromEntries((profile.spec.fuse.env ?? []).map((e) => [e.name, e.value]));
    const plan = planThin({
      json: {
        mounts: dspec.mounts,
        targetPath: `/runtime-mnt/thin/default/${name}/thin-fuse`,
        accessModes: dspec.accessModes,
      },
      source: name,
      env: { ...env, FLUID_RUNTIME_TYPE: 'thin' },
      readSecret: () => '',
    });
    assert.deepEqual(plan.warnings, [], name);
    assert.equal(plan.fsType, profile.spec.fileSystemType, `${name}: mounts as the profile's fileSystemType`);
    if (env.STRATA_IO_THREADS !== undefined)
      assert.equal(plan.config.fuse.io_threads, Number(env.STRATA_IO_THREADS));
  }
  const pod = fluidDoc('thin-runtime/test-pod.yaml', 'Pod') as Doc & {
    spec: { volumes: { persistentVolumeClaim: { claimName: string } }[] };
  };
  assert.equal(
    pod.spec.volumes[0]?.persistentVolumeClaim.claimName,
    'strata-dataset',
    'the PVC is named after the Dataset',
  );
});
