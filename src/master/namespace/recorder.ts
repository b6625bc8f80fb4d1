/**
 * The seam through which a mutation's outcome is recorded in the mutation's own transaction, so
 * that a client's retry of the same request (same request id, possibly on another master after a
 * failover) gets that outcome instead of running the mutation twice. The namespace calls it
 * around `#mutate`; src/master/ha/retry-records.ts implements it on the MetaStore.
 */
import type { MetaTxn } from '../../meta/index.js';

/**
 * The client request a mutation serves (src/master/request-scope.ts). A mutation made without
 * one is the master's own work and is not recorded.
 */
export interface RequestScope {
  /** `<call code>:<request id>`: the same on every retry of the request, on any master. */
  readonly key: string;
  /** Whether the request's one recorded mutation has been handed out. */
  used: boolean;
}

/** A scope for the request `key` (see RequestScope). */
export function requestScope(key: string): RequestScope {
  return { key, used: false };
}

/** Where one request's outcome is recorded. */
export interface RecordSlot {
  readonly key: Uint8Array;
}

export interface MutationRecorder {
  /**
   * Before a mutation of `scope`'s request: its slot, or undefined when the request's recorded
   * mutation was handed out already (a second mutation of one request runs unrecorded).
   */
  begin(scope: RequestScope): RecordSlot | undefined;
  /**
   * Inside the transaction function, after the mutation ran: writes the outcome and makes the
   * commit conditional on no outcome being recorded for this request yet.
   */
  record(tx: MetaTxn, slot: RecordSlot, value: unknown): void;
  /** After the mutation failed: the outcome an earlier attempt of the request committed, if any. */
  replay(slot: RecordSlot): Promise<{ value: unknown } | undefined>;
}
