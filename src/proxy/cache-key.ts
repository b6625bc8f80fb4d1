/**
 * Cache keys. The primary key is the request target (path and query string, as sent: the query
 * is part of the key). Variants (Vary) and slices hang off it with a suffix after a NUL, which
 * never appears in a request target, so a purge finds every entry of a URL by its primary key.
 */
import { createHash } from 'node:crypto';

const SEP = '\u0000';

export function primaryKey(target: string): string {
  return target;
}

/** The primary key an entry belongs to (itself for a plain entry). */
export function familyOf(key: string): string {
  const i = key.indexOf(SEP);
  return i < 0 ? key : key.slice(0, i);
}

/**
 * Key of one variant: the values of the request headers the response varies on, normalised
 * (lower-case names, whitespace around commas collapsed), hashed to keep keys short.
 */
export function variantKey(
  primary: string,
  varyNames: readonly string[],
  requestHeader: (name: string) => string | undefined,
): string {
  const h = createHash('sha256');
  for (const name of varyNames) {
    h.update(name);
    h.update('\u0001');
    const v = requestHeader(name);
    h.update(v === undefined ? '\u0002' : normaliseHeaderValue(v));
    h.update('\u0003');
  }
  return `${primary}${SEP}v:${h.digest('base64url').slice(0, 22)}`;
}

export function sliceKey(primary: string, start: number, end: number): string {
  return `${primary}${SEP}s:${start}-${end}`;
}

/** Vary header field names, lower-cased, de-duplicated, in order. `*` is kept (it never matches). */
export function parseVary(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name !== '' && !out.includes(name)) out.push(name);
  }
  return out;
}

export function normaliseHeaderValue(v: string): string {
  return v
    .trim()
    .replace(/\s*,\s*/g, ',')
    .replace(/\s+/g, ' ');
}
