/** Byte-key helpers shared by the engines and by the layers that build keys. */
import { META_MAX_KEY_BYTES, META_MAX_SCAN_LIMIT, META_MAX_VALUE_BYTES } from './store.js';
import type { MetaKey, MetaValue, ScanOptions } from './store.js';
import { metaLimit } from './errors.js';

/** memcmp order, a shorter key before its extensions: the order every engine must use. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function bytesEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** The smallest key greater than every key starting with `prefix`; undefined when none exists (all 0xff). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const out = new Uint8Array(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    const b = out[i] as number;
    if (b < 0xff) {
      out[i] = b + 1;
      return out.subarray(0, i + 1);
    }
  }
  return undefined;
}

/** A Map key for bytes (latin1 maps each byte to one UTF-16 unit, so order and identity are kept). */
export function bytesId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

export function idBytes(id: string): Buffer {
  return Buffer.from(id, 'latin1');
}

export function checkKey(key: MetaKey): void {
  if (!(key instanceof Uint8Array)) throw new TypeError('metadata keys must be Uint8Array');
  if (key.length === 0) throw metaLimit('key length', 0, META_MAX_KEY_BYTES);
  if (key.length > META_MAX_KEY_BYTES) throw metaLimit('key length', key.length, META_MAX_KEY_BYTES);
}

export function checkValue(value: MetaValue): void {
  if (!(value instanceof Uint8Array)) throw new TypeError('metadata values must be Uint8Array');
  if (value.length > META_MAX_VALUE_BYTES)
    throw metaLimit('value length', value.length, META_MAX_VALUE_BYTES);
}

/** A scan normalised to one half-open interval [lo, hi) (hi undefined = to the end of the keyspace). */
export interface Interval {
  lo: Uint8Array;
  hi: Uint8Array | undefined;
  limit: number;
  reverse: boolean;
}

const EMPTY = new Uint8Array(0);

export function normaliseScan(opts: ScanOptions): Interval {
  const limit = opts.limit ?? META_MAX_SCAN_LIMIT;
  if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`scan limit must be a non-negative integer`);
  if (limit > META_MAX_SCAN_LIMIT) throw metaLimit('scan limit', limit, META_MAX_SCAN_LIMIT);
  let lo: Uint8Array = EMPTY;
  let hi: Uint8Array | undefined;
  if (opts.prefix !== undefined) {
    lo = opts.prefix;
    hi = prefixEnd(opts.prefix);
  }
  if (opts.start !== undefined && compareBytes(opts.start, lo) > 0) lo = opts.start;
  if (opts.end !== undefined && (hi === undefined || compareBytes(opts.end, hi) < 0)) hi = opts.end;
  return { lo, hi, limit, reverse: opts.reverse === true };
}

export function inInterval(key: Uint8Array, iv: Interval): boolean {
  return compareBytes(key, iv.lo) >= 0 && (iv.hi === undefined || compareBytes(key, iv.hi) < 0);
}

/** Big-endian unsigned 64-bit encoding of a safe integer: byte order = numeric order. */
export function writeU64(buf: Uint8Array, offset: number, n: number): void {
  const hi = Math.floor(n / 0x1_0000_0000);
  const lo = n >>> 0;
  buf[offset] = (hi >>> 24) & 0xff;
  buf[offset + 1] = (hi >>> 16) & 0xff;
  buf[offset + 2] = (hi >>> 8) & 0xff;
  buf[offset + 3] = hi & 0xff;
  buf[offset + 4] = (lo >>> 24) & 0xff;
  buf[offset + 5] = (lo >>> 16) & 0xff;
  buf[offset + 6] = (lo >>> 8) & 0xff;
  buf[offset + 7] = lo & 0xff;
}

export function readU64(buf: Uint8Array, offset: number): number {
  const hi =
    (((buf[offset] as number) << 24) >>> 0) +
    ((buf[offset + 1] as number) << 16) +
    ((buf[offset + 2] as number) << 8) +
    (buf[offset + 3] as number);
  const lo =
    (((buf[offset + 4] as number) << 24) >>> 0) +
    ((buf[offset + 5] as number) << 16) +
    ((buf[offset + 6] as number) << 8) +
    (buf[offset + 7] as number);
  return hi * 0x1_0000_0000 + lo;
}
