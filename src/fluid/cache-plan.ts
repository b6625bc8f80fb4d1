/**
 * Generic CacheRuntime (seed 000): Fluid deploys master, workers and client from our
 * CacheRuntimeClass and tells each pod what it is through its environment and `runtime.json`.
 * This module derives, purely, the cluster configuration of one component: the cluster id from
 * the dataset, every master's pod DNS name from the master's name, replicas and headless service,
 * this pod's own name, the worker tiers from the tiered-store levels, the client's mount path,
 * and the component's `options` merged over all of that.
 */
import { createHash } from 'node:crypto';
import type { ClusterConfig, MasterAddr } from '../common/config/index.js';
import { parseEndpoints } from '../common/config/index.js';
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';
import { coerceOption, resolveOptionKey } from './config-keys.js';
import { ConfigDraft, renderToml, unknownOptionWarning, verifyToml } from './draft.js';
import { isReadOnly } from './fluid-json.js';
import type { ComponentSpec, RuntimeSpec } from './runtime-config.js';
import { DEFAULT_FUSE_SUBTYPE } from './thin-plan.js';
import { deriveTiers } from './tiers.js';

export const FLUID_COMPONENTS = ['master', 'worker', 'client'] as const;
export type FluidComponent = (typeof FLUID_COMPONENTS)[number];

/** The `strata` subcommand that runs each component. */
export const COMPONENT_COMMAND: Readonly<Record<FluidComponent, 'master' | 'worker' | 'fuse'>> = {
  master: 'master',
  worker: 'worker',
  client: 'fuse',
};

export const DEFAULT_MASTER_RPC_PORT = 8995;
const CLUSTER_ID_MAX_CHARS = 63;

export interface RolePlan {
  component: FluidComponent;
  command: 'master' | 'worker' | 'fuse';
  toml: string;
  config: ClusterConfig;
  /** Directories the role needs before it starts (metadata, tiers, mount point). */
  dirs: string[];
  /** Client only: where the FUSE mount goes. */
  mountPath: string | undefined;
  /** Client only: `fuse.<subtype>` as /proc/self/mountinfo shows it. */
  fsType: string | undefined;
  /** The port whose `/ready` says this role can serve. */
  readyPort: number;
  warnings: string[];
}

export interface CacheInputs {
  spec: RuntimeSpec;
  /** Which component this pod runs (from FLUID_RUNTIME_COMPONENT_TYPE unless given). */
  component?: string;
  env: Readonly<Record<string, string | undefined>>;
  source: string;
}

/** `<pod>.<service>.<namespace>.svc`: resolvable from every namespace of the cluster. */
export function podDnsName(pod: string, service: string, namespace: string | undefined): string {
  return namespace === undefined || namespace === ''
    ? `${pod}.${service}`
    : `${pod}.${service}.${namespace}.svc`;
}

/**
 * A cluster id from the dataset: `<namespace>-<name>`, in the id's alphabet, at most 63
 * characters (a long one keeps its start and a hash of the whole, so ids never collide by
 * truncation).
 */
export function clusterIdFor(namespace: string | undefined, name: string): string {
  const whole = namespace === undefined || namespace === '' ? name : `${namespace}-${name}`;
  let id = whole.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  if (id === '') id = 'strata';
  if (id.length > CLUSTER_ID_MAX_CHARS) {
    const hash = createHash('sha256').update(whole).digest('hex').slice(0, 8);
    id = `${id.slice(0, CLUSTER_ID_MAX_CHARS - 9)}-${hash}`;
  }
  return id;
}

function masterRpcPort(master: ComponentSpec | undefined, problems: ConfigProblem[]): number {
  const text = master?.options.rpc_port ?? master?.options['rpc-port'];
  if (text === undefined) return DEFAULT_MASTER_RPC_PORT;
  const c = coerceOption('number', text);
  if (!c.ok || typeof c.value !== 'number' || !Number.isInteger(c.value) || c.value < 1 || c.value > 65535) {
    problems.push({ key: 'master.options.rpc_port', message: 'expected a port number 1-65535', value: text });
    return DEFAULT_MASTER_RPC_PORT;
  }
  return c.value;
}

/** Every master's address, from the component's pods (legacy) or name × replicas × service. */
export function masterAddresses(
  spec: RuntimeSpec,
  env: Readonly<Record<string, string | undefined>>,
  problems: ConfigProblem[],
): MasterAddr[] {
  const fromEnv = env.STRATA_MASTER_ENDPOINTS;
  if (fromEnv !== undefined && fromEnv !== '') {
    const addrs = parseEndpoints(fromEnv);
    if (addrs === undefined) {
      problems.push({
        key: 'STRATA_MASTER_ENDPOINTS',
        message: 'expected "host:port" entries joined by commas',
        value: fromEnv,
      });
      return [];
    }
    return addrs;
  }
  const m = spec.master;
  if (m === undefined) {
    problems.push({
      key: 'master',
      message:
        'this runtime has no master component; Strata needs one (or set STRATA_MASTER_ENDPOINTS to an existing cluster)',
    });
    return [];
  }
  const port = masterRpcPort(m, problems);
  const ns = env.FLUID_DATASET_NAMESPACE;
  if (m.pods.length > 0) {
    const key = 'topology.master.podConfigs';
    return m.pods.flatMap((p, i) => {
      const host =
        p.podName !== undefined && m.serviceName !== undefined
          ? podDnsName(p.podName, m.serviceName, ns)
          : p.podIP;
      if (host === undefined || host === '') {
        problems.push({ key: `${key}[${i}]`, message: 'needs podName (with serviceName) or podIP' });
        return [];
      }
      return [{ hostname: host, port: p.rpcPort ?? port }];
    });
  }
  const dataset = env.FLUID_DATASET_NAME;
  const name = m.name ?? (dataset === undefined ? undefined : `${dataset}-master`);
  if (name === undefined) {
    problems.push({
      key: 'master.name',
      message: 'required (or FLUID_DATASET_NAME): the master StatefulSet name',
    });
    return [];
  }
  if (m.serviceName === undefined) {
    problems.push({
      key: 'master.service.name',
      message:
        'required: the CacheRuntimeClass must declare topology.master.service.headless so master pods have DNS names',
    });
    return [];
  }
  const replicas = m.replicas ?? 1;
  if (replicas < 1) {
    problems.push({ key: 'master.replicas', message: 'at least one master is required', value: replicas });
    return [];
  }
  return Array.from({ length: replicas }, (_, i) => ({
    hostname: podDnsName(`${name}-${i}`, m.serviceName as string, ns),
    port,
  }));
}

function ownPodName(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const v = env.POD_NAME ?? env.HOSTNAME;
  return v === undefined || v === '' ? undefined : v;
}

export function planCacheRole(inputs: CacheInputs): RolePlan {
  const { spec, env } = inputs;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const componentText = inputs.component ?? env.FLUID_RUNTIME_COMPONENT_TYPE;
  const component = FLUID_COMPONENTS.find((c) => c === componentText?.trim().toLowerCase());
  if (component === undefined) {
    throw new ConfigError(
      [
        {
          key: 'FLUID_RUNTIME_COMPONENT_TYPE',
          message: `expected one of ${FLUID_COMPONENTS.join(', ')}`,
          value: componentText,
        },
      ],
      inputs.source,
    );
  }
  const own = spec[component];
  if (own === undefined) {
    throw new ConfigError(
      [
        {
          key: component,
          message: `this pod runs the ${component} component, but ${inputs.source} has none`,
        },
      ],
      inputs.source,
    );
  }

  const ns = env.FLUID_DATASET_NAMESPACE;
  const draft = new ConfigDraft();
  const dataset = env.FLUID_DATASET_NAME;
  const baseName = dataset ?? spec.master?.name?.replace(/-master$/, '') ?? 'strata';
  draft.set(['cluster_id'], clusterIdFor(ns, baseName));
  // cluster_id decides where data lives and which workers a master accepts: every component must
  // agree, so one set in the master's options applies to all of them.
  const sharedId = spec.master?.options.cluster_id;
  if (sharedId !== undefined) draft.set(['cluster_id'], sharedId);

  const addrs = masterAddresses(spec, env, problems);

  const pod = ownPodName(env);
  const svc = own.serviceName ?? env.FLUID_RUNTIME_COMPONENT_SVC_NAME;
  const dirs: string[] = [];
  let mountPath: string | undefined;
  let fsType: string | undefined;

  if (component === 'master' || component === 'worker') {
    // The legacy shape lists pod IPs; without a headless service, this pod is reached by its IP.
    const podIp = own.pods.find((p) => p.podName !== undefined && p.podName === pod)?.podIP ?? env.POD_IP;
    if (pod === undefined) {
      problems.push({ key: 'POD_NAME', message: 'required: set it from metadata.name in the pod template' });
    } else if ((svc === undefined || svc === '') && (podIp === undefined || podIp === '')) {
      problems.push({
        key: `${component}.service.name`,
        message: `required: the CacheRuntimeClass must declare topology.${component}.service.headless`,
      });
    } else {
      const host = svc === undefined || svc === '' ? (podIp as string) : podDnsName(pod, svc, ns);
      draft.set([component, 'hostname'], host);
      if (component === 'master' && addrs.length > 0 && !addrs.some((a) => a.hostname === host)) {
        warnings.push(
          `master hostname ${host} is not among client.master_addrs (${addrs.map((a) => a.hostname).join(', ')})`,
        );
      }
    }
  }

  if (component === 'master') {
    const first = addrs[0];
    if (first !== undefined) draft.set(['master', 'rpc_port'], first.port);
  }

  if (component === 'worker') {
    const tiers = deriveTiers(own.tiers, problems, warnings);
    if (tiers.dataDirs.length > 0) draft.set(['worker', 'data_dir'], tiers.dataDirs);
    for (const [type, w] of Object.entries(tiers.watermarks)) {
      if (w.high !== undefined) draft.set(['worker', 'watermarks', type, 'high'], w.high);
      if (w.low !== undefined) draft.set(['worker', 'watermarks', type, 'low'], w.low);
    }
    if (own.tiers.length === 0 && own.options.data_dir === undefined) {
      warnings.push(
        'worker: no tiered store levels and no data_dir option: blocks go to the container filesystem',
      );
    }
  }

  if (component === 'client') {
    mountPath = env.FLUID_RUNTIME_MOUNT_PATH ?? spec.targetPath;
    if (mountPath === undefined || mountPath === '') {
      problems.push({
        key: 'FLUID_RUNTIME_MOUNT_PATH',
        message: 'required: where the client mounts the dataset',
      });
    } else if (!mountPath.startsWith('/')) {
      problems.push({
        key: 'FLUID_RUNTIME_MOUNT_PATH',
        message: 'must be an absolute path',
        value: mountPath,
      });
    } else {
      draft.set(['fuse', 'mnt_path'], mountPath);
    }
    draft.set(['fuse', 'fs_path'], '/');
    if (own.tiers.length > 0) {
      warnings.push('client.tieredStoreLevels: Strata clients keep no local cache tier (ignored)');
    }
  }

  if (addrs.length > 0) draft.set(['client', 'master_addrs'], addrs);
  const { unknown } = draft.applyOptions(
    component,
    withoutShared(own.options, component, warnings),
    `${component}.options`,
    problems,
  );
  for (const k of unknown) warnings.push(unknownOptionWarning(`${component}.options`, k));

  if (component === 'client') {
    const subtype = env.STRATA_FUSE_SUBTYPE ?? DEFAULT_FUSE_SUBTYPE;
    const opts = [
      typeof draft.get(['fuse', 'options']) === 'string' ? String(draft.get(['fuse', 'options'])) : '',
    ];
    // Read-only only when the dataset says so: the legacy shape writes no access modes, and its
    // users write through the client mount (seed 000's first test).
    if (spec.accessModes !== undefined && isReadOnly(spec.accessModes)) opts.push('ro');
    if (subtype !== '') opts.push(`subtype=${subtype}`);
    draft.set(['fuse', 'options'], opts.filter((s) => s !== '').join(','));
    fsType = subtype === '' ? 'fuse' : `fuse.${subtype}`;
  }

  if (component === 'master') {
    const replicas = addrs.length;
    const store = draft.get(['master', 'meta_store']);
    if (replicas > 1 && (typeof store !== 'string' || store.toLowerCase() !== 'etcd')) {
      problems.push({
        key: 'master.replicas',
        message:
          'several masters need a shared metadata store: set master options meta_store: "etcd" and etcd.endpoints',
        value: replicas,
      });
    }
  }

  if (problems.length > 0) throw new ConfigError(problems, inputs.source);

  const toml = renderToml(draft, [
    `Written by \`strata fluid cache-runtime\` for the ${component} from ${inputs.source}.`,
    'Rewritten on every start; change the CacheRuntime instead.',
  ]);
  const config = verifyToml(toml, `${component} configuration derived from ${inputs.source}`);
  if (component === 'master' && config.master.meta_store === 'lmdb') dirs.push(config.master.meta_dir);
  if (component === 'worker') for (const d of config.worker.data_dir) dirs.push(d.path);
  if (component === 'client' && mountPath !== undefined) dirs.push(config.fuse.mnt_path);
  const readyPort =
    component === 'master'
      ? config.master.web_port
      : component === 'worker'
        ? config.worker.web_port
        : config.fuse.web_port;
  return {
    component,
    command: COMPONENT_COMMAND[component],
    toml,
    config,
    dirs,
    mountPath: component === 'client' ? config.fuse.mnt_path : undefined,
    fsType,
    readyPort,
    warnings,
  };
}

/** Options that were already applied across components (see cluster_id above). */
function withoutShared(
  options: Readonly<Record<string, string>>,
  component: FluidComponent,
  warnings: string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    const hit = resolveOptionKey(component, k);
    if (hit !== undefined && hit.path.length === 1 && hit.path[0] === 'cluster_id') {
      if (component !== 'master') {
        warnings.push(
          `${component}.options.${k}: ignored; set cluster_id in the master's options, it applies to all`,
        );
      }
      continue;
    }
    out[k] = v;
  }
  return out;
}
