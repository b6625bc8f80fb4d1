/**
 * One call being served: its context (what the handler sees) and the state the connection keeps
 * for it. The abort signal and the per-call logger are created only when a handler asks for them:
 * most calls never do, and both cost more than the rest of a small call.
 */
import type { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { CallContext, CallDef, CallKind, RemoteAddress } from './api.js';
import type { InboundStream, StreamSender } from './flow.js';

export type AnyCallDef = CallDef<CallKind, unknown, unknown>;

export class ServerCall implements CallContext {
  readonly callId: number;
  readonly def: AnyCallDef;
  readonly requestId: string;
  readonly deadlineAt: number;
  readonly remote: RemoteAddress;
  readonly payload: Buffer;
  /** performance.now() when the request arrived, for the latency histogram. */
  readonly startedAt: number;
  /** The peer cancelled or went away: nothing more is sent for this call. */
  silenced = false;
  finished = false;
  timer: NodeJS.Timeout | undefined;
  /** Read streams: the server's sending side. */
  sender: StreamSender | undefined;
  /** Write streams: the client's chunks, once credit has been granted. */
  input: InboundStream | undefined;
  readonly #baseLog: Logger;
  #log: Logger | undefined;
  #controller: AbortController | undefined;
  #abortReason: StrataError | undefined;

  constructor(
    callId: number,
    def: AnyCallDef,
    requestId: string,
    deadlineAt: number,
    remote: RemoteAddress,
    payload: Buffer,
    baseLog: Logger,
    startedAt: number,
  ) {
    this.callId = callId;
    this.def = def;
    this.requestId = requestId;
    this.deadlineAt = deadlineAt;
    this.remote = remote;
    this.payload = payload;
    this.#baseLog = baseLog;
    this.startedAt = startedAt;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get log(): Logger {
    this.#log ??= this.#baseLog.child({ call: this.def.name, requestId: this.requestId });
    return this.#log;
  }

  get aborted(): StrataError | undefined {
    return this.#abortReason;
  }

  /** Aborts the call once (the first reason wins): signal, stream sides and deadline timer. */
  abort(reason: StrataError): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.#controller?.abort(reason);
    this.sender?.fail(reason);
    this.input?.fail(reason);
  }
}
