/**
 * One logical unary call on the client: attempts on the current address, failover on connection
 * trouble, redirection on "not leader", retries with the SAME request id (so the server can
 * deduplicate) and exponential backoff with jitter, all inside one overall deadline. When the
 * deadline passes or the caller aborts, the attempt in flight is cancelled on the server too.
 */
import { performance } from 'node:perf_hooks';
import { TimeoutError } from '../common/errors.js';
import type { StrataError } from '../common/errors.js';
import type { CallDef, CallKind, UnaryResult } from './api.js';
import { backoffDelayMs } from './address-book.js';
import type { ClientConnection, PendingCall } from './client-connection.js';
import { asStrataError, encodeFailure } from './client-core.js';
import type { ClientCore } from './client-core.js';
import { STATUS_OK } from './codec.js';
import type { ResponseHeader } from './codec.js';
import { CancelledError, NotLeaderError, errorFromWire } from './errors.js';

export interface UnaryParams {
  body: unknown;
  payload: Buffer;
  requestId: string;
  deadlineMs: number;
  signal: AbortSignal | undefined;
}

export class UnaryOperation implements PendingCall {
  readonly #core: ClientCore;
  readonly #def: CallDef<CallKind, unknown, unknown>;
  readonly #p: UnaryParams;
  readonly #deadlineAt: number;
  readonly #startedAt = performance.now();
  readonly #resolve: (r: UnaryResult<unknown>) => void;
  readonly #reject: (err: StrataError) => void;
  #attempt = 0;
  #redirects = 0;
  #settled = false;
  #idx = 0;
  #conn: ClientConnection | undefined;
  #callId = 0;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;

  constructor(
    core: ClientCore,
    def: CallDef<CallKind, unknown, unknown>,
    params: UnaryParams,
    resolve: (r: UnaryResult<unknown>) => void,
    reject: (err: StrataError) => void,
  ) {
    this.#core = core;
    this.#def = def;
    this.#p = params;
    this.#deadlineAt = Date.now() + params.deadlineMs;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  start(): void {
    const { signal } = this.#p;
    if (signal?.aborted === true) {
      this.#finish(this.#cancelled(signal));
      return;
    }
    this.#deadlineTimer = setTimeout(() => this.#expire(), this.#p.deadlineMs);
    if (signal !== undefined) {
      const onAbort = (): void => {
        if (this.#settled) return;
        this.#cancelAttempt('cancelled by the caller');
        this.#finish(this.#cancelled(signal));
      };
      this.#onAbort = onAbort;
      signal.addEventListener('abort', onAbort, { once: true });
    }
    this.#try();
  }

  #try(): void {
    this.#retryTimer = undefined;
    const closed = this.#core.closedError();
    if (closed !== undefined) {
      this.#finish(closed);
      return;
    }
    const book = this.#core.book;
    const idx = book.pick();
    this.#idx = idx;
    const conn = book.ready(idx);
    if (conn !== undefined) {
      this.#send(conn);
      return;
    }
    book.connect(idx, this.#deadlineAt).then(
      (c) => {
        if (!this.#settled) this.#send(c);
      },
      (err: unknown) => {
        if (!this.#settled) this.#failed(asStrataError(err));
      },
    );
  }

  #send(conn: ClientConnection): void {
    const remainingMs = this.#deadlineAt - Date.now();
    if (remainingMs <= 0) {
      this.#expire();
      return;
    }
    const callId = conn.nextCallId();
    this.#conn = conn;
    this.#callId = callId;
    try {
      conn.request(
        callId,
        'unary',
        this.#def.code,
        this.#p.requestId,
        remainingMs,
        this.#p.body,
        this.#p.payload,
      );
    } catch (err) {
      this.#conn = undefined;
      this.#finish(encodeFailure(this.#def.name, err));
      return;
    }
    conn.register(callId, this);
  }

  onResponse(header: ResponseHeader, payload: Buffer): void {
    this.#conn = undefined;
    if (this.#settled) return;
    if (header.s === STATUS_OK) {
      this.#settled = true;
      this.#cleanup();
      this.#core.metrics.callDone(this.#def.name, 'ok', (performance.now() - this.#startedAt) / 1000);
      this.#resolve({ body: header.b, payload });
      return;
    }
    this.#failed(errorFromWire(header.e));
  }

  onClose(err: StrataError): void {
    this.#conn = undefined;
    if (!this.#settled) this.#failed(err);
  }

  #failed(err: StrataError): void {
    const core = this.#core;
    const closed = core.closedError();
    if (closed !== undefined) {
      this.#finish(closed);
      return;
    }
    const { retryMax, retryBaseDelayMs, retryMaxDelayMs } = core.settings;
    if (!err.retryable || this.#attempt >= retryMax) {
      this.#finish(err);
      return;
    }
    let delayMs = backoffDelayMs(this.#attempt, retryBaseDelayMs, retryMaxDelayMs);
    if (err.code === 'STRATA_NOT_LEADER') {
      const leader = NotLeaderError.leaderOf(err);
      if (leader !== undefined) {
        core.book.redirect(leader);
        // The first hint is followed at once; hints that keep bouncing back off like any retry.
        if (this.#redirects++ === 0) delayMs = 0;
      } else {
        core.book.failed(this.#idx);
      }
    } else if (err.code !== 'STRATA_OVERLOADED') {
      // Connection trouble, a server shutting down, a server-side deadline: try the next address.
      core.book.failed(this.#idx);
    }
    if (Date.now() + delayMs >= this.#deadlineAt) {
      // No time left for another attempt: the last error says more than a bare timeout would.
      this.#finish(err);
      return;
    }
    this.#attempt++;
    core.metrics.retried(this.#def.name, err.code);
    core.log.debug(
      {
        call: this.#def.name,
        requestId: this.#p.requestId,
        attempt: this.#attempt,
        delayMs,
        err: err.message,
      },
      'rpc retry',
    );
    this.#retryTimer = setTimeout(() => this.#try(), delayMs);
  }

  #expire(): void {
    if (this.#settled) return;
    this.#cancelAttempt('deadline exceeded');
    this.#finish(new TimeoutError(this.#def.name, this.#p.deadlineMs));
  }

  #cancelled(signal: AbortSignal): StrataError {
    const why = signal.reason instanceof Error ? signal.reason.message : 'aborted';
    return new CancelledError(`${this.#def.name}: cancelled by the caller (${why})`, {
      cause: signal.reason,
    });
  }

  #cancelAttempt(reason: string): void {
    const conn = this.#conn;
    if (conn === undefined) return;
    this.#conn = undefined;
    conn.cancel(this.#callId, reason);
  }

  #finish(err: StrataError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#cleanup();
    this.#core.metrics.callDone(this.#def.name, err.code, (performance.now() - this.#startedAt) / 1000);
    this.#reject(err);
  }

  #cleanup(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    if (this.#onAbort !== undefined) this.#p.signal?.removeEventListener('abort', this.#onAbort);
  }
}
