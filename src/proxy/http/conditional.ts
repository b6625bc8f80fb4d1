/**
 * Client preconditions evaluated by the cache against a stored or arriving response
 * (RFC 9110 §13.2.2): If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, in that
 * order. GET and HEAD only; other methods go to the origin untouched.
 */
import { getHeader } from './headers.js';
import type { HeaderPairs } from '../store/types.js';

export type Precondition = 'proceed' | 'not-modified' | 'failed';

function etagList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function opaque(tag: string): string {
  return tag.replace(/^W\//, '');
}

function parseDate(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

export function evaluatePreconditions(
  req: Record<string, string>,
  status: number,
  headers: HeaderPairs,
): Precondition {
  if (status !== 200) return 'proceed';
  const etag = getHeader(headers, 'etag');
  const lastModified = parseDate(getHeader(headers, 'last-modified'));
  const ifMatch = req['if-match'];
  if (ifMatch !== undefined) {
    const tags = etagList(ifMatch);
    const ok =
      tags.includes('*') ||
      (etag !== undefined && !etag.startsWith('W/') && tags.some((t) => !t.startsWith('W/') && t === etag));
    if (!ok) return 'failed';
  } else {
    const ius = parseDate(req['if-unmodified-since']);
    if (ius !== undefined && lastModified !== undefined && lastModified > ius) return 'failed';
  }
  const inm = req['if-none-match'];
  if (inm !== undefined) {
    const tags = etagList(inm);
    if (tags.includes('*') || (etag !== undefined && tags.some((t) => opaque(t) === opaque(etag))))
      return 'not-modified';
    return 'proceed';
  }
  const ims = parseDate(req['if-modified-since']);
  if (ims !== undefined) {
    const lm = lastModified ?? parseDate(getHeader(headers, 'date'));
    if (lm !== undefined && lm <= ims) return 'not-modified';
  }
  return 'proceed';
}

/** Header fields a 304 carries (RFC 9110 §15.4.5), taken from the full response's. */
const NOT_MODIFIED_FIELDS: ReadonlySet<string> = new Set([
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'vary',
  'last-modified',
  'age',
]);

export function notModifiedHeaders(headers: HeaderPairs): HeaderPairs {
  return headers.filter(([k]) => NOT_MODIFIED_FIELDS.has(k) || !k.startsWith('content-'));
}

export function hasPreconditions(req: Record<string, string>): boolean {
  return (
    req['if-none-match'] !== undefined ||
    req['if-modified-since'] !== undefined ||
    req['if-match'] !== undefined ||
    req['if-unmodified-since'] !== undefined
  );
}
