/**
 * The pure side of Fluid's CacheRuntime hooks (`mountUFS`, DataLoad): which UFS mounts a
 * Dataset asks for, with Fluid's option names translated to Strata's mount options and
 * encrypted options read from their secret files; what to mount and unmount to reach that set
 * from the current mount table; and where a DataLoad Job finds the master and what it loads.
 * The CLI (src/cli/commands/fluid.ts) does the calls.
 */
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';
import { UFS_OPTION_SPECS, isSecretUfsOption } from '../ufs/options.js';
import { MAX_LOAD_REPLICAS } from '../protocol/mount-calls.js';
import type { MountInfo } from '../protocol/ufs-types.js';
import { isFluidNativeScheme, unifiedPath } from './fluid-json.js';
import type { FluidMount } from './fluid-json.js';
import type { SecretReader } from './inputs.js';

/** One UFS mount the Dataset asks for, in Strata's terms. */
export interface WantedMount {
  uri: string;
  /** Where it appears; undefined lets the master place it 1:1 (Fluid always gives one). */
  path: string | undefined;
  options: Record<string, string>;
  /** The Dataset mount's `readOnly`: mounted so that every change under it fails (EROFS). */
  readOnly: boolean;
}

/**
 * Fluid's short option names (the ones seed 000 and Fluid's samples use) for Strata's keys. A
 * bare key that is `<scheme>.<key>` in Strata's table is taken too (`endpoint_url` →
 * `s3.endpoint_url`); a dotted key is taken as written.
 */
const OPTION_ALIASES: Readonly<Record<string, string>> = {
  access: 's3.credentials.access',
  secret: 's3.credentials.secret',
  'access-key': 's3.credentials.access',
  'secret-key': 's3.credentials.secret',
  access_key: 's3.credentials.access',
  secret_key: 's3.credentials.secret',
};

function schemeOf(uri: string): string {
  const i = uri.indexOf('://');
  return i > 0 ? uri.slice(0, i).toLowerCase() : '';
}

/** Fluid's option name as a Strata mount option key (an unknown key is left for the master to refuse). */
export function ufsOptionKey(scheme: string, key: string): string {
  if (key.includes('.')) return key;
  const alias = OPTION_ALIASES[key];
  if (alias !== undefined) return alias;
  const scoped = `${scheme === 'https' ? 'http' : scheme}.${key.replace(/-/g, '_')}`;
  return scoped in UFS_OPTION_SPECS ? scoped : key;
}

/**
 * The UFS mounts of a Dataset: every mount but Fluid's own `local://` and `pvc://`. Encrypted
 * options are read from their secret files; a missing file is an error naming the option.
 */
export function wantedMounts(
  mounts: readonly FluidMount[],
  readSecret: SecretReader,
  source: string,
): WantedMount[] {
  const problems: ConfigProblem[] = [];
  const out: WantedMount[] = [];
  const paths = new Map<string, number>();
  mounts.forEach((m, i) => {
    if (isFluidNativeScheme(m.mountPoint)) return;
    const scheme = schemeOf(m.mountPoint);
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.options)) options[ufsOptionKey(scheme, k)] = v;
    for (const [k, file] of Object.entries(m.encryptOptions)) {
      try {
        options[ufsOptionKey(scheme, k)] = readSecret(file);
      } catch (err) {
        const why = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
        problems.push({
          key: `mounts[${i}].encryptOptions.${k}`,
          message: `cannot read the secret file (${why}); is the Secret mounted?`,
          value: file,
        });
      }
    }
    const path = unifiedPath(m);
    if (path !== undefined && !path.startsWith('/')) {
      problems.push({ key: `mounts[${i}].path`, message: 'expected an absolute path', value: path });
      return;
    }
    if (path !== undefined) {
      const prev = paths.get(path);
      if (prev !== undefined) {
        problems.push({
          key: `mounts[${i}].path`,
          message: `mounts[${prev}] is already mounted there; give each mount its own path or name`,
          value: path,
        });
        return;
      }
      paths.set(path, i);
    }
    out.push({ uri: m.mountPoint, path, options, readOnly: m.readOnly === true });
  });
  if (problems.length > 0) throw new ConfigError(problems, source);
  return out;
}

export interface MountSync {
  /** Mounted already with the same UFS and options: left alone. */
  keep: WantedMount[];
  /** Missing, or to be mounted again after `unmount` (its UFS, options or readOnly changed). */
  mount: WantedMount[];
  /** Mount points to remove first: no longer listed, or listed with another UFS or options. */
  unmount: string[];
}

/** Non-secret options equal (the master masks secrets, so a changed secret is not seen). */
function sameOptions(wanted: Record<string, string>, current: Record<string, string>): boolean {
  const visible = (o: Record<string, string>): string =>
    JSON.stringify(
      Object.entries(o)
        .filter(([k]) => !isSecretUfsOption(k))
        .sort(([a], [b]) => a.localeCompare(b)),
    );
  return visible(wanted) === visible(current);
}

/**
 * What to change so the mount table holds exactly the Dataset's UFS mounts. Every mount not
 * listed is removed: under a CacheRuntime the Dataset owns the cluster's namespace.
 */
export function planMountSync(wanted: readonly WantedMount[], current: readonly MountInfo[]): MountSync {
  const byPath = new Map(current.map((m) => [m.path, m]));
  const sync: MountSync = { keep: [], mount: [], unmount: [] };
  const listed = new Set<string>();
  for (const w of wanted) {
    const have = w.path === undefined ? undefined : byPath.get(w.path);
    if (w.path !== undefined) listed.add(w.path);
    if (have === undefined) sync.mount.push(w);
    else if (
      have.uri === w.uri &&
      sameOptions(w.options, have.options) &&
      w.readOnly === (have.mountReadOnly === true)
    )
      sync.keep.push(w);
    else {
      sync.unmount.push(have.path);
      sync.mount.push(w);
    }
  }
  for (const m of current) {
    if (!listed.has(m.path) && !wanted.some((w) => w.path === undefined && w.uri === m.uri))
      sync.unmount.push(m.path);
  }
  return sync;
}

/** One path of a DataLoad and the copies of its blocks the DataLoad asks for. */
export interface DataloadPath {
  path: string;
  replicas: number;
}

/**
 * Fluid's DataLoad environment. `FLUID_DATALOAD_DATA_PATH` joins the `spec.target[].path`s with
 * ":" (default "/"); `FLUID_DATALOAD_PATH_REPLICAS` joins their `replicas` the same way, one per
 * path, in order (Fluid writes 1 for a target without replicas). One value for all paths is
 * accepted too; any other count is an error, as is a count outside 1..MAX_DATALOAD_REPLICAS.
 */
export interface DataloadTarget {
  paths: DataloadPath[];
}

/** Most replicas a DataLoad may ask for (the bound of a file's replication). */
export const MAX_DATALOAD_REPLICAS = MAX_LOAD_REPLICAS;

export function dataloadTarget(env: Readonly<Record<string, string | undefined>>): DataloadTarget {
  const problems: ConfigProblem[] = [];
  const rawPaths = env.FLUID_DATALOAD_DATA_PATH ?? '';
  const split = rawPaths.split(':').filter((p) => p !== '');
  const paths = split.length === 0 ? ['/'] : split;
  for (const p of paths) {
    if (!p.startsWith('/'))
      problems.push({
        key: 'FLUID_DATALOAD_DATA_PATH',
        message: 'expected absolute paths joined by ":"',
        value: p,
      });
  }
  const rawReplicas = env.FLUID_DATALOAD_PATH_REPLICAS ?? '';
  const counts: number[] = [];
  for (const c of rawReplicas === '' ? [] : rawReplicas.split(':')) {
    const n = Number(c);
    if (c.trim() === '' || !Number.isInteger(n) || n < 1 || n > MAX_DATALOAD_REPLICAS) {
      problems.push({
        key: 'FLUID_DATALOAD_PATH_REPLICAS',
        message: `expected integers from 1 to ${MAX_DATALOAD_REPLICAS} joined by ":", one per path`,
        value: rawReplicas,
      });
      break;
    }
    counts.push(n);
  }
  if (counts.length > 1 && counts.length !== paths.length) {
    problems.push({
      key: 'FLUID_DATALOAD_PATH_REPLICAS',
      message: `${counts.length} replica counts for ${paths.length} path(s) in FLUID_DATALOAD_DATA_PATH; give one per path (or one for all)`,
      value: rawReplicas,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems, 'the DataLoad environment');
  return {
    paths: paths.map((path, i) => ({ path, replicas: (counts.length === 1 ? counts[0] : counts[i]) ?? 1 })),
  };
}

/**
 * The master of a Dataset seen from a pod of its namespace (a DataLoad Job gets no runtime.json):
 * `<dataset>-master-<i>.svc-<dataset>-master:<port>` for each replica.
 */
export function datasetMasterEndpoints(dataset: string, replicas: number, port: number): string {
  return Array.from(
    { length: replicas },
    (_, i) => `${dataset}-master-${i}.svc-${dataset}-master:${port}`,
  ).join(',');
}
