/**
 * KV errors with stable codes. Each code maps to one HTTP status and one RESP error prefix, so
 * the two front ends answer the same fault the same way (docs/kv.md lists them).
 */
import { StrataError } from '../common/errors.js';
import type { StrataErrorOptions } from '../common/errors.js';

export const KV_ERROR_STATUS = {
  STRATA_KV_BAD_KEY: 400,
  STRATA_KV_BAD_JSON: 400,
  STRATA_KV_MISSING_VALUE: 400,
  STRATA_KV_BAD_TTL: 400,
  STRATA_KV_BAD_REQUEST: 400,
  STRATA_KV_NOT_INTEGER: 400,
  STRATA_KV_NOT_FOUND: 404,
  STRATA_KV_METHOD_NOT_ALLOWED: 405,
  STRATA_KV_KEY_TOO_LONG: 413,
  STRATA_KV_VALUE_TOO_LARGE: 413,
  STRATA_KV_BODY_TOO_LARGE: 413,
  STRATA_KV_OVERLOADED: 503,
  STRATA_KV_UNAVAILABLE: 503,
} as const;

export type KvErrorCode = keyof typeof KV_ERROR_STATUS;

export class KvError extends StrataError {
  declare readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(code, message, options);
    this.name = 'KvError';
  }

  get httpStatus(): number {
    return KV_ERROR_STATUS[this.code];
  }
}

export function isKvErrorCode(code: string): code is KvErrorCode {
  return Object.hasOwn(KV_ERROR_STATUS, code);
}

/** A peer could not be reached (refused, reset, timed out): the caller may try another replica. */
export class PeerUnreachableError extends StrataError {
  readonly peerId: string;
  /** True when the peer certainly is not listening (connection refused): mark it down now. */
  readonly refused: boolean;
  constructor(peerId: string, message: string, refused: boolean, options: StrataErrorOptions = {}) {
    super('STRATA_CONNECTION', `peer ${peerId}: ${message}`, options);
    this.name = 'PeerUnreachableError';
    this.peerId = peerId;
    this.refused = refused;
  }
}
