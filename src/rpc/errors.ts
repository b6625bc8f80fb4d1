/**
 * The errors the RPC layer itself raises, and how every error crosses the wire: as a code, a
 * message and optional details, rebuilt on the other side as a StrataError (or an FsError when the
 * code is a POSIX code) so `instanceof` and `.code` keep working across processes.
 */
import { FsError, StrataError, isPosixCode } from '../common/errors.js';
import type { StrataErrorOptions } from '../common/errors.js';
import { formatHostPort } from '../common/net.js';
import type { RemoteAddress } from './api.js';

/** The connection to a peer failed or was lost; a unary call may be retried elsewhere. */
export class ConnectionError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_CONNECTION', message, options);
    this.name = 'ConnectionError';
  }
}

/** Reasons a connection is closed for breaking the protocol; also a metric label. */
export type ProtocolViolation =
  | 'oversized_frame'
  | 'malformed_frame'
  | 'unknown_frame_type'
  | 'bad_header'
  | 'unexpected_frame'
  | 'flow_control';

/** The peer broke the framing or the protocol: the connection is closed, nothing else is affected. */
export class ProtocolError extends StrataError {
  readonly violation: ProtocolViolation;
  constructor(violation: ProtocolViolation, message: string) {
    super('STRATA_PROTOCOL', message, { details: { violation } });
    this.name = 'ProtocolError';
    this.violation = violation;
  }
}

/** This server is not the leader; details.leader says where the leader is, when known. */
export class NotLeaderError extends StrataError {
  constructor(leader?: RemoteAddress, message?: string, details: Record<string, unknown> = {}) {
    const where =
      leader === undefined ? 'the leader is not known yet' : `the leader is ${formatHostPort(leader)}`;
    super('STRATA_NOT_LEADER', message ?? `not the leader: ${where}`, {
      details:
        leader === undefined ? details : { ...details, leader: { host: leader.host, port: leader.port } },
    });
    this.name = 'NotLeaderError';
  }

  /** The leader's address carried in a NOT_LEADER error's details, if any and well-formed. */
  static leaderOf(err: StrataError): RemoteAddress | undefined {
    const leader = err.details?.leader;
    if (typeof leader !== 'object' || leader === null) return undefined;
    const { host, port } = leader as { host?: unknown; port?: unknown };
    if (typeof host !== 'string' || host === '') return undefined;
    if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    return { host, port };
  }
}

/** The caller or the server cancelled the call (not a deadline: that is a TimeoutError). */
export class CancelledError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_CANCELLED', message, options);
    this.name = 'CancelledError';
  }
}

/** The server is shutting down or cannot serve now; another address may. */
export class UnavailableError extends StrataError {
  constructor(message: string, options: StrataErrorOptions = {}) {
    super('STRATA_UNAVAILABLE', message, options);
    this.name = 'UnavailableError';
  }
}

/** What an error looks like inside a response header. */
export interface WireError {
  /** Stable code, e.g. STRATA_BAD_REQUEST or ENOENT. */
  c: string;
  /** Message for a person. */
  m: string;
  /** Structured details, when any. */
  d?: Record<string, unknown>;
}

export function errorToWire(err: StrataError): WireError {
  return err.details === undefined
    ? { c: err.code, m: err.message }
    : { c: err.code, m: err.message, d: err.details };
}

/** Rebuilds an error that arrived in a response. Anything malformed becomes a protocol error. */
export function errorFromWire(wire: unknown): StrataError {
  if (typeof wire !== 'object' || wire === null) {
    return new ProtocolError('bad_header', 'error response without an error object');
  }
  const { c, m, d } = wire as { c?: unknown; m?: unknown; d?: unknown };
  if (typeof c !== 'string' || typeof m !== 'string') {
    return new ProtocolError('bad_header', 'error response without a code and message');
  }
  const details =
    typeof d === 'object' && d !== null && !Array.isArray(d) ? (d as Record<string, unknown>) : undefined;
  const options = details === undefined ? {} : { details };
  if (isPosixCode(c)) return new FsError(c, m, options);
  if (c === 'STRATA_NOT_LEADER') {
    const leader = NotLeaderError.leaderOf(new StrataError(c, m, options));
    const { leader: _ignored, ...rest } = details ?? {};
    return new NotLeaderError(leader, m, rest);
  }
  return new StrataError(c, m, options);
}
