/**
 * The proxy's YAML configuration: the keys of seed 004 (Pingora slice proxy) plus the few Strata
 * adds (`listen_address`, `health_address`, limits). Every problem is collected and reported at
 * once with its key, the bad value and what is allowed; unknown keys are warnings with a
 * suggestion. Sizes accept bytes or "1MB"-style strings; `cache_ttl` is seconds as in the seed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { YAMLParseError, parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { bool, int, size } from '../common/config/fields.js';
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';
import { parseHostPort } from '../common/net.js';
import { closest } from '../common/suggest.js';
import { SIZE_HELP, parseSize } from '../common/units.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Slices smaller than this cost more in request overhead than they save; larger ones defeat ranges. */
export const SLICE_SIZE_MIN_BYTES = 64 * KiB;
export const SLICE_SIZE_MAX_BYTES = 10 * MiB;
export const BLOCK_SIZE_MIN_BYTES = 512;
export const BLOCK_SIZE_MAX_BYTES = MiB;
/** A raw-disk file smaller than this has no room for its superblocks, journal and some data. */
export const RAW_DISK_MIN_TOTAL_BYTES = 8 * MiB;
export const L2_BACKENDS = ['file', 'raw_disk', 'cluster'] as const;
export type L2Backend = (typeof L2_BACKENDS)[number];
export const PROXY_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Checks "host:port"; an `http://` prefix is tolerated for the upstream (the seed's examples omit it). */
function checkAddress(v: string, ctx: z.RefinementCtx, allowScheme: boolean): string {
  let text = v.trim();
  if (allowScheme && /^http:\/\//i.test(text)) text = text.slice(7).replace(/\/$/, '');
  if (allowScheme && /^https:\/\//i.test(text)) {
    ctx.addIssue({
      code: 'custom',
      message: 'https upstreams are not supported (terminate TLS in front, as the seed does)',
      input: v,
    });
    return v;
  }
  const hp = parseHostPort(text);
  if (hp === undefined || hp.host === '') {
    ctx.addIssue({ code: 'custom', message: 'expected "host:port" with a port from 0 to 65535', input: v });
    return v;
  }
  return text;
}

const ADDRESS_HELP = 'expected "host:port", e.g. "127.0.0.1:8080"';

function address(def: string) {
  return z
    .string({ error: ADDRESS_HELP })
    .prefault(def)
    .transform((v, ctx) => checkAddress(v, ctx, false));
}

function upstreamAddress() {
  return z
    .string({ error: 'expected "host:port" of the origin, e.g. "origin.example.com:80"' })
    .transform((v, ctx) => checkAddress(v, ctx, true));
}

const rawDiskSection = z
  .object({
    device_path: z.string({ error: 'expected a path to the cache file or device' }).optional(),
    total_size: size(GiB, RAW_DISK_MIN_TOTAL_BYTES, Number.MAX_SAFE_INTEGER),
    block_size: z
      .union([z.string(), z.number()], { error: `expected ${SIZE_HELP}` })
      .prefault(4096)
      .transform((v, ctx) => {
        const n = parseSize(v);
        const ok =
          n !== undefined && n >= BLOCK_SIZE_MIN_BYTES && n <= BLOCK_SIZE_MAX_BYTES && (n & (n - 1)) === 0;
        if (!ok) {
          ctx.addIssue({
            code: 'custom',
            message: `expected a power of two from ${BLOCK_SIZE_MIN_BYTES} to ${BLOCK_SIZE_MAX_BYTES} bytes (512, 1024, 2048, 4096, ... 1048576)`,
            input: v,
          });
          return z.NEVER;
        }
        return n;
      }),
    use_direct_io: bool(false),
    enable_compression: bool(false),
    enable_prefetch: bool(true),
    enable_zero_copy: bool(false),
  })
  .prefault({});

/**
 * Strata: L2 `cluster`. `master_addrs` as in the cluster's `client.master_addrs`: a
 * comma-separated string or a list of "host:port".
 */
const clusterSection = z
  .object({
    master_addrs: z
      .union([z.string(), z.array(z.string())], {
        error: 'expected "host:port" or a list of them, e.g. "10.0.0.1:19998,10.0.0.2:19998"',
      })
      .prefault([])
      .transform((v, ctx) => {
        const list = (Array.isArray(v) ? v : v.split(',')).map((a) => a.trim()).filter((a) => a !== '');
        return list.map((a) => checkAddress(a, ctx, false));
      }),
    root: z
      .string({ error: 'expected an absolute path in the Strata namespace' })
      .prefault('/.strata-proxy')
      .refine((v) => v.startsWith('/') && v.length > 1, {
        error: 'expected an absolute path in the Strata namespace other than "/"',
      }),
    replicas: int(1, 1, 10, 'a number of copies'),
    spool_dir: z.string({ error: 'expected a local directory path' }).optional(),
  })
  .prefault({});

export const proxyConfigSchema = z.object({
  listen_address: address('0.0.0.0:8080'),
  health_address: address('0.0.0.0:8081'),
  upstream_address: upstreamAddress(),
  slice_size: size(MiB, SLICE_SIZE_MIN_BYTES, SLICE_SIZE_MAX_BYTES),
  max_concurrent_subrequests: int(4, 1, 64, 'a number of sub-requests'),
  max_retries: int(3, 0, 10, 'a number of retries'),
  slice_patterns: z
    .array(z.string({ error: 'expected a regular expression string' }), {
      error: 'expected a list of regular expressions matched against the request path',
    })
    .prefault([])
    .superRefine((list, ctx) => {
      list.forEach((p, i) => {
        try {
          new RegExp(p);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            message: `not a valid regular expression: ${(err as Error).message}`,
            input: p,
            path: [i],
          });
        }
      });
    }),
  enable_cache: bool(true),
  cache_ttl: int(3600, 0, 10 * 365 * 86400, 'a number of seconds'),
  /**
   * Strata: give `cache_ttl` seconds of freshness to storable responses that carry no explicit
   * freshness (no max-age, s-maxage or Expires). Off by default: RFC 9111 caches only what the
   * origin marks fresh or gives a validator for.
   */
  cache_ttl_fallback: bool(false),
  l1_cache_size_bytes: size(100 * MiB, 0, Number.MAX_SAFE_INTEGER),
  /** Strata: objects larger than this skip L1 (they stream from L2 or the origin). */
  l1_max_object_size_bytes: size(16 * MiB, 0, Number.MAX_SAFE_INTEGER),
  enable_l2_cache: bool(false),
  l2_backend: z
    .string({ error: `expected one of ${L2_BACKENDS.join(', ')}` })
    .prefault('file')
    .transform((v, ctx): L2Backend => {
      const hit = L2_BACKENDS.find((b) => b === v.toLowerCase());
      if (hit === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown backend (expected one of ${L2_BACKENDS.join(', ')})`,
          input: v,
        });
        return z.NEVER;
      }
      return hit;
    }),
  l2_cache_dir: z.string({ error: 'expected a directory path' }).prefault('/var/cache/strata-proxy'),
  /** Strata: the file backend evicts to stay under this many bytes of bodies. */
  l2_cache_max_size_bytes: size(10 * GiB, MiB, Number.MAX_SAFE_INTEGER),
  raw_disk_cache: rawDiskSection,
  cluster_cache: clusterSection,
  metrics_endpoint: z.object({ enabled: bool(true), address: address('0.0.0.0:9090') }).prefault({}),
  purge: z
    .object({
      enabled: bool(false),
      auth_token: z.string({ error: 'expected a token string' }).optional(),
    })
    .prefault({}),
  /** Strata: bound on waiting for upstream headers and between upstream body chunks. */
  upstream_timeout_seconds: int(30, 1, 3600, 'a number of seconds'),
  /** Strata: keep-alive connections kept open to the upstream. */
  upstream_max_connections: int(256, 1, 65536, 'a number of connections'),
  /** Strata: on SIGTERM, in-flight responses get this long to finish before connections close. */
  drain_timeout_seconds: int(30, 0, 3600, 'a number of seconds'),
  log_level: z
    .string({ error: `expected one of ${PROXY_LOG_LEVELS.join(', ')}` })
    .prefault('info')
    .transform((v, ctx) => {
      const hit = PROXY_LOG_LEVELS.find((l) => l === v.toLowerCase());
      if (hit === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown level (expected one of ${PROXY_LOG_LEVELS.join(', ')})`,
          input: v,
        });
        return z.NEVER;
      }
      return hit;
    }),
});

export type ProxyConfig = z.output<typeof proxyConfigSchema>;

/** Keys whose values are never printed or logged. */
export const PROXY_SECRET_KEYS: readonly string[] = ['purge.auth_token'];

/**
 * Keys a SIGHUP applies to the running process. Everything else (addresses, the L2 backend and
 * its geometry) is bound at start and needs a restart.
 */
export const LIVE_KEYS: ReadonlySet<string> = new Set([
  'upstream_address',
  'slice_size',
  'max_concurrent_subrequests',
  'max_retries',
  'slice_patterns',
  'enable_cache',
  'cache_ttl',
  'cache_ttl_fallback',
  'l1_cache_size_bytes',
  'l1_max_object_size_bytes',
  'l2_cache_max_size_bytes',
  'purge.enabled',
  'purge.auth_token',
  'upstream_timeout_seconds',
  'drain_timeout_seconds',
  'log_level',
]);

export interface LoadedProxyConfig {
  config: ProxyConfig;
  source: string;
  warnings: string[];
}

/** Reads and validates a file; a missing or unreadable file is a ConfigError naming it. */
export function loadProxyConfig(path: string): LoadedProxyConfig {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (err as Error).message;
    throw new ConfigError([{ key: '(file)', message: `cannot read ${abs}: ${why}` }], abs);
  }
  return parseProxyConfigText(text, abs);
}

/** Parses YAML text; exposed for tests. Throws ConfigError listing every problem. */
export function parseProxyConfigText(text: string, source: string): LoadedProxyConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const where = pos === undefined ? 'YAML syntax' : `line ${pos.line} column ${pos.col}`;
      throw new ConfigError(
        [{ key: where, message: `YAML syntax error: ${err.message.split('\n')[0] ?? err.message}` }],
        source,
      );
    }
    throw err;
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      [{ key: '(root)', message: 'expected a mapping of keys to values', value: raw }],
      source,
    );
  }
  const warnings = unknownKeyWarnings(raw as Record<string, unknown>);
  const result = proxyConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
      key: formatPath(issue.path),
      message:
        issue.code === 'invalid_type' && (!('input' in issue) || issue.input === undefined)
          ? `required: ${issue.message}`
          : issue.message,
      value: 'input' in issue ? issue.input : undefined,
    }));
    throw new ConfigError(problems, source);
  }
  const semantic = semanticProblems(result.data);
  if (semantic.length > 0) throw new ConfigError(semantic, source);
  return { config: result.data, source, warnings };
}

/** Checks that need more than one key, and features this build does not have. */
function semanticProblems(c: ProxyConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (c.enable_l2_cache && c.l2_backend === 'cluster' && c.cluster_cache.master_addrs.length === 0) {
    out.push({
      key: 'cluster_cache.master_addrs',
      message: 'required when l2_backend is cluster (the masters of the Strata cluster, "host:port,...")',
    });
  }
  if (c.enable_l2_cache && c.l2_backend === 'file' && c.l2_cache_dir.trim() === '') {
    out.push({ key: 'l2_cache_dir', message: 'required when l2_backend is file', value: c.l2_cache_dir });
  }
  if (c.enable_l2_cache && c.l2_backend === 'raw_disk') {
    const dev = c.raw_disk_cache.device_path;
    if (dev === undefined || dev.trim() === '') {
      out.push({
        key: 'raw_disk_cache.device_path',
        message: 'required when l2_backend is raw_disk (a preallocated file or a block device)',
      });
    }
    const bs = c.raw_disk_cache.block_size;
    if (c.raw_disk_cache.total_size % bs !== 0) {
      out.push({
        key: 'raw_disk_cache.total_size',
        message: `must be a multiple of raw_disk_cache.block_size (${bs} bytes)`,
        value: c.raw_disk_cache.total_size,
      });
    }
  }
  if (c.purge.enabled && (c.purge.auth_token === undefined || c.purge.auth_token.length < 8)) {
    out.push({
      key: 'purge.auth_token',
      message: 'required when purge.enabled is true: a bearer token of at least 8 characters',
      value: c.purge.auth_token === undefined ? undefined : '***',
    });
  }
  if (c.l1_max_object_size_bytes > c.l1_cache_size_bytes && c.l1_cache_size_bytes > 0) {
    out.push({
      key: 'l1_max_object_size_bytes',
      message: `must not exceed l1_cache_size_bytes (${c.l1_cache_size_bytes})`,
      value: c.l1_max_object_size_bytes,
    });
  }
  return out;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

// ---- unknown keys -------------------------------------------------------------------------

const KNOWN_NESTED: Readonly<Record<string, readonly string[]>> = {
  raw_disk_cache: Object.keys(rawDiskSection.unwrap().shape),
  metrics_endpoint: ['enabled', 'address'],
  purge: ['enabled', 'auth_token'],
};

function unknownKeyWarnings(raw: Record<string, unknown>): string[] {
  const out: string[] = [];
  const top = Object.keys(proxyConfigSchema.shape);
  for (const [k, v] of Object.entries(raw)) {
    if (!top.includes(k)) {
      const hint = closest(k, top);
      out.push(`unknown key ${k} (ignored)${hint === undefined ? '' : `; did you mean ${hint}?`}`);
      continue;
    }
    const nested = KNOWN_NESTED[k];
    if (nested !== undefined && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      for (const sub of Object.keys(v)) {
        if (!nested.includes(sub)) {
          const hint = closest(sub, nested);
          out.push(
            `unknown key ${k}.${sub} (ignored)${hint === undefined ? '' : `; did you mean ${k}.${hint}?`}`,
          );
        }
      }
    }
  }
  return out;
}

// ---- printing and reload ------------------------------------------------------------------

/** A copy safe to print: secrets replaced by "***". */
export function maskProxySecrets(c: ProxyConfig): Record<string, unknown> {
  const copy = structuredClone(c) as unknown as Record<string, unknown>;
  const purge = copy.purge as Record<string, unknown>;
  if (purge.auth_token !== undefined) purge.auth_token = '***';
  return copy;
}

export function formatProxyConfig(c: ProxyConfig): string {
  return stringifyYaml(maskProxySecrets(c));
}

/** Dotted keys whose values differ between two configurations (nested sections flattened). */
export function changedKeys(a: ProxyConfig, b: ProxyConfig): string[] {
  const out: string[] = [];
  const flat = (c: ProxyConfig): Map<string, string> => {
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(c)) {
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        for (const [s, sv] of Object.entries(v as Record<string, unknown>))
          m.set(`${k}.${s}`, JSON.stringify(sv));
      } else {
        m.set(k, JSON.stringify(v));
      }
    }
    return m;
  };
  const fa = flat(a);
  const fb = flat(b);
  for (const k of new Set([...fa.keys(), ...fb.keys()])) if (fa.get(k) !== fb.get(k)) out.push(k);
  return out.sort();
}
