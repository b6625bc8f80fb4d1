/**
 * One client connection to one server address: many calls multiplexed by call id, reads through
 * net `onread` into the decoder's slabs (big frames straight into their own buffers), keepalive
 * pings that give up on a silent peer, and a clear error for every call when the connection is
 * lost. Retries and failover live above, in RpcClient.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { formatHostPort } from '../common/net.js';
import type { CallKind, RemoteAddress } from './api.js';
import { KIND_CODES, decodeCreditHeader, decodeResponseHeader } from './codec.js';
import type { ResponseHeader } from './codec.js';
import { ConnectionError, ProtocolError } from './errors.js';
import { EMPTY, FrameDecoder, FrameType, frameTypeName } from './frame.js';
import { FrameWriter } from './frame-writer.js';

/** What the connection calls back for one call in flight. */
export interface PendingCall {
  onResponse(header: ResponseHeader, payload: Buffer): void;
  /** Read streams only. */
  onData?(payload: Buffer): void;
  /** Read streams only: a buffer of exactly `bytes` to receive a data frame's body into, if it has one. */
  receiveBuffer?(bytes: number): Buffer | undefined;
  /** Write streams only. */
  onCredit?(bytes: number): void;
  /** The connection was lost; the call is over. */
  onClose(err: StrataError): void;
}

export interface ClientConnectionOptions {
  address: RemoteAddress;
  maxFrameBytes: number;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  log: Logger;
  /** Called once when the connection closes, whatever the reason. */
  onClosed: (conn: ClientConnection) => void;
}

const PING_PAYLOAD_BYTES = 8;
/** Call ids wrap here (u32 on the wire); 0 is reserved for connection-level frames. */
const MAX_CALL_ID = 0xffff_ffff;

export class ClientConnection {
  readonly address: RemoteAddress;
  readonly #name: string;
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #writer: FrameWriter;
  readonly #calls = new Map<number, PendingCall>();
  readonly #opts: ClientConnectionOptions;
  #nextCallId = 1;
  #closedError: StrataError | undefined;
  #lastReceivedAt = Date.now();
  #pingSentAt = 0;
  #pingTimer: NodeJS.Timeout | undefined;
  #keepaliveTimer: NodeJS.Timeout | undefined;
  #referenced = true;

  /** Opens a connection; rejects with ConnectionError when it cannot within the timeout. */
  static open(opts: ClientConnectionOptions): Promise<ClientConnection> {
    const conn = new ClientConnection(opts);
    return conn.#connected();
  }

  private constructor(opts: ClientConnectionOptions) {
    this.#opts = opts;
    this.address = opts.address;
    this.#name = formatHostPort(opts.address);
    this.#decoder = new FrameDecoder(
      opts.maxFrameBytes,
      (type, callId, header, payload) => this.#onFrame(type, callId, header, payload),
      false,
      (callId, bytes) => this.#calls.get(callId)?.receiveBuffer?.(bytes),
    );
    this.#socket = netConnect({
      host: opts.address.host,
      port: opts.address.port,
      noDelay: true,
      onread: {
        buffer: () => this.#decoder.readTarget(),
        callback: (bytes: number) => {
          this.#onRead(bytes);
          return true;
        },
      },
    });
    this.#writer = new FrameWriter(this.#socket, opts.maxFrameBytes);
  }

  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#closedError !== undefined;
  }

  get inFlight(): number {
    return this.#calls.size;
  }

  get writer(): FrameWriter {
    return this.#writer;
  }

  #connected(): Promise<ClientConnection> {
    const socket = this.#socket;
    const { connectTimeoutMs } = this.#opts;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new ConnectionError(`cannot connect to ${this.#name}: no answer within ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      const fail = (err: StrataError): void => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        this.#close(err);
        reject(err);
      };
      const onError = (err: NodeJS.ErrnoException): void => {
        fail(
          new ConnectionError(`cannot connect to ${this.#name}: ${err.code ?? err.message}`, { cause: err }),
        );
      };
      const onConnect = (): void => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', (err: NodeJS.ErrnoException) => {
          this.#opts.log.debug({ err, address: this.#name }, 'rpc connection error');
          this.#close(new ConnectionError(`connection to ${this.#name} lost: ${err.code ?? err.message}`));
        });
        this.#startKeepalive();
        this.#unrefIfIdle();
        resolve(this);
      };
      socket.once('error', onError);
      socket.once('connect', onConnect);
      socket.on('close', () =>
        this.#close(new ConnectionError(`connection to ${this.#name} closed by the peer`)),
      );
    });
  }

  nextCallId(): number {
    const id = this.#nextCallId;
    this.#nextCallId = id === MAX_CALL_ID ? 1 : id + 1;
    return id;
  }

  /** Registers a call; the socket keeps the process alive only while calls are in flight. */
  register(callId: number, pending: PendingCall): void {
    if (this.#closedError !== undefined) {
      pending.onClose(this.#closedError);
      return;
    }
    this.#calls.set(callId, pending);
    if (!this.#referenced) {
      this.#referenced = true;
      this.#socket.ref();
    }
  }

  unregister(callId: number): void {
    if (this.#calls.delete(callId)) this.#unrefIfIdle();
  }

  /** Sends a REQUEST frame. Throws (nothing sent) when the request cannot be encoded or is too large. */
  request(
    callId: number,
    kind: CallKind,
    code: number,
    requestId: string,
    deadlineMs: number,
    body: unknown,
    payload: Buffer,
    windowBytes?: number,
  ): void {
    const k = KIND_CODES[kind];
    const header =
      windowBytes === undefined
        ? { c: code, k, r: requestId, d: deadlineMs, b: body }
        : { c: code, k, r: requestId, d: deadlineMs, b: body, w: windowBytes };
    this.#writer.headerFrame(FrameType.Request, callId, header, payload, 'request');
  }

  /** Tells the server the caller gave up on a call, and forgets it. */
  cancel(callId: number, reason: string): void {
    this.unregister(callId);
    if (this.#closedError === undefined) {
      this.#writer.headerFrame(FrameType.Cancel, callId, { m: reason.slice(0, 500) });
    }
  }

  credit(callId: number, bytes: number): void {
    if (this.#closedError === undefined) this.#writer.headerFrame(FrameType.Credit, callId, { n: bytes });
  }

  end(callId: number): void {
    if (this.#closedError === undefined) this.#writer.bareFrame(FrameType.End, callId, EMPTY);
  }

  /** Closes the connection; every call in flight fails with `err`. */
  close(err: StrataError): void {
    this.#close(err);
  }

  #close(err: StrataError): void {
    if (this.#closedError !== undefined) return;
    this.#closedError = err;
    if (this.#keepaliveTimer !== undefined) clearInterval(this.#keepaliveTimer);
    if (this.#pingTimer !== undefined) clearTimeout(this.#pingTimer);
    this.#socket.destroy();
    const calls = [...this.#calls.values()];
    this.#calls.clear();
    for (const pending of calls) pending.onClose(err);
    this.#opts.onClosed(this);
  }

  #unrefIfIdle(): void {
    if (this.#calls.size === 0 && this.#referenced) {
      this.#referenced = false;
      this.#socket.unref();
    }
  }

  #onRead(bytes: number): void {
    this.#lastReceivedAt = Date.now();
    try {
      this.#decoder.readDone(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.#opts.log.warn(
        { address: this.#name, reason },
        'closing rpc connection: protocol error from server',
      );
      this.#close(new ConnectionError(`protocol error from ${this.#name}: ${reason}`, { cause: err }));
    }
  }

  #onFrame(type: FrameType, callId: number, header: Buffer, payload: Buffer): void {
    switch (type) {
      case FrameType.Response: {
        const pending = this.#calls.get(callId);
        if (pending === undefined) return; // cancelled or timed out meanwhile
        const h = decodeResponseHeader(header);
        this.unregister(callId);
        pending.onResponse(h, payload);
        return;
      }
      case FrameType.Data: {
        const pending = this.#calls.get(callId);
        if (pending === undefined) return;
        if (pending.onData === undefined) {
          throw new ProtocolError('unexpected_frame', 'data frame for a call that is not a read stream');
        }
        pending.onData(payload);
        return;
      }
      case FrameType.Credit: {
        const bytes = decodeCreditHeader(header);
        this.#calls.get(callId)?.onCredit?.(bytes);
        return;
      }
      case FrameType.Pong:
        return;
      case FrameType.Ping:
        this.#writer.bareFrame(FrameType.Pong, callId, payload);
        return;
      default:
        throw new ProtocolError('unexpected_frame', `a server may not send ${frameTypeName(type)} frames`);
    }
  }

  #startKeepalive(): void {
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.#opts;
    this.#keepaliveTimer = setInterval(() => {
      if (this.#pingTimer !== undefined || this.#closedError !== undefined) return;
      if (Date.now() - this.#lastReceivedAt < keepaliveIntervalMs) return;
      this.#pingSentAt = Date.now();
      const ping = Buffer.allocUnsafe(PING_PAYLOAD_BYTES);
      ping.writeDoubleBE(this.#pingSentAt, 0);
      this.#writer.bareFrame(FrameType.Ping, 0, ping);
      this.#pingTimer = setTimeout(() => {
        this.#pingTimer = undefined;
        if (this.#lastReceivedAt >= this.#pingSentAt) return;
        this.#opts.log.warn(
          { address: this.#name, keepaliveTimeoutMs },
          'rpc peer silent: closing connection',
        );
        this.#close(
          new ConnectionError(
            `${this.#name} did not answer a keepalive ping within ${keepaliveTimeoutMs} ms`,
          ),
        );
      }, keepaliveTimeoutMs);
      this.#pingTimer.unref();
    }, keepaliveIntervalMs);
    this.#keepaliveTimer.unref();
  }
}
