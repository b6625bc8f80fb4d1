/**
 * How failures of etcd requests become MetaErrors with stable codes. The master maps them on:
 * `STRATA_META_UNAVAILABLE` (etcd cannot be reached: retry later or elsewhere),
 * `STRATA_META_OUTCOME_UNKNOWN` (a commit was sent and its answer lost: it may or may not have
 * applied; the master ends its term so that nothing is built on a guess), and
 * `STRATA_META_FENCED` (the fence key changed: this writer is no longer the leader).
 */
import { MetaError } from '../errors.js';

export function etcdUnavailable(what: string, cause: unknown): MetaError {
  return new MetaError('STRATA_META_UNAVAILABLE', `etcd ${what} failed: ${message(cause)}`, { cause });
}

export function etcdOutcomeUnknown(cause: unknown): MetaError {
  return new MetaError(
    'STRATA_META_OUTCOME_UNKNOWN',
    `etcd commit outcome unknown (the request was sent and no answer came back: ${message(cause)})`,
    { cause },
  );
}

export function etcdFenced(key: string): MetaError {
  return new MetaError(
    'STRATA_META_FENCED',
    `metadata write refused: the fence key ${key} changed (this process no longer holds leadership)`,
    { details: { fenceKey: key } },
  );
}

export function etcdRefused(what: string, cause: unknown): MetaError {
  return new MetaError('STRATA_META_IO', `etcd refused the ${what}: ${message(cause)}`, { cause });
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** gRPC status names etcd3 puts in its error class names. */
const NEVER_SENT = /ECONNREFUSED|No connection established|failed to connect|BrokenCircuit|Breaker is open/i;
const RECOVERABLE_NAMES = new Set([
  'GRPCUnavailableError',
  'GRPCDeadlineExceededError',
  'GRPCCancelledError',
  'GRPCInternalError',
  'GRPCUnknownError',
  'GRPCResourceExhastedError',
  'BrokenCircuitError',
  'GRPCAbortedError',
]);

/** Whether an error says etcd (or the path to it) failed, as opposed to refusing the request. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (RECOVERABLE_NAMES.has(err.constructor.name)) return true;
  return NEVER_SENT.test(err.message) || /unavailable|deadline|timed? ?out|leader changed/i.test(err.message);
}

/** Whether a failed request certainly never reached etcd (so a commit may be sent again). */
export function neverSent(err: unknown): boolean {
  return (
    err instanceof Error && (err.constructor.name === 'BrokenCircuitError' || NEVER_SENT.test(err.message))
  );
}

/** etcd answered "that revision was compacted away": a snapshot must start again. */
export function isCompacted(err: unknown): boolean {
  return err instanceof Error && /required revision has been compacted/.test(err.message);
}
