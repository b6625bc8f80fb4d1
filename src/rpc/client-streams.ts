/**
 * Read and write streams on the client. A stream is opened on the current address (moving on to
 * the next only while connecting fails, since nothing has been sent yet) and is never retried once
 * open: a dropped connection, a cancel from either side, the deadline or a server error fail it
 * with a clear error. Flow control is credit-based (flow.ts).
 */
import { performance } from 'node:perf_hooks';
import { StrataError, TimeoutError } from '../common/errors.js';
import type { CallDef, CallKind, ReadCall, WriteCall } from './api.js';
import type { ClientConnection, PendingCall } from './client-connection.js';
import { asStrataError, encodeFailure } from './client-core.js';
import type { ClientCore } from './client-core.js';
import { STATUS_OK } from './codec.js';
import type { ResponseHeader } from './codec.js';
import { CancelledError, errorFromWire } from './errors.js';
import { InboundStream, StreamSender } from './flow.js';
import { ReceiveBuffers } from './receive-buffers.js';

export interface StreamParams {
  body: unknown;
  payload: Buffer;
  requestId: string;
  deadlineMs: number;
  signal: AbortSignal | undefined;
  /** Read streams: chunks are valid until the next is asked for (see CallOptions.reuseBuffers). */
  reuseBuffers?: boolean;
}

type AnyDef = CallDef<CallKind, unknown, unknown>;

/** What both kinds of stream do the same way: open, deadline, cancel, settle the result. */
abstract class ClientStream implements PendingCall {
  protected readonly core: ClientCore;
  protected readonly def: AnyDef;
  protected readonly params: StreamParams;
  readonly result: Promise<unknown>;
  protected conn: ClientConnection | undefined;
  protected callId = 0;
  protected settled = false;
  readonly #startedAt = performance.now();
  #resolveResult!: (value: unknown) => void;
  #rejectResult!: (err: StrataError) => void;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #onAbort: (() => void) | undefined;

  constructor(core: ClientCore, def: AnyDef, params: StreamParams) {
    this.core = core;
    this.def = def;
    this.params = params;
    this.result = new Promise((resolve, reject) => {
      this.#resolveResult = resolve;
      this.#rejectResult = reject;
    });
    // A caller that only iterates must not get an unhandled rejection; awaiting `result` still throws.
    this.result.catch(() => {});
  }

  /** Starts the deadline and opens the stream; called once by the subclass constructor. */
  protected begin(windowBytes: number | undefined): Promise<ClientConnection | undefined> {
    const { signal } = this.params;
    if (signal?.aborted === true) {
      this.fail(new CancelledError(`${this.def.name}: cancelled by the caller`));
      return Promise.resolve(undefined);
    }
    this.#deadlineTimer = setTimeout(() => {
      this.abort(new TimeoutError(this.def.name, this.params.deadlineMs), 'deadline exceeded');
    }, this.params.deadlineMs);
    if (signal !== undefined) {
      this.#onAbort = () => this.cancel('cancelled by the caller');
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    return this.#open(windowBytes);
  }

  async #open(windowBytes: number | undefined): Promise<ClientConnection | undefined> {
    const book = this.core.book;
    const deadlineAt = Date.now() + this.params.deadlineMs;
    let lastError: StrataError | undefined;
    for (let i = 0; i < book.size; i++) {
      const closed = this.core.closedError();
      if (closed !== undefined) {
        this.fail(closed);
        return undefined;
      }
      const idx = book.pick();
      let conn: ClientConnection;
      try {
        conn = book.ready(idx) ?? (await book.connect(idx, deadlineAt));
      } catch (err) {
        lastError = asStrataError(err);
        book.failed(idx);
        continue;
      }
      if (this.settled) return undefined;
      const callId = conn.nextCallId();
      try {
        conn.request(
          callId,
          this.def.kind,
          this.def.code,
          this.params.requestId,
          Math.max(1, deadlineAt - Date.now()),
          this.params.body,
          this.params.payload,
          windowBytes,
        );
      } catch (err) {
        this.fail(encodeFailure(this.def.name, err));
        return undefined;
      }
      this.conn = conn;
      this.callId = callId;
      conn.register(callId, this);
      return this.settled ? undefined : conn;
    }
    this.fail(
      lastError ?? new StrataError('STRATA_CONNECTION', `${this.def.name}: no address to connect to`),
    );
    return undefined;
  }

  cancel(reason = 'cancelled by the caller'): void {
    this.abort(new CancelledError(`${this.def.name}: ${reason}`), reason);
  }

  /** Ends the stream locally and tells the server (cancel frame). */
  protected abort(err: StrataError, reason: string): void {
    if (this.settled) return;
    const conn = this.conn;
    this.conn = undefined;
    conn?.cancel(this.callId, reason);
    this.fail(err);
  }

  onResponse(header: ResponseHeader, _payload: Buffer): void {
    this.conn = undefined;
    if (this.settled) return;
    if (header.s === STATUS_OK) this.succeed(header.b);
    else this.fail(errorFromWire(header.e));
  }

  onClose(err: StrataError): void {
    this.conn = undefined;
    this.fail(err);
  }

  protected succeed(body: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#cleanup();
    this.streamEnded(undefined);
    this.core.metrics.callDone(this.def.name, 'ok', (performance.now() - this.#startedAt) / 1000);
    this.#resolveResult(body);
  }

  protected fail(err: StrataError): void {
    if (this.settled) return;
    this.settled = true;
    this.#cleanup();
    this.streamEnded(err);
    this.core.metrics.callDone(this.def.name, err.code, (performance.now() - this.#startedAt) / 1000);
    this.#rejectResult(err);
  }

  /** The subclass ends its data side: normally (undefined) or with an error. */
  protected abstract streamEnded(err: StrataError | undefined): void;

  #cleanup(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    if (this.#onAbort !== undefined) this.params.signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** Server → client chunks; iterate them, then await `result`. */
export class ClientReadCall<Res> extends ClientStream implements ReadCall<Res> {
  declare readonly result: Promise<Res>;
  readonly #inbound: InboundStream;
  readonly #buffers: ReceiveBuffers | undefined;

  constructor(core: ClientCore, def: AnyDef, params: StreamParams) {
    super(core, def, params);
    const window = core.settings.streamWindowBytes;
    const buffers = params.reuseBuffers === true ? new ReceiveBuffers(window) : undefined;
    this.#buffers = buffers;
    this.#inbound = new InboundStream(
      window,
      (bytes) => this.conn?.credit(this.callId, bytes),
      () => this.cancel('the reader stopped reading'),
      buffers === undefined ? undefined : (chunk) => buffers.release(chunk),
    );
    void this.begin(window);
  }

  receiveBuffer(bytes: number): Buffer | undefined {
    return this.#buffers?.take(bytes);
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this.#inbound[Symbol.asyncIterator]();
  }

  onData(payload: Buffer): void {
    this.#inbound.push(payload);
  }

  protected streamEnded(err: StrataError | undefined): void {
    if (err === undefined) {
      this.#inbound.end();
      return;
    }
    if (err.code === 'STRATA_CANCELLED') this.#inbound.discard();
    this.#inbound.fail(err);
  }
}

const ENDED_BY_SERVER = new StrataError(
  'STRATA_STREAM_CLOSED',
  'the server ended the write stream before all data was written',
);

/** Client → server chunks: `write` waits for the server's credit; `end` returns the response. */
export class ClientWriteCall<Res> extends ClientStream implements WriteCall<Res> {
  declare readonly result: Promise<Res>;
  readonly #opened: Promise<StreamSender | undefined>;
  #sender: StreamSender | undefined;
  #creditSeen = false;
  #ending: Promise<Res> | undefined;

  constructor(core: ClientCore, def: AnyDef, params: StreamParams) {
    super(core, def, params);
    this.#opened = this.begin(undefined).then((conn) => {
      if (conn === undefined) return undefined;
      this.#sender = new StreamSender(conn.writer, this.callId, core.settings.streamChunkBytes, 0);
      return this.#sender;
    });
  }

  write(chunk: Buffer): Promise<void> {
    const sender = this.#sender;
    if (sender !== undefined) return sender.write(chunk);
    if (this.settled) return this.#whySettled();
    return this.#opened.then((s) => (s === undefined ? this.#whySettled() : s.write(chunk)));
  }

  end(): Promise<Res> {
    this.#ending ??= this.#opened
      .then(async (s) => {
        if (s === undefined) return;
        await s.settled();
        if (!this.settled && this.conn !== undefined) this.conn.end(this.callId);
      })
      .then(() => this.result);
    return this.#ending;
  }

  onCredit(bytes: number): void {
    const sender = this.#sender;
    if (sender === undefined) return;
    if (!this.#creditSeen) {
      // The first grant is the server's whole window: no chunk may be bigger.
      this.#creditSeen = true;
      sender.limitChunkBytes(bytes);
    }
    sender.addCredit(bytes);
  }

  protected streamEnded(err: StrataError | undefined): void {
    // The sender may not exist yet (ended while opening); writes then fail through #whySettled.
    if (err === undefined) this.#sender?.close(ENDED_BY_SERVER);
    else this.#sender?.fail(err);
  }

  async #whySettled(): Promise<never> {
    try {
      await this.result;
    } catch (err) {
      throw err as StrataError;
    }
    throw ENDED_BY_SERVER;
  }
}
