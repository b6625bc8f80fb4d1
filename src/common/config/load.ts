/**
 * Finds, reads and validates the cluster configuration. Every problem is collected and reported
 * at once (key path, bad value, what is allowed); unknown keys are warnings with a suggestion.
 *
 * Lookup order: `--conf FILE`, then `$STRATA_CONF_FILE`, then `./conf/strata-cluster.toml`, then
 * built-in defaults. Environment overrides (`STRATA_MASTER_HOSTNAME`, `STRATA_WORKER_HOSTNAME`,
 * `STRATA_CLIENT_HOSTNAME`, `STRATA_MASTER_ENDPOINTS`) apply on top of the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { ConfigProblem } from '../errors.js';
import { closest } from '../suggest.js';
import { clusterConfigSchema, SECRET_KEYS } from './schema.js';
import type { ClusterConfig, MasterAddr } from './schema.js';
import { unwrapSchema, zodDef } from './zod-introspect.js';

export const DEFAULT_CONF_PATH = 'conf/strata-cluster.toml';

export interface LoadOptions {
  /** Path given on the command line (`--conf`). */
  path?: string;
  /** Environment to read overrides from (defaults to process.env). */
  env?: Record<string, string | undefined>;
  /** Working directory for the `./conf/...` default. */
  cwd?: string;
  /** Raw-key overrides applied after the file and environment, e.g. from CLI flags. */
  overrides?: RawOverride[];
}

export interface RawOverride {
  /** Dotted key path in file form, e.g. `client.master_addrs`. */
  key: string;
  value: unknown;
  /** Where it came from, used in messages (e.g. `--master`). */
  source: string;
}

export interface LoadedConfig {
  config: ClusterConfig;
  /** The file read, or undefined when built-in defaults were used. */
  source: string | undefined;
  warnings: string[];
}

type Raw = Record<string, unknown>;

/** Resolves which file to read; an explicitly named file that does not exist is an error. */
export function resolveConfigPath(opts: LoadOptions = {}): string | undefined {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  if (opts.path !== undefined && opts.path !== '') return resolve(cwd, opts.path);
  const fromEnv = env.STRATA_CONF_FILE;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(cwd, fromEnv);
  const local = resolve(cwd, DEFAULT_CONF_PATH);
  return existsSync(local) ? local : undefined;
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const path = resolveConfigPath(opts);
  let text = '';
  if (path !== undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'file not found'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
      throw new ConfigError([{ key: '(file)', message: `cannot read ${path}: ${why}` }], path);
    }
  }
  return parseConfigText(text, path, opts);
}

/** Parses TOML text (empty text = all defaults); exposed for tests and for `check-config`. */
export function parseConfigText(
  text: string,
  source: string | undefined,
  opts: LoadOptions = {},
): LoadedConfig {
  const label = source ?? '(built-in defaults)';
  let raw: Raw;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(
        [
          {
            key: `(line ${err.line}, column ${err.column})`,
            message: `TOML syntax error: ${firstLine(err.message)}`,
          },
        ],
        label,
      );
    }
    throw err;
  }
  const problems: ConfigProblem[] = [];
  applyEnvOverrides(raw, opts.env ?? process.env, problems);
  for (const o of opts.overrides ?? []) setPath(raw, o.key.split('.'), o.value);

  const warnings = unknownKeyWarnings(raw);
  const result = clusterConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push({
        key: formatPath(issue.path),
        message: issue.message,
        value: 'input' in issue ? issue.input : undefined,
      });
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems, label);
  const parsed = result.data;
  const masterAddrs: MasterAddr[] = parsed.client.master_addrs ?? [
    { hostname: parsed.master.hostname, port: parsed.master.rpc_port },
  ];
  const config: ClusterConfig = { ...parsed, client: { ...parsed.client, master_addrs: masterAddrs } };
  const semantic = semanticProblems(config);
  if (semantic.length > 0) throw new ConfigError(semantic, label);
  return { config, source, warnings };
}

/** The built-in defaults, for roles started without any file (tests, `strata local`). */
export function defaultConfig(): ClusterConfig {
  return parseConfigText('', undefined, { env: {} }).config;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function applyEnvOverrides(
  raw: Raw,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): void {
  const hostKeys: [string, string[]][] = [
    ['STRATA_MASTER_HOSTNAME', ['master', 'hostname']],
    ['STRATA_WORKER_HOSTNAME', ['worker', 'hostname']],
    ['STRATA_CLIENT_HOSTNAME', ['client', 'hostname']],
  ];
  for (const [name, path] of hostKeys) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(raw, path, v);
  }
  const endpoints = env.STRATA_MASTER_ENDPOINTS;
  if (endpoints !== undefined && endpoints !== '') {
    const addrs = parseEndpoints(endpoints);
    if (addrs === undefined) {
      problems.push({
        key: 'STRATA_MASTER_ENDPOINTS',
        message: 'expected "host:port" entries joined by commas',
        value: endpoints,
      });
    } else {
      setPath(raw, ['client', 'master_addrs'], addrs);
    }
  }
}

/** "h1:8995,h2:8995" → master_addrs tables; undefined when any entry is malformed. */
export function parseEndpoints(text: string): MasterAddr[] | undefined {
  const out: MasterAddr[] = [];
  for (const part of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(part);
    if (m === null) return undefined;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) return undefined;
    out.push({ hostname: (m[1] ?? '').replace(/^\[|\]$/g, ''), port });
  }
  return out.length > 0 ? out : undefined;
}

function setPath(raw: Raw, path: string[], value: unknown): void {
  let node: Raw = raw;
  for (const k of path.slice(0, -1)) {
    const next = node[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[k] = {};
    node = node[k] as Raw;
  }
  const last = path[path.length - 1];
  if (last !== undefined) node[last] = value;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Checks that need more than one key. */
function semanticProblems(c: ClusterConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (c.master.worker_lost_interval <= c.master.heartbeat_interval) {
    out.push({
      key: 'master.worker_lost_interval',
      message: `must be longer than master.heartbeat_interval (${c.master.heartbeat_interval} ms)`,
      value: c.master.worker_lost_interval,
    });
  }
  if (c.master.worker_blacklist_interval > c.master.worker_lost_interval) {
    out.push({
      key: 'master.worker_blacklist_interval',
      message: `must not be longer than master.worker_lost_interval (${c.master.worker_lost_interval} ms)`,
      value: c.master.worker_blacklist_interval,
    });
  }
  if (c.client.block_size % 4096 !== 0) {
    out.push({
      key: 'client.block_size',
      message: 'must be a multiple of 4096 bytes',
      value: c.client.block_size,
    });
  }
  if (!c.fuse.mnt_path.startsWith('/'))
    out.push({ key: 'fuse.mnt_path', message: 'must be an absolute path', value: c.fuse.mnt_path });
  if (!c.fuse.fs_path.startsWith('/'))
    out.push({ key: 'fuse.fs_path', message: 'must be an absolute path', value: c.fuse.fs_path });
  return out;
}

// ---- unknown keys -------------------------------------------------------------------------

function unknownKeyWarnings(raw: Raw): string[] {
  const out: string[] = [];
  walk(raw, clusterConfigSchema, '', out);
  return out;
}

function walk(value: unknown, schema: z.ZodType, prefix: string, out: string[]): void {
  const s = unwrapSchema(schema);
  const d = zodDef(s);
  if (d.type === 'object' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const shape = (s as unknown as { shape: Record<string, z.ZodType> }).shape;
    for (const [k, v] of Object.entries(value)) {
      const key = prefix === '' ? k : `${prefix}.${k}`;
      const child = shape[k];
      if (child === undefined) {
        const hint = closest(k, Object.keys(shape));
        out.push(
          `unknown key ${key} (ignored)${hint === undefined ? '' : `; did you mean ${prefix === '' ? hint : `${prefix}.${hint}`}?`}`,
        );
      } else {
        walk(v, child, key, out);
      }
    }
  } else if (d.type === 'array' && Array.isArray(value) && d.element) {
    value.forEach((v, i) => walk(v, d.element as z.ZodType, `${prefix}[${i}]`, out));
  }
}

// ---- printing -------------------------------------------------------------------------------

/** A copy of the config safe to print: secrets replaced by "***". */
export function maskSecrets(config: ClusterConfig): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  for (const key of SECRET_KEYS) {
    const [section, name] = key.split('.');
    if (section === undefined || name === undefined) continue;
    const sec = copy[section];
    if (sec !== undefined && sec[name] !== undefined) sec[name] = '***';
  }
  return copy;
}
