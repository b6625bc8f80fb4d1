/**
 * What the client's operations (unary calls with retries, read and write streams) share: the
 * address book, the resolved settings, metrics and log. Internal to src/rpc.
 */
import { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { AddressBook } from './address-book.js';
import type { ClientMetrics } from './metrics.js';

export interface ClientSettings {
  deadlineMs: number;
  streamDeadlineMs: number;
  retryMax: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  streamWindowBytes: number;
  streamChunkBytes: number;
}

export interface ClientCore {
  readonly book: AddressBook;
  readonly settings: ClientSettings;
  readonly metrics: ClientMetrics;
  readonly log: Logger;
  /** Set once the client is closed: every operation fails with it. */
  closedError(): StrataError | undefined;
}

/** A request that msgpack cannot encode is the caller's bug: say which call and why. */
export function encodeFailure(call: string, err: unknown): StrataError {
  if (err instanceof StrataError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new StrataError('STRATA_BAD_REQUEST', `${call}: cannot encode the request: ${reason}`, {
    cause: err,
  });
}

/** Anything thrown below the client as a StrataError (connection code for unknown failures). */
export function asStrataError(err: unknown): StrataError {
  if (err instanceof StrataError) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new StrataError('STRATA_INTERNAL', reason, { cause: err });
}
