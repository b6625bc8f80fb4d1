/**
 * The re-registration window of a new term. A leader that has just taken over knows the namespace
 * (it is in etcd) but not yet where blocks are nor which workers have room: that comes back as
 * workers notice the new leader and re-register with full block reports (within about one
 * heartbeat interval). Until then "no worker has room" (ENOSPC from placement) or "no copy of
 * this block is known" (empty locations) would be wrong answers, so during the window they become
 * STRATA_UNAVAILABLE, which clients retry (with the same request id) until the workers are back.
 * After the window, such answers are believed and passed on as they are.
 *
 * Only answers that would otherwise be wrong are held back: every other call is served at once.
 */
import { FsError } from '../../common/errors.js';
import { AddBlock, GetBlockLocations } from '../../protocol/master-calls.js';
import { UnavailableError } from '../../rpc/index.js';
import { DEFAULT_RECONNECT_MAX_DELAY_MS } from '../../rpc/limits.js';
import type { CallContext, UnaryHandler } from '../../rpc/api.js';

/** Heartbeat intervals a new leader waits for workers to re-register (see the module comment). */
export const REREGISTER_WINDOW_HEARTBEATS = 3;
/**
 * Added to the window for the worker's own failover: its heartbeat to the dead leader fails over
 * to the others, which say "not leader" until the election ends, then it sends its full report.
 * Its RPC client may first have to wait out a reconnect backoff towards the new leader (up to
 * DEFAULT_RECONNECT_MAX_DELAY_MS, when that master was down earlier), plus a second for the rest.
 */
export const REREGISTER_WINDOW_SLACK_MS = DEFAULT_RECONNECT_MAX_DELAY_MS + 1_000;

type Handler = UnaryHandler<unknown, unknown>;

/** How long the window of a term lasts, from the master's heartbeat interval. */
export function reregisterWindowMs(heartbeatIntervalMs: number): number {
  return REREGISTER_WINDOW_HEARTBEATS * heartbeatIntervalMs + REREGISTER_WINDOW_SLACK_MS;
}

/** Workers a new leader waits for beyond the usual window (ha/known-workers.ts). */
export interface ExpectedWorkers {
  /** Ids of the workers the previous leaders knew. */
  ids: ReadonlySet<string>;
  /** Whether this term has that worker's full block report. */
  reported(workerId: string): boolean;
  /** The window never lasts longer than this (`worker_lost_interval`). */
  maxWindowMs: number;
}

export class WorkerWindow {
  readonly #endsAtMs: number;
  readonly #hardEndsAtMs: number;
  readonly #clock: () => number;
  readonly #expected: ExpectedWorkers | undefined;
  #waitingFor: string[];

  constructor(windowMs: number, clock: () => number = Date.now, expected?: ExpectedWorkers) {
    this.#clock = clock;
    const now = clock();
    this.#endsAtMs = now + windowMs;
    this.#hardEndsAtMs = now + Math.max(windowMs, expected?.maxWindowMs ?? 0);
    this.#expected = expected;
    this.#waitingFor = [...(expected?.ids ?? [])];
  }

  get open(): boolean {
    const now = this.#clock();
    if (now < this.#endsAtMs) return true;
    if (now >= this.#hardEndsAtMs || this.#waitingFor.length === 0) return false;
    const e = this.#expected as ExpectedWorkers;
    this.#waitingFor = this.#waitingFor.filter((id) => !e.reported(id));
    return this.#waitingFor.length > 0;
  }

  /** The handler of call `code`, holding back answers that need worker state while the window is open. */
  guard(code: number, handler: Handler): Handler {
    if (code === AddBlock.code) {
      return async (req: unknown, ctx: CallContext) => {
        try {
          return await handler(req, ctx);
        } catch (err) {
          if (this.open && err instanceof FsError && err.code === 'ENOSPC') throw this.#wait(err);
          throw err;
        }
      };
    }
    if (code === GetBlockLocations.code) {
      return async (req: unknown, ctx: CallContext) => {
        const res = (await handler(req, ctx)) as { blocks: readonly { workers: readonly unknown[] }[] };
        if (this.open && res.blocks.some((b) => b.workers.length === 0)) throw this.#wait(undefined);
        return res;
      };
    }
    return handler;
  }

  #wait(cause: unknown): UnavailableError {
    const now = this.#clock();
    const msRemaining = Math.max(0, this.#endsAtMs - now);
    const why =
      now < this.#endsAtMs
        ? `about ${msRemaining} ms more`
        : `waiting for ${this.#waitingFor.length} worker(s) the previous leader knew, at most ${Math.max(0, this.#hardEndsAtMs - now)} ms more`;
    return new UnavailableError(
      `this master has just become leader and workers are still re-registering (${why}); retry`,
      { cause },
    );
  }
}
