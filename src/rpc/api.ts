/**
 * The cluster RPC's public surface: how a call is defined once and used by both sides.
 *
 * A call has a stable numeric code on the wire, a name for logs and metrics, a zod schema for its
 * request (validated by the server: requests are untrusted input) and one for its response (the
 * client trusts its server and does not re-validate). Bodies travel as msgpack; bulk bytes travel
 * beside the body as a raw payload or as a stream of chunks, never inside msgpack.
 *
 * Request schemas must not transform or fill defaults: the type a client sends is the type the
 * handler receives (`Req` is both the schema's input and output). Handlers apply defaults.
 *
 * Three kinds:
 * - unary: request (+ optional payload bytes) → response (+ optional payload bytes).
 * - read stream: request → server sends chunks (flow-controlled by the client's credit) → response.
 * - write stream: request → client sends chunks (flow-controlled by the server's credit) → response.
 */
import type { z } from 'zod';
import type { Logger } from '../common/logging.js';

export type CallKind = 'unary' | 'read' | 'write';

export interface CallDef<K extends CallKind, Req, Res> {
  readonly kind: K;
  /** Unique and stable on the wire; never reuse a retired code. */
  readonly code: number;
  /** Dotted name, e.g. "master.create"; a label in metrics and logs. */
  readonly name: string;
  /** A mutating call carries the same request id on every retry so the server can deduplicate. */
  readonly mutating: boolean;
  readonly request: z.ZodType<Req>;
  readonly response: z.ZodType<Res>;
}

export type UnaryCall<Req, Res> = CallDef<'unary', Req, Res>;
export type ReadStreamCall<Req, Res> = CallDef<'read', Req, Res>;
export type WriteStreamCall<Req, Res> = CallDef<'write', Req, Res>;

export interface DefineOptions {
  mutating?: boolean;
}

export function unary<Req, Res>(
  code: number,
  name: string,
  request: z.ZodType<Req>,
  response: z.ZodType<Res>,
  opts: DefineOptions = {},
): UnaryCall<Req, Res> {
  return { kind: 'unary', code, name, mutating: opts.mutating ?? false, request, response };
}

export function readStream<Req, Res>(
  code: number,
  name: string,
  request: z.ZodType<Req>,
  response: z.ZodType<Res>,
): ReadStreamCall<Req, Res> {
  return { kind: 'read', code, name, mutating: false, request, response };
}

export function writeStream<Req, Res>(
  code: number,
  name: string,
  request: z.ZodType<Req>,
  response: z.ZodType<Res>,
  opts: DefineOptions = {},
): WriteStreamCall<Req, Res> {
  return { kind: 'write', code, name, mutating: opts.mutating ?? true, request, response };
}

// ---- server side ------------------------------------------------------------------------------

export interface RemoteAddress {
  host: string;
  port: number;
}

export interface CallContext {
  /** Stable across retries of one logical call (same value after failover to another server). */
  readonly requestId: string;
  /** Absolute deadline (epoch ms) the caller gave; handlers pass it on to calls they make. */
  readonly deadlineAt: number;
  /** Aborted when the caller cancels, the deadline passes, or the connection drops. */
  readonly signal: AbortSignal;
  readonly remote: RemoteAddress;
  /** Raw bytes sent beside the request body (empty when none). */
  readonly payload: Buffer;
  readonly log: Logger;
}

/** What a unary handler returns when it also sends raw bytes. */
export interface ReplyWithPayload<Res> {
  readonly body: Res;
  readonly payload: Buffer;
}

/**
 * Builds a unary handler's reply of a body plus raw bytes. The server recognises a reply by its
 * shape (an object with exactly `body` and `payload`, the payload a Buffer or Uint8Array).
 */
export function withPayload<Res>(body: Res, payload: Buffer): ReplyWithPayload<Res> {
  return { body, payload };
}

export type UnaryHandler<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res | ReplyWithPayload<Res>>;

/** The server side of a read stream: `write` resolves when the client has credit for more. */
export interface StreamSink {
  write(chunk: Buffer): Promise<void>;
  /** Bytes the client can still accept before `write` waits. */
  readonly creditBytes: number;
}

export type ReadStreamHandler<Req, Res> = (req: Req, ctx: CallContext, out: StreamSink) => Promise<Res>;

/** The chunks of a write stream on the server, in order, ending at the client's end(). */
export interface StreamInput extends AsyncIterable<Buffer> {
  /**
   * The next chunk if one has arrived already (taken at once, with no promise), else undefined:
   * iterate to wait for one. A consumer draining a burst of chunks this way skips two promise
   * turns per chunk (one read off the socket, 64 KiB, is usually a chunk).
   */
  takeQueued(): Buffer | undefined;
}

/** The server side of a write stream: chunks as the client sends them, ending at the client's end(). */
export type WriteStreamHandler<Req, Res> = (req: Req, ctx: CallContext, input: StreamInput) => Promise<Res>;

/** Decides whether this server may serve a call now (e.g. only the leader serves). Throw to refuse. */
export type CallGate = (call: CallDef<CallKind, unknown, unknown>, ctx: CallContext) => void;

// ---- client side ------------------------------------------------------------------------------

export interface CallOptions {
  /** Deadline for the whole call including retries; default from the client options. */
  deadlineMs?: number;
  /** Reuse to make a retried logical call recognisable (generated when absent). */
  requestId?: string;
  /** Raw bytes sent beside the request. */
  payload?: Buffer;
  signal?: AbortSignal;
  /**
   * Read streams: each chunk is valid only until the next one is asked for (or the iteration
   * ends); big chunks are then received into a few buffers the stream reuses instead of fresh
   * memory. For consumers that copy or parse each chunk and keep nothing of it.
   */
  reuseBuffers?: boolean;
}

export interface UnaryResult<Res> {
  body: Res;
  payload: Buffer;
}

/** A read stream in progress: iterate the chunks, then await `result`. */
export interface ReadCall<Res> extends AsyncIterable<Buffer> {
  readonly result: Promise<Res>;
  cancel(reason?: string): void;
}

/** A write stream in progress: `write` waits for server credit; `end` returns the response. */
export interface WriteCall<Res> {
  write(chunk: Buffer): Promise<void>;
  end(): Promise<Res>;
  cancel(reason?: string): void;
}
