/**
 * Conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, and the
 * x-amz-copy-source-if-* forms) and Range headers, evaluated the way S3 does (RFC 7232 order:
 * a matching If-Match overrides If-Unmodified-Since, a failing If-None-Match overrides
 * If-Modified-Since).
 */
import type { IncomingMessage } from 'node:http';
import { S3Error } from './errors.js';
import { header } from './http.js';
import type { ObjectInfo } from './object-meta.js';

export type ConditionResult = 'ok' | 'not-modified' | 'failed';

function etagMatches(list: string, etag: string): boolean {
  return list
    .split(',')
    .map((s) =>
      s
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .some((t) => t === '*' || t === etag);
}

function parseDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Dates in HTTP headers have whole seconds; compare at that resolution. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export function evaluateConditions(req: IncomingMessage, info: ObjectInfo, prefix = ''): ConditionResult {
  const ifMatch = header(req, `${prefix}if-match`);
  const ifNoneMatch = header(req, `${prefix}if-none-match`);
  const ifModifiedSince = parseDate(header(req, `${prefix}if-modified-since`));
  const ifUnmodifiedSince = parseDate(header(req, `${prefix}if-unmodified-since`));
  const mtime = seconds(info.mtimeMs);
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, info.meta.etag)) return 'failed';
  } else if (ifUnmodifiedSince !== undefined && mtime > seconds(ifUnmodifiedSince)) {
    return 'failed';
  }
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, info.meta.etag)) return 'not-modified';
  } else if (ifModifiedSince !== undefined && mtime <= seconds(ifModifiedSince)) {
    return 'not-modified';
  }
  return 'ok';
}

export function preconditionFailed(condition: string): S3Error {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    Condition: condition,
  });
}

/**
 * A single `bytes=` range resolved against the size: [start, end] inclusive, undefined for no
 * (or an ignored multi-) range, InvalidRange when it cannot be satisfied.
 */
export function parseRange(
  text: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(text.trim());
  if (m === null) return undefined; // S3 ignores ranges it does not understand (and multi-ranges)
  const [, a = '', b = ''] = m;
  let start: number;
  let end: number;
  if (a === '') {
    if (b === '') return undefined;
    const suffix = Number(b);
    if (suffix === 0) throw invalidRange(size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size || size === 0) throw invalidRange(size);
  return { start, end };
}

export function invalidRange(size: number): S3Error {
  return new S3Error('InvalidRange', 'The requested range is not satisfiable', {
    ActualObjectSize: String(size),
  });
}
