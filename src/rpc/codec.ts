/**
 * The msgpack header of each frame: what each frame type carries and how it is checked. Headers
 * come from the network, so decoding never trusts them: anything that is not the expected shape
 * is a protocol error that closes the connection (a request *body* that fails its call's schema
 * is different: that is the caller's mistake, answered with STRATA_BAD_REQUEST).
 *
 * Keys are one letter to keep small calls small; docs/rpc.md lists them.
 */
import { Packr, RESERVE_START_SPACE, Unpackr } from 'msgpackr';
import { ProtocolError, type WireError } from './errors.js';
import { FRAME_PREFIX_BYTES } from './frame.js';
import { MAX_REQUEST_ID_CHARS } from './limits.js';
import type { CallKind } from './api.js';

/** Plain msgpack maps (no msgpackr records), so any msgpack implementation can speak the protocol. */
const packr = new Packr({ useRecords: false, variableMapSize: true });
/**
 * Binary values are copied out (`copyBuffers`) so a kept field never pins a whole read buffer;
 * 64-bit integers decode to numbers (sizes and offsets stay below 2^53).
 */
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  copyBuffers: true,
  int64AsType: 'number',
  structuredClone: false,
});

/** REQUEST: opens a call. */
export interface RequestHeader {
  /** Call code. */
  c: number;
  /** Request id, stable across retries. */
  r: string;
  /** Remaining deadline in milliseconds when sent. */
  d: number;
  /** Body (validated by the call's schema on the server). */
  b?: unknown;
  /** Kind of call the client makes (KIND_CODES); the server checks it against its definition. */
  k: number;
  /** Read streams: the receive window the client grants up front, in bytes. */
  w?: number;
}

/** How each kind of call is written in a request header. */
export const KIND_CODES: Readonly<Record<CallKind, number>> = { unary: 0, read: 1, write: 2 };
const KINDS_BY_CODE: readonly CallKind[] = ['unary', 'read', 'write'];

export function kindOf(code: number): CallKind {
  return KINDS_BY_CODE[code] ?? 'unary';
}

/** RESPONSE: ends a call. */
export interface ResponseHeader {
  /** 0 = ok (body in `b`), 1 = error (in `e`). */
  s: 0 | 1;
  b?: unknown;
  e?: WireError;
}

export const STATUS_OK = 0;
export const STATUS_ERROR = 1;

/**
 * Packs a header leaving room for the frame prefix in front of it, so prefix and header leave in
 * one buffer (see frame.ts `writePrefix`). Throws what msgpackr throws for unencodable values.
 */
export function packHead(header: object): Buffer {
  return packr.pack(header, RESERVE_START_SPACE | FRAME_PREFIX_BYTES);
}

function decodeMap(bytes: Buffer, what: string): Record<string, unknown> {
  if (bytes.length === 0) throw new ProtocolError('bad_header', `${what} frame without a header`);
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ProtocolError('bad_header', `${what} header is not valid msgpack: ${reason.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) {
    throw new ProtocolError('bad_header', `${what} header is not a map`);
  }
  return value as Record<string, unknown>;
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function decodeRequestHeader(bytes: Buffer): RequestHeader {
  const h = decodeMap(bytes, 'request');
  const { c, r, d, k, w } = h;
  if (!isNonNegativeInt(c)) throw new ProtocolError('bad_header', 'request header without a call code');
  if (typeof r !== 'string' || r.length === 0 || r.length > MAX_REQUEST_ID_CHARS) {
    throw new ProtocolError(
      'bad_header',
      `request header needs a request id of 1-${MAX_REQUEST_ID_CHARS} characters`,
    );
  }
  if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) {
    throw new ProtocolError('bad_header', 'request header needs a non-negative deadline in ms');
  }
  if (k !== 0 && k !== 1 && k !== 2) {
    throw new ProtocolError('bad_header', 'request header needs a call kind (0 unary, 1 read, 2 write)');
  }
  if (w !== undefined && !isNonNegativeInt(w)) {
    throw new ProtocolError('bad_header', 'request header window must be a non-negative integer');
  }
  if (k === KIND_CODES.read && (w === undefined || w === 0)) {
    throw new ProtocolError('bad_header', 'a read stream must be opened with a receive window');
  }
  return h as unknown as RequestHeader;
}

export function decodeResponseHeader(bytes: Buffer): ResponseHeader {
  const h = decodeMap(bytes, 'response');
  if (h.s !== STATUS_OK && h.s !== STATUS_ERROR) {
    throw new ProtocolError('bad_header', 'response header without a valid status');
  }
  return h as unknown as ResponseHeader;
}

/** CREDIT: `n` more bytes may be sent on the stream. */
export function decodeCreditHeader(bytes: Buffer): number {
  const h = decodeMap(bytes, 'credit');
  if (!isNonNegativeInt(h.n) || h.n === 0) {
    throw new ProtocolError('bad_header', 'credit header needs a positive byte count');
  }
  return h.n;
}

/** CANCEL: an optional reason for the log. */
export function decodeCancelHeader(bytes: Buffer): string {
  if (bytes.length === 0) return 'no reason given';
  const h = decodeMap(bytes, 'cancel');
  return typeof h.m === 'string' ? h.m.slice(0, 500) : 'no reason given';
}
