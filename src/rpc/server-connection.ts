/**
 * One accepted connection on a server: decodes frames, runs the calls they open concurrently,
 * and sends each call's response. A framing or protocol violation closes this connection only
 * (with a logged reason); a bad request body is answered with STRATA_BAD_REQUEST and the
 * connection stays.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { StrataError, TimeoutError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type {
  CallGate,
  ReadStreamHandler,
  RemoteAddress,
  StreamSink,
  UnaryHandler,
  WriteStreamHandler,
} from './api.js';
import {
  STATUS_ERROR,
  STATUS_OK,
  decodeCancelHeader,
  decodeCreditHeader,
  decodeRequestHeader,
  kindOf,
} from './codec.js';
import type { RequestHeader } from './codec.js';
import { CancelledError, ConnectionError, ProtocolError, UnavailableError, errorToWire } from './errors.js';
import { EMPTY, FrameDecoder, FrameType, frameTypeName } from './frame.js';
import { FrameWriter } from './frame-writer.js';
import { InboundStream, StreamSender } from './flow.js';
import { MAX_CALL_DEADLINE_MS } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import { ServerCall } from './server-call.js';
import type { AnyCallDef } from './server-call.js';

export type Registered =
  | { kind: 'unary'; def: AnyCallDef; handler: UnaryHandler<unknown, unknown> }
  | { kind: 'read'; def: AnyCallDef; handler: ReadStreamHandler<unknown, unknown> }
  | { kind: 'write'; def: AnyCallDef; handler: WriteStreamHandler<unknown, unknown> };

/** What a connection needs from its server. */
export interface ServerCore {
  readonly log: Logger;
  readonly metrics: ServerMetrics;
  readonly gate: CallGate | undefined;
  readonly maxFrameBytes: number;
  readonly streamWindowBytes: number;
  readonly streamChunkBytes: number;
  readonly maxCallsPerConnection: number;
  readonly idleTimeoutMs: number;
  isClosing(): boolean;
  lookup(code: number): Registered | undefined;
  /** A call finished or a connection closed (the server may be waiting to shut down). */
  activityEnded(): void;
  connectionClosed(conn: ServerConnection): void;
}

const STREAM_CLOSED = new StrataError('STRATA_STREAM_CLOSED', 'the stream has ended: no more writes');

export class ServerConnection {
  readonly #core: ServerCore;
  readonly #socket: Socket;
  readonly #remote: RemoteAddress;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #calls = new Map<number, ServerCall>();
  #closed = false;
  #paused = false;

  constructor(core: ServerCore, socket: Socket) {
    this.#core = core;
    this.#socket = socket;
    this.#remote = { host: socket.remoteAddress ?? 'unknown', port: socket.remotePort ?? 0 };
    this.#writer = new FrameWriter(socket, core.maxFrameBytes, (n) => core.metrics.sent(n));
    this.#decoder = new FrameDecoder(
      core.maxFrameBytes,
      (type, callId, header, payload) => this.#onFrame(type, callId, header, payload),
      true,
    );
    core.metrics.connectionOpened();
    socket.setNoDelay(true);
    socket.setTimeout(core.idleTimeoutMs);
    socket.on('timeout', () => {
      // Idle means no traffic at all; live clients ping well within the timeout.
      if (this.#calls.size === 0) this.destroy(undefined, 'idle timeout');
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => {
      core.log.debug({ err, remote: this.#remote }, 'rpc connection error');
    });
    socket.on('close', () => this.#onClose());
  }

  get remote(): RemoteAddress {
    return this.#remote;
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  /** Aborts every call in flight (their handlers see the signal and may still answer). */
  abortCalls(reason: StrataError): void {
    for (const call of this.#calls.values()) call.abort(reason);
  }

  /** Aborts what is left, sends what is queued and closes the socket. */
  shutdown(reason: StrataError): void {
    this.abortCalls(reason);
    this.#writer.flush();
    this.#socket.end();
  }

  /** Closes at once; with `err`, every call fails with it. */
  destroy(err: StrataError | undefined, why: string): void {
    if (this.#closed) return;
    this.#core.log.debug({ remote: this.#remote, why }, 'closing rpc connection');
    this.#abortAll(err ?? new ConnectionError(`connection closed by the server: ${why}`));
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#core.metrics.received(chunk.length);
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.#onDecodeError(err);
      return;
    }
    if (this.#writer.congested && !this.#paused) {
      // The peer is not reading its responses: stop taking new requests until it does.
      this.#paused = true;
      this.#socket.pause();
      void this.#writer.drained().then(() => {
        this.#paused = false;
        if (!this.#closed) this.#socket.resume();
      });
    }
  }

  #onDecodeError(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.#core.metrics.protocolError(err.violation);
      this.#core.log.warn(
        { remote: this.#remote, violation: err.violation, reason: err.message },
        'closing rpc connection: protocol error',
      );
    } else {
      this.#core.metrics.protocolError('internal');
      this.#core.log.error({ err, remote: this.#remote }, 'closing rpc connection: internal error');
    }
    this.destroy(new ConnectionError('connection closed after a protocol error'), 'protocol error');
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#abortAll(new ConnectionError('connection closed by the client'));
    this.#closed = true;
    this.#core.metrics.connectionClosed();
    this.#core.connectionClosed(this);
  }

  #abortAll(err: StrataError): void {
    for (const call of this.#calls.values()) {
      call.silenced = true;
      call.abort(err);
    }
  }

  #onFrame(type: FrameType, callId: number, header: Buffer, payload: Buffer): void {
    switch (type) {
      case FrameType.Request:
        this.#onRequest(callId, decodeRequestHeader(header), payload);
        return;
      case FrameType.Data: {
        const call = this.#calls.get(callId);
        if (call === undefined) return; // the call ended while the chunk was on its way
        if (call.def.kind !== 'write') {
          throw new ProtocolError(
            'unexpected_frame',
            `data frame for ${call.def.name}, which is not a write stream`,
          );
        }
        if (call.input === undefined) {
          throw new ProtocolError(
            'flow_control',
            `data frame for ${call.def.name} before any credit was granted`,
          );
        }
        call.input.push(payload);
        return;
      }
      case FrameType.End: {
        const call = this.#calls.get(callId);
        call?.input?.end();
        return;
      }
      case FrameType.Cancel: {
        const reason = decodeCancelHeader(header);
        const call = this.#calls.get(callId);
        if (call === undefined) return;
        call.silenced = true;
        call.abort(new CancelledError(`${call.def.name}: cancelled by the caller: ${reason}`));
        return;
      }
      case FrameType.Credit: {
        const bytes = decodeCreditHeader(header);
        this.#calls.get(callId)?.sender?.addCredit(bytes);
        return;
      }
      case FrameType.Ping:
        this.#writer.bareFrame(FrameType.Pong, callId, payload);
        return;
      default:
        throw new ProtocolError('unexpected_frame', `a client may not send ${frameTypeName(type)} frames`);
    }
  }

  #onRequest(callId: number, h: RequestHeader, payload: Buffer): void {
    if (this.#calls.has(callId)) {
      throw new ProtocolError('unexpected_frame', `call id ${callId} is already in use on this connection`);
    }
    const core = this.#core;
    const entry = core.lookup(h.c);
    if (entry === undefined) {
      this.#refuse(
        callId,
        'unknown',
        new StrataError('STRATA_UNKNOWN_CALL', `unknown call code ${h.c}: this server does not serve it`, {
          details: { code: h.c },
        }),
      );
      return;
    }
    const asKind = kindOf(h.k);
    if (entry.kind !== asKind) {
      this.#refuse(
        callId,
        entry.def.name,
        new StrataError(
          'STRATA_BAD_REQUEST',
          `${entry.def.name} is a ${entry.kind} call but was called as a ${asKind} call (client and server disagree on its definition)`,
          { details: { call: entry.def.name, kind: entry.kind, calledAs: asKind } },
        ),
      );
      return;
    }
    if (core.isClosing()) {
      this.#refuse(
        callId,
        entry.def.name,
        new UnavailableError('the server is shutting down: try another address'),
      );
      return;
    }
    if (this.#calls.size >= core.maxCallsPerConnection) {
      this.#refuse(
        callId,
        entry.def.name,
        new StrataError(
          'STRATA_OVERLOADED',
          `too many calls in flight on one connection (limit ${core.maxCallsPerConnection})`,
        ),
      );
      return;
    }
    const now = performance.now();
    const deadlineMs = Math.min(h.d, MAX_CALL_DEADLINE_MS);
    const call = new ServerCall(
      callId,
      entry.def,
      h.r,
      Date.now() + deadlineMs,
      this.#remote,
      payload,
      core.log,
      now,
    );
    this.#calls.set(callId, call);
    core.metrics.callStarted();
    call.timer = setTimeout(() => call.abort(new TimeoutError(entry.def.name, deadlineMs)), deadlineMs);
    switch (entry.kind) {
      case 'unary':
        void this.#runUnary(call, entry.handler, h.b);
        return;
      case 'read':
        void this.#runRead(call, entry.handler, h.b, h.w ?? 0);
        return;
      case 'write':
        void this.#runWrite(call, entry.handler, h.b);
        return;
    }
  }

  /** Answers a request that never became a call. */
  #refuse(callId: number, name: string, err: StrataError): void {
    this.#writer.headerFrame(FrameType.Response, callId, { s: STATUS_ERROR, e: errorToWire(err) });
    this.#core.metrics.callStarted();
    this.#core.metrics.callDone(name, err.code, 0);
  }

  /** Gate and schema: what every kind of call passes before its handler runs. */
  #admit(call: ServerCall, body: unknown): unknown {
    this.#core.gate?.(call.def, call);
    const parsed = call.def.request.safeParse(body);
    if (!parsed.success) throw badRequest(call.def.name, parsed.error);
    return parsed.data;
  }

  async #runUnary(call: ServerCall, handler: UnaryHandler<unknown, unknown>, body: unknown): Promise<void> {
    let result: unknown;
    try {
      result = await handler(this.#admit(call, body), call);
    } catch (err) {
      this.#finishError(call, err);
      return;
    }
    const reply = splitReply(result);
    this.#finishOk(call, reply.body, reply.payload);
  }

  async #runRead(
    call: ServerCall,
    handler: ReadStreamHandler<unknown, unknown>,
    body: unknown,
    windowBytes: number,
  ): Promise<void> {
    const sender = new StreamSender(this.#writer, call.callId, this.#core.streamChunkBytes, windowBytes);
    sender.limitChunkBytes(windowBytes);
    call.sender = sender;
    if (call.aborted !== undefined) sender.fail(call.aborted);
    const sink: StreamSink = {
      write: (chunk) => sender.write(chunk),
      get creditBytes() {
        return sender.creditBytes;
      },
    };
    let result: unknown;
    try {
      result = await handler(this.#admit(call, body), call, sink);
      // Every chunk must leave before the response that ends the stream.
      await sender.settled();
    } catch (err) {
      sender.close(STREAM_CLOSED);
      this.#finishError(call, err);
      return;
    }
    sender.close(STREAM_CLOSED);
    this.#finishOk(call, result, EMPTY);
  }

  async #runWrite(
    call: ServerCall,
    handler: WriteStreamHandler<unknown, unknown>,
    body: unknown,
  ): Promise<void> {
    let result: unknown;
    try {
      const req = this.#admit(call, body);
      const window = this.#core.streamWindowBytes;
      const input = new InboundStream(
        window,
        (bytes) => this.#sendCredit(call, bytes),
        () => {
          // The handler stopped reading early; later chunks are dropped when the call ends.
        },
      );
      call.input = input;
      if (call.aborted !== undefined) input.fail(call.aborted);
      else this.#sendCredit(call, window);
      result = await handler(req, call, input);
    } catch (err) {
      call.input?.discard();
      this.#finishError(call, err);
      return;
    }
    call.input.discard();
    this.#finishOk(call, result, EMPTY);
  }

  #sendCredit(call: ServerCall, bytes: number): void {
    if (call.finished || call.silenced || this.#closed) return;
    this.#writer.headerFrame(FrameType.Credit, call.callId, { n: bytes });
  }

  #finishOk(call: ServerCall, body: unknown, payload: Buffer): void {
    if (!this.#endCall(call)) return;
    if (!call.silenced && !this.#closed) {
      try {
        this.#writer.headerFrame(
          FrameType.Response,
          call.callId,
          { s: STATUS_OK, b: body },
          payload,
          'response',
        );
      } catch (err) {
        this.#sendError(call, err);
        return;
      }
    }
    this.#core.metrics.callDone(call.def.name, 'ok', (performance.now() - call.startedAt) / 1000);
    this.#core.activityEnded();
  }

  #finishError(call: ServerCall, err: unknown): void {
    if (!this.#endCall(call)) return;
    this.#sendError(call, err);
  }

  #sendError(call: ServerCall, err: unknown): void {
    let e: StrataError;
    if (err instanceof StrataError) {
      e = err;
    } else {
      call.log.error({ err }, 'rpc handler failed');
      e = new StrataError('STRATA_INTERNAL', 'internal error');
    }
    if (!call.silenced && !this.#closed) {
      try {
        this.#writer.headerFrame(FrameType.Response, call.callId, { s: STATUS_ERROR, e: errorToWire(e) });
      } catch (encodeErr) {
        // Details that msgpack cannot carry: send the code and message alone.
        call.log.warn({ err: encodeErr }, 'rpc error details not encodable; sent without them');
        this.#writer.headerFrame(FrameType.Response, call.callId, {
          s: STATUS_ERROR,
          e: { c: e.code, m: e.message },
        });
      }
    }
    this.#core.metrics.callDone(call.def.name, e.code, (performance.now() - call.startedAt) / 1000);
    this.#core.activityEnded();
  }

  /** Marks the call finished; false when it already was. */
  #endCall(call: ServerCall): boolean {
    if (call.finished) return false;
    call.finished = true;
    if (call.timer !== undefined) {
      clearTimeout(call.timer);
      call.timer = undefined;
    }
    this.#calls.delete(call.callId);
    return true;
  }
}

function badRequest(name: string, error: z.ZodError): StrataError {
  const issues = error.issues.slice(0, 5).map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.message,
  }));
  const text = issues.map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`)).join('; ');
  const more =
    error.issues.length > issues.length ? ` (and ${error.issues.length - issues.length} more)` : '';
  return new StrataError('STRATA_BAD_REQUEST', `${name}: bad request: ${text}${more}`, {
    details: { call: name, issues },
  });
}

/** A unary result is either the body, or `{ body, payload }` with raw bytes beside it. */
function splitReply(result: unknown): { body: unknown; payload: Buffer } {
  if (typeof result === 'object' && result !== null && 'payload' in result && 'body' in result) {
    const { payload } = result as { payload: unknown };
    if (payload instanceof Uint8Array && Object.keys(result).length === 2) {
      const bytes = Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      return { body: (result as { body: unknown }).body, payload: bytes };
    }
  }
  return { body: result, payload: EMPTY };
}
