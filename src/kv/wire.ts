/**
 * The node-to-node wire: msgpack bodies over HTTP/1.1 keep-alive (undici pools). Operations and
 * replicated records are validated on receipt (a peer is another process: its input is checked
 * like any other), and bulk transfers (pull, dump) are framed as 4-byte big-endian lengths
 * followed by msgpack batches, ended by an empty frame so a truncated stream is detected.
 */
import { Packr } from 'msgpackr';
import { KIND_JSON, KIND_STRING, KIND_TOMBSTONE } from './entry.js';
import type { ValueKind, WriteRecord } from './entry.js';
import { KvError } from './errors.js';

export const MSGPACK_CONTENT_TYPE = 'application/x-msgpack';
/** Records per frame of a bulk transfer and per replication batch. */
export const RECORDS_PER_BATCH = 512;
/** Bytes of values per frame before it is cut early. */
export const BATCH_BYTES = 1024 * 1024;
/** Largest frame a receiver accepts (a batch plus one maximal value). */
export const MAX_FRAME_BYTES = 600 * 1024 * 1024;

// Plain maps and arrays only (no msgpackr record extension), so the format is ordinary msgpack.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(buf: Buffer): unknown {
  try {
    return packr.unpack(buf) as unknown;
  } catch (err) {
    throw new KvError('STRATA_KV_BAD_REQUEST', `malformed msgpack body: ${(err as Error).message}`);
  }
}

/** A record on the wire: [key, kind (-1 = tombstone), value, version, expiresAtMs]. */
export type RecordTuple = [string, number, Buffer, number, number];

export function recordToTuple(r: WriteRecord): RecordTuple {
  return [r.key, r.kind, r.value, r.version, r.expiresAtMs];
}

export function tupleToRecord(t: unknown): WriteRecord {
  if (!Array.isArray(t) || t.length !== 5) throw bad('record must be a 5-element array');
  const [key, kind, value, version, expiresAtMs] = t as unknown[];
  if (typeof key !== 'string' || key === '') throw bad('record key must be a non-empty string');
  if (kind !== KIND_STRING && kind !== KIND_JSON && kind !== KIND_TOMBSTONE)
    throw bad('record kind must be -1, 0 or 1');
  if (!(value instanceof Uint8Array)) throw bad('record value must be bytes');
  if (!isNonNegInt(version)) throw bad('record version must be a non-negative integer');
  if (!isNonNegInt(expiresAtMs)) throw bad('record expiry must be a non-negative integer');
  return {
    key,
    kind,
    value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    version,
    expiresAtMs,
  };
}

/** One key operation, as executed by a key's coordinator. */
export type KvOp =
  | { op: 'get'; key: string }
  /** Internal: this node's copy only, no recency change, no asking others. */
  | { op: 'peek'; key: string }
  | { op: 'exists'; key: string }
  | { op: 'ttl'; key: string }
  | { op: 'del'; key: string }
  | { op: 'incr'; key: string; by: number }
  /** `expiresAtMs`: 0 removes the TTL (PERSIST), a past time deletes the key. */
  | { op: 'expire'; key: string; expiresAtMs: number }
  | {
      op: 'set';
      key: string;
      kind: ValueKind;
      value: Buffer;
      /** 0 for none. */
      expiresAtMs: number;
      /** Keep the key's current TTL (SET … KEEPTTL). */
      keepTtl: boolean;
      /** Only if absent (NX) / only if present (XX). */
      nx: boolean;
      xx: boolean;
    };

export type KvOpName = KvOp['op'];

export interface StoredValue {
  kind: ValueKind;
  bytes: Buffer;
  /** 0 for none. */
  expiresAtMs: number;
  version: number;
}

/**
 * What an operation returns: `value` for get (null when absent), `ok` for set (stored),
 * del (deleted), exists, expire (applied); `n` for incr (new value) and ttl (ms left, -1 no
 * TTL, -2 absent).
 */
export interface OpResult {
  value?: StoredValue | null;
  ok?: boolean;
  n?: number;
}

export function decodeOp(input: unknown): KvOp {
  if (typeof input !== 'object' || input === null) throw bad('operation must be a map');
  const o = input as Record<string, unknown>;
  const key = o.key;
  if (typeof key !== 'string' || key === '') throw bad('operation key must be a non-empty string');
  switch (o.op) {
    case 'get':
    case 'peek':
    case 'exists':
    case 'ttl':
    case 'del':
      return { op: o.op, key };
    case 'incr':
      if (!Number.isSafeInteger(o.by)) throw bad('incr step must be a safe integer');
      return { op: 'incr', key, by: o.by as number };
    case 'expire':
      if (!isNonNegInt(o.expiresAtMs)) throw bad('expire time must be a non-negative integer');
      return { op: 'expire', key, expiresAtMs: o.expiresAtMs };
    case 'set': {
      if (o.kind !== KIND_STRING && o.kind !== KIND_JSON) throw bad('set kind must be 0 or 1');
      if (!(o.value instanceof Uint8Array)) throw bad('set value must be bytes');
      if (!isNonNegInt(o.expiresAtMs)) throw bad('set expiry must be a non-negative integer');
      const v = o.value;
      return {
        op: 'set',
        key,
        kind: o.kind,
        value: Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength),
        expiresAtMs: o.expiresAtMs,
        keepTtl: o.keepTtl === true,
        nx: o.nx === true,
        xx: o.xx === true,
      };
    }
    default:
      throw bad(`unknown operation ${JSON.stringify(o.op)}`);
  }
}

/** A result or an error, as carried in a batch response. */
export type WireOutcome = { r: OpResult } | { e: string; m: string };

export function decodeOutcome(input: unknown): WireOutcome {
  if (typeof input !== 'object' || input === null) throw bad('outcome must be a map');
  const o = input as Record<string, unknown>;
  if (typeof o.e === 'string') return { e: o.e, m: typeof o.m === 'string' ? o.m : o.e };
  const r = o.r;
  if (typeof r !== 'object' || r === null) throw bad('outcome must hold r or e');
  const res = r as Record<string, unknown>;
  const out: OpResult = {};
  if (typeof res.ok === 'boolean') out.ok = res.ok;
  if (typeof res.n === 'number') out.n = res.n;
  if (res.value === null) out.value = null;
  else if (typeof res.value === 'object') {
    const v = res.value as Record<string, unknown>;
    if (
      (v.kind !== KIND_STRING && v.kind !== KIND_JSON) ||
      !(v.bytes instanceof Uint8Array) ||
      !isNonNegInt(v.expiresAtMs) ||
      !isNonNegInt(v.version)
    ) {
      throw bad('outcome value is malformed');
    }
    const b = v.bytes;
    out.value = {
      kind: v.kind,
      bytes: Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      expiresAtMs: v.expiresAtMs,
      version: v.version,
    };
  }
  return { r: out };
}

/** Writes one length-prefixed frame header for `body`. */
export function frameHeader(bodyLength: number): Buffer {
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32BE(bodyLength, 0);
  return h;
}

/**
 * Incremental frame reader: push chunks, take complete frames. `done` turns true at the empty
 * end frame; anything after it is an error.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #buffered = 0;
  done = false;

  push(chunk: Buffer): Buffer[] {
    if (this.done) throw bad('data after the end of a framed stream');
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const frames: Buffer[] = [];
    for (;;) {
      if (this.#buffered < 4) break;
      const head = this.#peek(4);
      const len = head.readUInt32BE(0);
      if (len > MAX_FRAME_BYTES) throw bad(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.#buffered < 4 + len) break;
      const all = this.#take(4 + len);
      if (len === 0) {
        this.done = true;
        if (this.#buffered > 0) throw bad('data after the end of a framed stream');
        break;
      }
      frames.push(all.subarray(4));
    }
    return frames;
  }

  #peek(n: number): Buffer {
    if ((this.#chunks[0] as Buffer).length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] as Buffer;
  }

  #take(n: number): Buffer {
    const first = this.#peek(n);
    // #peek guarantees the first chunk holds the header; gather the rest of the frame.
    if (first.length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    const buf = this.#chunks[0] as Buffer;
    const out = buf.subarray(0, n);
    const rest = buf.subarray(n);
    if (rest.length > 0) this.#chunks[0] = rest;
    else this.#chunks.shift();
    this.#buffered -= n;
    return out;
  }
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function bad(message: string): KvError {
  return new KvError('STRATA_KV_BAD_REQUEST', message);
}
