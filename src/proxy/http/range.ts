/**
 * Byte ranges (RFC 9110 §14): parsing `Range` against a known length, `If-Range`, and the
 * multipart/byteranges framing for several ranges. A malformed header is ignored (the full
 * representation is sent), an unsatisfiable one gets 416.
 */
import { randomBytes } from 'node:crypto';

/** More ranges than this in one request is a denial-of-service pattern: serve the whole body. */
export const MAX_RANGES = 32;

/** Inclusive byte positions, as written in Content-Range. */
export type ByteRange = readonly [first: number, last: number];

export type RangeDecision =
  { kind: 'full' } | { kind: 'unsatisfiable' } | { kind: 'partial'; ranges: ByteRange[] };

/** Parses `bytes=...` for a body of `length` bytes. */
export function evaluateRange(header: string | undefined, length: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(header);
  if (m === null) return { kind: 'full' };
  const specs = (m[1] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (specs.length === 0 || specs.length > MAX_RANGES) return { kind: 'full' };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (r === null) return { kind: 'full' };
    const a = r[1] ?? '';
    const b = r[2] ?? '';
    if (a === '' && b === '') return { kind: 'full' };
    if (a === '') {
      // Suffix range: the last N bytes.
      const n = Number(b);
      if (n === 0) continue;
      ranges.push([Math.max(0, length - n), length - 1]);
      continue;
    }
    const first = Number(a);
    const last = b === '' ? length - 1 : Math.min(Number(b), length - 1);
    if (b !== '' && Number(b) < first) return { kind: 'full' };
    if (first >= length) continue;
    ranges.push([first, last]);
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'partial', ranges };
}

/**
 * If-Range (RFC 9110 §13.1.5): the range applies only when the validator matches the stored
 * representation with a strong comparison; otherwise the whole body is sent.
 */
export function ifRangeAllows(
  ifRange: string | undefined,
  etag: string | undefined,
  lastModified: string | undefined,
): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) {
    if (v.startsWith('W/') || etag === undefined || etag.startsWith('W/')) return false;
    return v === etag.trim();
  }
  return (
    lastModified !== undefined && Date.parse(v) === Date.parse(lastModified) && !Number.isNaN(Date.parse(v))
  );
}

export function contentRange(r: ByteRange, length: number): string {
  return `bytes ${r[0]}-${r[1]}/${length}`;
}

export interface MultipartPlan {
  boundary: string;
  contentType: string;
  /** Per range: the part header to send before its bytes. */
  heads: Buffer[];
  tail: Buffer;
  totalBytes: number;
}

export function planMultipart(
  ranges: readonly ByteRange[],
  length: number,
  partType: string | undefined,
): MultipartPlan {
  const boundary = `strata-${randomBytes(12).toString('hex')}`;
  const heads = ranges.map((r, i) =>
    Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\n${partType === undefined ? '' : `content-type: ${partType}\r\n`}content-range: ${contentRange(r, length)}\r\n\r\n`,
    ),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let total = tail.length;
  ranges.forEach((r, i) => (total += (heads[i] as Buffer).length + (r[1] - r[0] + 1)));
  return {
    boundary,
    contentType: `multipart/byteranges; boundary=${boundary}`,
    heads,
    tail,
    totalBytes: total,
  };
}

/** Parses `Content-Range: bytes a-b/total` of a 206 (total may be `*`). */
export function parseContentRange(
  v: string | undefined,
): { first: number; last: number; total: number | undefined } | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v);
  if (m === null) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (last < first) return undefined;
  return { first, last, total: m[3] === '*' ? undefined : Number(m[3]) };
}
