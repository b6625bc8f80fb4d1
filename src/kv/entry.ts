/**
 * What the store holds and what travels between nodes. A value is bytes plus a kind:
 * - KIND_STRING: the bytes of a string (a JSON string over HTTP as UTF-8, any bytes over RESP);
 * - KIND_JSON: the JSON text of any other JSON value (number, object, array, true, null).
 * So `PUT {"value":"hi"}` reads back as `hi` over RESP and `SET k hi` reads back as `"hi"` over
 * HTTP, and a number stays a number. Each write carries a version (see hlc.ts); a delete is a
 * tombstone with a version so a stale copy can never bring the key back.
 */
import { isUtf8 } from 'node:buffer';

export const KIND_STRING = 0;
export const KIND_JSON = 1;
/** Wire-only kind of a record that deletes its key. */
export const KIND_TOMBSTONE = -1;
export type ValueKind = typeof KIND_STRING | typeof KIND_JSON;

/** Bookkeeping bytes charged per entry on top of key and value (object, list links, map slot). */
export const ENTRY_OVERHEAD_BYTES = 96;

export interface Value {
  kind: ValueKind;
  bytes: Buffer;
}

/** A versioned write as replicated between nodes: a value, or a tombstone when `kind` is -1. */
export interface WriteRecord {
  key: string;
  kind: ValueKind | typeof KIND_TOMBSTONE;
  /** Empty for tombstones. */
  value: Buffer;
  version: number;
  /** Absolute expiry in wall-clock ms since the epoch, 0 for none. */
  expiresAtMs: number;
}

/** An entry in a node's store; the list links belong to the store's LRU. */
export class Entry {
  readonly key: string;
  kind: ValueKind;
  value: Buffer;
  version: number;
  expiresAtMs: number;
  sizeBytes: number;
  /** Whether this object is still the one the store maps its key to. */
  live = true;
  prev: Entry | null = null;
  next: Entry | null = null;

  constructor(
    key: string,
    kind: ValueKind,
    value: Buffer,
    version: number,
    expiresAtMs: number,
    sizeBytes: number,
  ) {
    this.key = key;
    this.kind = kind;
    this.value = value;
    this.version = version;
    this.expiresAtMs = expiresAtMs;
    this.sizeBytes = sizeBytes;
  }

  toRecord(): WriteRecord {
    return {
      key: this.key,
      kind: this.kind,
      value: this.value,
      version: this.version,
      expiresAtMs: this.expiresAtMs,
    };
  }
}

/**
 * Total order between two writes of one key: higher version wins; on a tie (two nodes issuing
 * the same version in the same millisecond) a tombstone wins, then the larger kind, then the
 * larger bytes, so every replica picks the same winner whatever order the writes arrive in.
 * Returns > 0 when `a` wins.
 */
export function compareWrites(
  aVersion: number,
  aKind: number,
  aBytes: Buffer,
  bVersion: number,
  bKind: number,
  bBytes: Buffer,
): number {
  if (aVersion !== bVersion) return aVersion > bVersion ? 1 : -1;
  if (aKind !== bKind) {
    if (aKind === KIND_TOMBSTONE) return 1;
    if (bKind === KIND_TOMBSTONE) return -1;
    return aKind > bKind ? 1 : -1;
  }
  return Buffer.compare(aBytes, bBytes);
}

/** Encodes a JSON value from the HTTP API for storage. */
export function valueFromJson(value: unknown): Value {
  if (typeof value === 'string') return { kind: KIND_STRING, bytes: Buffer.from(value, 'utf8') };
  return { kind: KIND_JSON, bytes: Buffer.from(JSON.stringify(value), 'utf8') };
}

/**
 * The JSON text of a stored value for HTTP responses and exports. String bytes that are not
 * valid UTF-8 (set over RESP) cannot be a JSON string without loss, so they come back as base64
 * with `base64: true`.
 */
export function valueToJsonText(kind: ValueKind, bytes: Buffer): { text: string; base64: boolean } {
  if (kind === KIND_JSON) return { text: bytes.toString('utf8'), base64: false };
  if (isUtf8(bytes)) return { text: JSON.stringify(bytes.toString('utf8')), base64: false };
  return { text: JSON.stringify(bytes.toString('base64')), base64: true };
}

/** Bytes a record costs in the store. */
export function entrySizeBytes(key: string, valueBytes: number): number {
  return Buffer.byteLength(key, 'utf8') + valueBytes + ENTRY_OVERHEAD_BYTES;
}
