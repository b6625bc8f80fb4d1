/**
 * Talking to one peer node: an undici Pool of keep-alive HTTP/1.1 connections, msgpack bodies,
 * a deadline on every request, and errors sorted into "unreachable" (try another replica, count
 * against the peer's health) and answers (the peer said no: pass it on).
 */
import { Pool } from 'undici';
import { StrataError } from '../common/errors.js';
import { formatHostPort } from '../common/net.js';
import type { HostPort } from '../common/net.js';
import { KvError, PeerUnreachableError, isKvErrorCode } from './errors.js';
import { FrameReader, MSGPACK_CONTENT_TYPE, pack, unpack } from './wire.js';

/** Connections kept per peer: enough for concurrent batches, small enough for many peers. */
export const PEER_CONNECTIONS = 16;
/** Idle keep-alive below the server's 5 s so the client never reuses a socket being closed. */
const KEEP_ALIVE_MS = 4_000;
/** Largest reply body read into memory (an ops batch reply with maximal values). */
const MAX_REPLY_BYTES = 1024 * 1024 * 1024;

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_ABORTED',
  'UND_ERR_INFO',
]);

export interface PeerClientOptions {
  timeoutMs: number;
  connections?: number;
}

export class PeerClient {
  readonly id: string;
  readonly address: HostPort;
  readonly origin: string;
  readonly #pool: Pool;
  readonly #timeoutMs: number;
  #closed = false;

  constructor(id: string, address: HostPort, opts: PeerClientOptions) {
    this.id = id;
    this.address = address;
    this.origin = `http://${formatHostPort(address)}`;
    this.#timeoutMs = opts.timeoutMs;
    this.#pool = new Pool(this.origin, {
      connections: opts.connections ?? PEER_CONNECTIONS,
      pipelining: 1,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      connectTimeout: opts.timeoutMs,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
  }

  /** POSTs a msgpack body and returns the decoded msgpack reply. */
  async call(path: string, body: unknown, timeoutMs = this.#timeoutMs): Promise<unknown> {
    const payload = pack(body);
    const res = await this.#request({
      method: 'POST',
      path,
      body: payload,
      headers: { 'content-type': MSGPACK_CONTENT_TYPE },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const buf = await this.#readBody(res.body, res.statusCode);
    if (res.statusCode !== 200) throw this.#remoteError(res.statusCode, buf);
    return unpack(buf);
  }

  /** GETs a JSON document (health, cluster view). */
  async getJson(path: string, timeoutMs = this.#timeoutMs): Promise<{ status: number; body: unknown }> {
    const res = await this.#request({
      method: 'GET',
      path,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const buf = await this.#readBody(res.body, res.statusCode);
    try {
      return { status: res.statusCode, body: JSON.parse(buf.toString('utf8')) as unknown };
    } catch {
      throw new KvError(
        'STRATA_KV_BAD_REQUEST',
        `peer ${this.id}: ${path} answered ${res.statusCode} with non-JSON`,
      );
    }
  }

  /**
   * POSTs a msgpack request and reads a framed reply, handing each frame's decoded msgpack to
   * `onFrame` in order (awaited, so a slow consumer slows the sender: TCP flow control).
   * `idleMs` bounds the wait for each chunk rather than the whole transfer.
   */
  async stream(
    path: string,
    body: unknown,
    onFrame: (frame: unknown) => Promise<void> | void,
    idleMs = this.#timeoutMs,
  ): Promise<void> {
    const res = await this.#request({
      method: 'POST',
      path,
      body: pack(body),
      headers: { 'content-type': MSGPACK_CONTENT_TYPE },
      headersTimeout: idleMs,
      bodyTimeout: idleMs,
    });
    if (res.statusCode !== 200) {
      const buf = await this.#readBody(res.body, res.statusCode);
      throw this.#remoteError(res.statusCode, buf);
    }
    const reader = new FrameReader();
    try {
      for await (const chunk of res.body) {
        for (const frame of reader.push(chunk as Buffer)) await onFrame(unpack(frame));
      }
    } catch (err) {
      res.body.destroy();
      throw this.#classify(err);
    }
    if (!reader.done) throw new PeerUnreachableError(this.id, `${path}: stream ended early`, false);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.destroy();
  }

  async #request(opts: Parameters<Pool['request']>[0]): Promise<Awaited<ReturnType<Pool['request']>>> {
    if (this.#closed) throw new PeerUnreachableError(this.id, 'client closed', false);
    try {
      return await this.#pool.request(opts);
    } catch (err) {
      throw this.#classify(err);
    }
  }

  async #readBody(body: AsyncIterable<unknown>, status: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const c of body) {
        const b = c as Buffer;
        total += b.length;
        if (total > MAX_REPLY_BYTES)
          throw new KvError(
            'STRATA_KV_BODY_TOO_LARGE',
            `peer ${this.id}: reply over ${MAX_REPLY_BYTES} bytes (status ${status})`,
          );
        chunks.push(b);
      }
    } catch (err) {
      throw this.#classify(err);
    }
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
  }

  #remoteError(status: number, buf: Buffer): StrataError {
    let code = 'STRATA_INTERNAL';
    let message = `peer ${this.id} answered ${status}`;
    try {
      const body = unpack(buf) as { e?: unknown; m?: unknown };
      if (typeof body.e === 'string') code = body.e;
      if (typeof body.m === 'string') message = body.m;
    } catch {
      // not msgpack: keep the generic message
    }
    // "Unavailable" (e.g. the peer is leaving) means: not here, try the key's next node.
    if (status === 503 && code === 'STRATA_KV_UNAVAILABLE')
      return new PeerUnreachableError(this.id, message, false);
    return isKvErrorCode(code) ? new KvError(code, message) : new StrataError(code, message);
  }

  #classify(err: unknown): unknown {
    if (err instanceof StrataError) return err;
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
      return new PeerUnreachableError(
        this.id,
        `${code}: ${(err as Error).message}`,
        code === 'ECONNREFUSED',
        { cause: err },
      );
    }
    // Errors without a code from a socket are still transport trouble.
    if (err instanceof Error) return new PeerUnreachableError(this.id, err.message, false, { cause: err });
    return err;
  }
}
