/**
 * ThinRuntime (seed 001): Fluid runs our image as the FUSE pod of a Dataset whose mount point is
 * `strata:///path`, against a Strata cluster that already exists. This module turns Fluid's
 * `config.json` plus the pod's environment into the cluster configuration the FUSE client reads
 * (the TOML seed 001 shows) and the mount to make. It is pure: files and secrets come in as
 * arguments, so every decision is unit-tested.
 *
 * Precedence, lowest first: built-in defaults; the Dataset mount's `options`; the ThinRuntime's
 * FUSE options (`runtimeOptions`, then `MOUNT_OPTIONS`, which Fluid builds from the profile's and
 * the runtime's `fuse.options`); the `STRATA_*` environment the profile's `env` sets.
 */
import { z } from 'zod';
import { parseEndpoints } from '../common/config/index.js';
import type { ClusterConfig, MasterAddr } from '../common/config/index.js';
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';
import { coerceOption, resolveOptionKey } from './config-keys.js';
import { ConfigDraft, renderToml, unknownOptionWarning, verifyToml } from './draft.js';
import { accessModes, fluidMount, isReadOnly, optionMap } from './fluid-json.js';
import { resolveSecretOptions, zodProblems } from './inputs.js';
import type { SecretReader } from './inputs.js';

/** The FUSE subtype: the mount shows as `fuse.strata`, the ThinRuntimeProfile's fileSystemType. */
export const DEFAULT_FUSE_SUBTYPE = 'strata';

export const THIN_SCHEME = 'strata://';

const thinConfigSchema = z.object(
  {
    mounts: z.array(fluidMount, { error: 'expected a list of mounts' }).min(1, {
      error: 'at least one mount is required (a Dataset mount point "strata:///<path>")',
    }),
    targetPath: z.string({ error: 'expected an absolute path string' }).optional(),
    runtimeOptions: optionMap,
    accessModes,
  },
  { error: 'expected a JSON object' },
);

export interface ThinInputs {
  /** The parsed `config.json`. */
  json: unknown;
  /** Its path, for messages. */
  source: string;
  env: Readonly<Record<string, string | undefined>>;
  readSecret: SecretReader;
}

export interface ThinPlan {
  /** The TOML to write where `strata fuse` reads it. */
  toml: string;
  /** The same, parsed by the roles' loader. */
  config: ClusterConfig;
  /** Where to mount (Fluid's targetPath). */
  mountPath: string;
  /** The Strata path shown there. */
  fsPath: string;
  readOnly: boolean;
  /** `fuse` or `fuse.<subtype>`: what /proc/self/mountinfo must show. */
  fsType: string;
  warnings: string[];
}

/**
 * The seed's environment names (`CURVINE_IO_THREADS`, …) with Strata's prefix, and the config
 * key each one sets.
 */
export const THIN_ENV_KEYS: readonly (readonly [string, readonly string[]])[] = [
  ['STRATA_IO_THREADS', ['fuse', 'io_threads']],
  ['STRATA_WORKER_THREADS', ['fuse', 'worker_threads']],
  ['STRATA_MNT_NUMBER', ['fuse', 'mnt_number']],
  ['STRATA_MASTER_WEB_PORT', ['master', 'web_port']],
];

/** Option keys Fluid itself puts into mount options for its own use (host volumes and the like). */
function isFluidInternalOption(key: string): boolean {
  return key.startsWith('fluid.') || key.includes('/');
}

/** "strata:///data" → { path: "/data", authority: "" }; undefined for anything else. */
export function parseStrataUri(uri: string): { authority: string; path: string } | undefined {
  if (!uri.startsWith(THIN_SCHEME)) return undefined;
  const rest = uri.slice(THIN_SCHEME.length);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const rawPath = slash < 0 ? '/' : rest.slice(slash);
  const parts = rawPath.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return undefined;
  return { authority, path: `/${parts.join('/')}` };
}

/** "k=v,flag,k2=v2" (MOUNT_OPTIONS) → { k: "v", flag: "", k2: "v2" }. */
export function parseOptionList(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

export function planThin(inputs: ThinInputs): ThinPlan {
  const parsed = thinConfigSchema.safeParse(inputs.json, { reportInput: true });
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error), inputs.source);
  const cfg = parsed.data;
  const env = inputs.env;
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];

  if (cfg.mounts.length > 1) {
    problems.push({
      key: 'mounts',
      message: `a Strata ThinRuntime serves one mount point (got ${cfg.mounts.length}); use one Dataset per Strata path`,
    });
  }
  const mount = cfg.mounts[0];
  if (mount === undefined) throw new ConfigError(problems, inputs.source);
  const uri = parseStrataUri(mount.mountPoint);
  if (uri === undefined) {
    problems.push({
      key: 'mounts[0].mountPoint',
      message: `expected "${THIN_SCHEME}/<path>" naming a Strata directory`,
      value: mount.mountPoint,
    });
  }

  const mountPath = cfg.targetPath ?? env.MOUNT_POINT;
  if (mountPath === undefined || mountPath === '') {
    problems.push({ key: 'targetPath', message: 'required: where Fluid expects the FUSE mount' });
  } else if (!mountPath.startsWith('/')) {
    problems.push({ key: 'targetPath', message: 'must be an absolute path', value: mountPath });
  }

  const draft = new ConfigDraft();
  draft.set(['format_master'], false);
  draft.set(['format_worker'], false);
  draft.set(['testing'], false);
  draft.set(['cluster_id'], 'strata');

  // Masters: the mount's `master-endpoints` option, else the URI's authority
  // (`strata://m1:8995,m2:8995/data`), overridden by STRATA_MASTER_ENDPOINTS.
  const options = resolveSecretOptions(mount.options, 'mounts[0].options', inputs.readSecret, problems);
  let masters: MasterAddr[] | undefined;
  let mastersFrom = '';
  const fromOption = options['master-endpoints'] ?? options.master_endpoints;
  if (fromOption !== undefined) {
    masters = parseEndpoints(fromOption);
    mastersFrom = 'mounts[0].options.master-endpoints';
    if (masters === undefined) {
      problems.push({
        key: mastersFrom,
        message: 'expected "host:port" entries joined by commas',
        value: fromOption,
      });
    }
  } else if (uri !== undefined && uri.authority !== '') {
    masters = parseEndpoints(uri.authority);
    mastersFrom = 'mounts[0].mountPoint';
    if (masters === undefined) {
      problems.push({
        key: mastersFrom,
        message: 'the authority must be "host:port" entries joined by commas',
        value: mount.mountPoint,
      });
    }
  }
  const envMasters = env.STRATA_MASTER_ENDPOINTS;
  if (envMasters !== undefined && envMasters !== '') {
    const parsedEnv = parseEndpoints(envMasters);
    if (parsedEnv === undefined) {
      problems.push({
        key: 'STRATA_MASTER_ENDPOINTS',
        message: 'expected "host:port" entries joined by commas',
        value: envMasters,
      });
    } else {
      masters = parsedEnv;
    }
  }
  if (masters === undefined && mastersFrom === '' && (envMasters === undefined || envMasters === '')) {
    problems.push({
      key: 'mounts[0].options.master-endpoints',
      message:
        'required: the Strata masters as "host:port[,host:port…]" (or set STRATA_MASTER_ENDPOINTS in the profile env)',
    });
  }
  const first = masters?.[0];
  if (first !== undefined) {
    draft.set(['master', 'hostname'], first.hostname);
    draft.set(['master', 'rpc_port'], first.port);
  }
  draft.set(['master', 'web_port'], 9000);
  if (masters !== undefined) draft.set(['client', 'master_addrs'], masters);

  const readOnly = mount.readOnly === true || isReadOnly(cfg.accessModes);
  draft.set(['fuse', 'debug'], false);
  draft.set(['fuse', 'io_threads'], 32);
  draft.set(['fuse', 'worker_threads'], 56);
  if (mountPath !== undefined) draft.set(['fuse', 'mnt_path'], mountPath);
  draft.set(['fuse', 'fs_path'], uri?.path ?? '/');

  // Dataset mount options: Strata configuration keys (io-threads, client.block_size, …).
  let subtype = env.STRATA_FUSE_SUBTYPE ?? DEFAULT_FUSE_SUBTYPE;
  const mountOpts: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (k === 'master-endpoints' || k === 'master_endpoints' || isFluidInternalOption(k)) continue;
    if (k === 'fuse-subtype') subtype = v;
    else mountOpts[k] = v;
  }
  const { unknown } = draft.applyOptions('fuse', mountOpts, 'mounts[0].options', problems);
  for (const k of unknown) warnings.push(unknownOptionWarning('mounts[0].options', k));

  // FUSE options: Strata keys are applied, the rest are passed to the mount as `-o` options.
  const fuseOptions = new Map<string, string>();
  const mountOptionsEnv = env.MOUNT_OPTIONS ?? '';
  for (const [where, opts] of [
    ['runtimeOptions', cfg.runtimeOptions],
    ['MOUNT_OPTIONS', parseOptionList(mountOptionsEnv)],
  ] as const) {
    for (const [k, v] of Object.entries(opts)) {
      if (k === 'fuse-subtype') {
        subtype = v;
        continue;
      }
      const hit = resolveOptionKey('fuse', k);
      if (hit === undefined) {
        fuseOptions.set(k, v);
        continue;
      }
      const c = coerceOption(hit.kind, v);
      if (c.ok) draft.set(hit.path, c.value);
      else problems.push({ key: `${where}.${k}`, message: `${hit.path.join('.')}: ${c.message}`, value: v });
    }
  }

  for (const [name, path] of THIN_ENV_KEYS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const c = coerceOption('number', v);
    if (c.ok) draft.set(path, c.value);
    else problems.push({ key: name, message: `${path.join('.')}: expected a number`, value: v });
  }

  if (!/^[A-Za-z0-9_.-]*$/.test(subtype)) {
    problems.push({
      key: 'fuse-subtype',
      message: 'expected letters, digits, ".", "_" or "-" (empty for plain "fuse")',
      value: subtype,
    });
  }
  if (readOnly) fuseOptions.set('ro', '');
  else fuseOptions.delete('ro');
  if (subtype !== '') fuseOptions.set('subtype', subtype);
  const existing = draft.get(['fuse', 'options']);
  const extra = [...fuseOptions].map(([k, v]) => (v === '' ? k : `${k}=${v}`));
  const joined = [typeof existing === 'string' && existing !== '' ? existing : undefined, ...extra]
    .filter((s) => s !== undefined)
    .join(',');
  if (joined !== '') draft.set(['fuse', 'options'], joined);

  if (problems.length > 0) throw new ConfigError(problems, inputs.source);

  const toml = renderToml(draft, [
    `Written by \`strata fluid thin\` from ${inputs.source}; rewritten on every start and remount.`,
  ]);
  const config = verifyToml(toml, `configuration derived from ${inputs.source}`);
  return {
    toml,
    config,
    mountPath: config.fuse.mnt_path,
    fsPath: config.fuse.fs_path,
    readOnly,
    fsType: subtype === '' ? 'fuse' : `fuse.${subtype}`,
    warnings,
  };
}
