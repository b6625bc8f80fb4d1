/**
 * The seam through which a mutation's outcome is recorded in the mutation's own transaction, so
 * that a client's retry of the same request (same request id, possibly on another master after a
 * failover) gets that outcome instead of running the mutation twice. The namespace calls it
 * around `#mutate`; src/master/ha/retry-records.ts implements it on the MetaStore.
 */
import type { MetaTxn } from '../../meta/index.js';

/** Where one request's outcome is recorded. */
export interface RecordSlot {
  readonly key: Uint8Array;
}

export interface MutationRecorder {
  /** Before a mutation: its slot, or undefined when no request is being recorded (internal work). */
  begin(): RecordSlot | undefined;
  /**
   * Inside the transaction function, after the mutation ran: writes the outcome and makes the
   * commit conditional on no outcome being recorded for this request yet.
   */
  record(tx: MetaTxn, slot: RecordSlot, value: unknown): void;
  /** After the mutation failed: the outcome an earlier attempt of the request committed, if any. */
  replay(slot: RecordSlot): Promise<{ value: unknown } | undefined>;
}
