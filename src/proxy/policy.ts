/**
 * RFC 9111 decisions. http-cache-semantics computes storability, freshness lifetime and age;
 * this module decides, for a shared cache, what to store and how a stored response may answer a
 * request (fresh hit, stale-while-revalidate, stale-if-error, or revalidate first), and merges
 * a 304 into stored headers.
 *
 * Corrections to the library: `proxy-revalidate` acts only once a response is stale (RFC 9111
 * §5.2.2.8) instead of zeroing its freshness, so it is taken out of what the library sees and
 * enforced here (as is `must-revalidate`, which the library only applies in `evaluateRequest`,
 * not used here); directive names are matched case-insensitively.
 */
import CachePolicy from 'http-cache-semantics';
import { getHeader, pairsToRecord } from './http/headers.js';
import type { EntryMeta, HeaderPairs } from './store/types.js';

/** Statuses a cache may store without explicit freshness (RFC 9110 §15.1). */
export const HEURISTICALLY_CACHEABLE: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
]);

/** Header fields a 304 never replaces: they describe the stored body itself. */
const NOT_UPDATED_BY_304: ReadonlySet<string> = new Set([
  'content-length',
  'content-range',
  'transfer-encoding',
  'content-encoding',
  'content-md5',
  'etag',
]);

/** Our name in Surrogate-Capability / Surrogate-Control targeting (W3C Edge Architecture). */
export const SURROGATE_TARGET = 'strata';
export const SURROGATE_CAPABILITY = `${SURROGATE_TARGET}="Surrogate/1.0"`;
/** An Age we cannot parse makes the response stale (cache-tests age-parse): treated as this old. */
const INVALID_AGE_SECONDS = 2 ** 31;

export interface PolicySettings {
  cacheTtlSeconds: number;
  /** Give `cacheTtlSeconds` of freshness to storable responses that carry none. */
  cacheTtlFallback: boolean;
}

export type Directives = Record<string, string | true>;

/** Parses a Cache-Control value; a directive given twice keeps its first value. */
export function parseCacheControl(value: string | undefined): Directives {
  const out: Directives = {};
  if (value === undefined) return out;
  for (const part of splitDirectives(value)) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '' || name in out) continue;
    out[name] =
      eq < 0
        ? true
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** Splits on commas outside quoted strings. */
function splitDirectives(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  out.push(cur);
  return out.map((s) => s.trim()).filter((s) => s !== '');
}

/** A non-negative integer delta-seconds, or undefined when absent or malformed. */
export function deltaSeconds(v: string | true | undefined): number | undefined {
  if (v === undefined || v === true) return undefined;
  if (!/^\d+$/.test(v)) return undefined;
  return Math.min(Number(v), 2 ** 31);
}

export interface RequestLike {
  /** The primary cache key (request target). */
  url: string;
  method: string;
  headers: Record<string, string>;
}

function hasExplicitFreshness(cc: Directives, headers: Record<string, string>): boolean {
  return cc['max-age'] !== undefined || cc['s-maxage'] !== undefined || headers.expires !== undefined;
}

/** Surrogate-Control is for this cache: it is not passed on to clients when it addressed us. */
export function clientHeaders(res: HeaderPairs): HeaderPairs {
  return surrogateDirectives(res) === undefined ? res : res.filter(([k]) => k !== 'surrogate-control');
}

/**
 * Surrogate-Control directives meant for us (no target, or `;strata`), or undefined when the
 * response has none. When present they replace Cache-Control for this cache (the W3C Edge
 * Architecture note), so an origin can give the edge its own lifetime.
 */
export function surrogateDirectives(res: HeaderPairs): Directives | undefined {
  const v = getHeader(res, 'surrogate-control');
  if (v === undefined) return undefined;
  const kept: string[] = [];
  for (const part of splitDirectives(v)) {
    const semi = part.indexOf(';');
    if (semi < 0) kept.push(part);
    else if (
      part
        .slice(semi + 1)
        .trim()
        .toLowerCase() === SURROGATE_TARGET
    )
      kept.push(part.slice(0, semi));
  }
  if (kept.length === 0) return undefined;
  return parseCacheControl(kept.join(', '));
}

/** The caching directives this cache obeys: Surrogate-Control for us if any, else Cache-Control. */
export function effectiveDirectives(res: HeaderPairs): Directives {
  return surrogateDirectives(res) ?? parseCacheControl(getHeader(res, 'cache-control'));
}

function formatDirectives(d: Directives): string {
  return Object.entries(d)
    .map(([k, v]) => (v === true ? k : `${k}=${v}`))
    .join(', ');
}

/** A single non-negative integer; lists, duplicates, signs and fractions are not (RFC 9111 §5.1). */
function validAge(v: string | undefined): boolean {
  return v === undefined || /^\d+$/.test(v.trim());
}

/** What the library is shown: revalidation directives removed, the TTL fallback added. */
function libraryHeaders(status: number, res: HeaderPairs, settings: PolicySettings): Record<string, string> {
  const headers = pairsToRecord(res);
  const surrogate = surrogateDirectives(res);
  if (surrogate !== undefined) {
    headers['cache-control'] = formatDirectives(surrogate);
    if (surrogate['max-age'] !== undefined) delete headers.expires;
  }
  if (!validAge(headers.age)) headers.age = String(INVALID_AGE_SECONDS);
  const cc = parseCacheControl(headers['cache-control']);
  // Directive names are case-insensitive; the library compares them as written.
  const parts = splitDirectives(headers['cache-control'] ?? '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? p.toLowerCase() : `${p.slice(0, eq).trim().toLowerCase()}=${p.slice(eq + 1).trim()}`;
    })
    .filter((p) => p.split('=')[0] !== 'proxy-revalidate');
  if (
    settings.cacheTtlFallback &&
    settings.cacheTtlSeconds > 0 &&
    HEURISTICALLY_CACHEABLE.has(status) &&
    !hasExplicitFreshness(cc, headers)
  ) {
    parts.push(`s-maxage=${settings.cacheTtlSeconds}`);
  }
  if (parts.length > 0) headers['cache-control'] = parts.join(', ');
  else delete headers['cache-control'];
  return headers;
}

export function makePolicy(
  req: RequestLike,
  status: number,
  res: HeaderPairs,
  settings: PolicySettings,
): CachePolicy {
  return new CachePolicy(
    { url: req.url, method: req.method, headers: req.headers },
    { status, headers: libraryHeaders(status, res, settings) },
    { shared: true, cacheHeuristic: 0.1, immutableMinTimeToLive: 24 * 3600 * 1000 },
  );
}

export type StoreVerdict = { store: true } | { store: false; reason: string };

/**
 * Whether a response may be stored. Beyond RFC 9111 §3: nothing without freshness or a
 * validator unless the TTL fallback is on, no Set-Cookie unless `public`, never `Vary: *`.
 */
export function storeVerdict(
  policy: CachePolicy,
  status: number,
  res: HeaderPairs,
  settings: PolicySettings,
): StoreVerdict {
  if (!policy.storable()) return { store: false, reason: 'not storable (RFC 9111 §3)' };
  const headers = pairsToRecord(res);
  const cc = effectiveDirectives(res);
  if ((headers.vary ?? '').split(',').some((v) => v.trim() === '*'))
    return { store: false, reason: 'Vary: *' };
  if (headers['set-cookie'] !== undefined && cc.public === undefined)
    return { store: false, reason: 'Set-Cookie without public' };
  const validator = headers.etag !== undefined || headers['last-modified'] !== undefined;
  const fallback =
    settings.cacheTtlFallback && settings.cacheTtlSeconds > 0 && HEURISTICALLY_CACHEABLE.has(status);
  if (!hasExplicitFreshness(cc, headers) && !validator && !fallback)
    return { store: false, reason: 'no freshness and no validator' };
  return { store: true };
}

export type Reuse =
  /** Serve the stored response as is. */
  | { kind: 'fresh' }
  /** Serve it, and refresh it in the background (stale-while-revalidate). */
  | { kind: 'stale-while-revalidate' }
  /** Ask the origin first (conditional if there are validators). */
  | { kind: 'revalidate' };

/** The stored response's own directives (including the revalidation ones hidden from the library). */
export function responseDirectives(meta: EntryMeta): Directives {
  return effectiveDirectives(meta.headers);
}

export interface Freshness {
  ageSeconds: number;
  lifetimeSeconds: number;
}

export function freshnessOf(policy: CachePolicy): Freshness {
  return { ageSeconds: policy.age(), lifetimeSeconds: policy.maxAge() };
}

/** How a stored response may answer a request (RFC 9111 §4.2, §5.2.1, RFC 5861). */
export function evaluateReuse(
  meta: EntryMeta,
  policy: CachePolicy,
  reqHeaders: Record<string, string>,
): Reuse {
  const rescc = responseDirectives(meta);
  const reqcc = parseCacheControl(reqHeaders['cache-control']);
  if (reqcc['no-cache'] !== undefined) return { kind: 'revalidate' };
  if (reqHeaders['cache-control'] === undefined && /no-cache/i.test(reqHeaders.pragma ?? ''))
    return { kind: 'revalidate' };
  if (rescc['no-cache'] !== undefined && rescc['no-cache'] === true) return { kind: 'revalidate' };
  const { ageSeconds: age, lifetimeSeconds: lifetime } = freshnessOf(policy);
  const reqMaxAge = deltaSeconds(reqcc['max-age']);
  if (reqMaxAge !== undefined && age > reqMaxAge) return { kind: 'revalidate' };
  const minFresh = deltaSeconds(reqcc['min-fresh']);
  if (minFresh !== undefined && lifetime - age < minFresh) return { kind: 'revalidate' };
  if (age < lifetime) return { kind: 'fresh' };
  // Stale from here on.
  const mustRevalidate =
    rescc['must-revalidate'] !== undefined ||
    rescc['proxy-revalidate'] !== undefined ||
    rescc['s-maxage'] !== undefined;
  if (mustRevalidate) return { kind: 'revalidate' };
  const maxStale = reqcc['max-stale'];
  if (maxStale === true) return { kind: 'fresh' };
  const maxStaleSeconds = deltaSeconds(maxStale);
  if (maxStaleSeconds !== undefined && age - lifetime <= maxStaleSeconds) return { kind: 'fresh' };
  const swr = deltaSeconds(rescc['stale-while-revalidate']);
  if (swr !== undefined && age - lifetime < swr) return { kind: 'stale-while-revalidate' };
  return { kind: 'revalidate' };
}

/** Whether a stale response may answer after the origin failed (RFC 5861 §4; request may ask too). */
export function staleIfErrorAllows(
  meta: EntryMeta,
  policy: CachePolicy,
  reqHeaders: Record<string, string>,
): boolean {
  const rescc = responseDirectives(meta);
  if (
    rescc['must-revalidate'] !== undefined ||
    rescc['proxy-revalidate'] !== undefined ||
    rescc['no-cache'] !== undefined
  )
    return false;
  const { ageSeconds: age, lifetimeSeconds: lifetime } = freshnessOf(policy);
  const staleBy = age - lifetime;
  const fromResponse = deltaSeconds(rescc['stale-if-error']);
  const fromRequest = deltaSeconds(parseCacheControl(reqHeaders['cache-control'])['stale-if-error']);
  return (
    (fromResponse !== undefined && staleBy <= fromResponse) ||
    (fromRequest !== undefined && staleBy <= fromRequest)
  );
}

/** Whether the stored entry is past every window in which it could still be used without validation. */
export function uselessWithoutValidator(meta: EntryMeta, policy: CachePolicy): boolean {
  const hasValidator =
    getHeader(meta.headers, 'etag') !== undefined || getHeader(meta.headers, 'last-modified') !== undefined;
  return !hasValidator && policy.timeToLive() <= 0;
}

/** Conditional request headers to revalidate a stored response (RFC 9111 §4.3.1). */
export function validatorHeaders(meta: EntryMeta): Record<string, string> {
  const out: Record<string, string> = {};
  const etag = getHeader(meta.headers, 'etag');
  const lm = getHeader(meta.headers, 'last-modified');
  if (etag !== undefined) out['if-none-match'] = etag;
  if (lm !== undefined) out['if-modified-since'] = lm;
  return out;
}

/**
 * Whether a 304 applies to the stored response (RFC 9111 §4.3.4): same strong validator, or
 * same Last-Modified when there is no ETag, or neither side has any validator.
 */
export function notModifiedMatches(meta: EntryMeta, res304: HeaderPairs): boolean {
  const storedEtag = getHeader(meta.headers, 'etag');
  const newEtag = getHeader(res304, 'etag');
  if (newEtag !== undefined) return storedEtag !== undefined && weakEq(storedEtag, newEtag);
  const storedLm = getHeader(meta.headers, 'last-modified');
  const newLm = getHeader(res304, 'last-modified');
  if (newLm !== undefined) return storedLm === newLm;
  return true;
}

export function weakEq(a: string, b: string): boolean {
  return a.trim().replace(/^W\//, '') === b.trim().replace(/^W\//, '');
}

/** Stored headers updated with those of a 304 (RFC 9111 §3.2). */
export function mergeNotModified(stored: HeaderPairs, res304: HeaderPairs): HeaderPairs {
  const replacing = new Set<string>();
  for (const [k] of res304) if (!NOT_UPDATED_BY_304.has(k)) replacing.add(k);
  const out: HeaderPairs = stored.filter(([k]) => !replacing.has(k));
  for (const [k, v] of res304) if (replacing.has(k)) out.push([k, v]);
  return out;
}

/** Age in whole seconds to send (RFC 9111 §5.1). */
export function ageHeader(policy: CachePolicy): string {
  return String(Math.max(0, Math.floor(policy.age())));
}
