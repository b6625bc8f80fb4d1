/**
 * Small HTTP helpers for the KV routes: bounded body reads, error replies in the house JSON shape
 * (`{"error":{"code","message"}}`) with the status each KV code maps to, and framed streaming.
 */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StrataError } from '../common/errors.js';
import { httpStatusFor, sendJson } from '../common/ops-http.js';
import { KvError } from './errors.js';
import type { KvErrorCode } from './errors.js';
import { frameHeader, pack } from './wire.js';

/**
 * Reads a request body of at most `limitBytes`. A declared or actual length over the limit is a
 * 413 with `code`; the connection is then closed rather than draining a huge upload.
 */
export async function readBody(
  req: IncomingMessage,
  limitBytes: number,
  code: KvErrorCode = 'STRATA_KV_BODY_TOO_LARGE',
  what = 'request body',
): Promise<Buffer> {
  const tooLarge = (): KvError => new KvError(code, `${what} exceeds the limit of ${limitBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    total += b.length;
    if (total > limitBytes) throw tooLarge();
    chunks.push(b);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total);
}

export function statusOf(err: unknown): number {
  if (err instanceof KvError) return err.httpStatus;
  if (err instanceof StrataError) return httpStatusFor(err.code);
  return 500;
}

/** Sends an error as JSON; 5xx details stay in the log. Closes the connection after a 413. */
export function sendKvError(res: ServerResponse, err: unknown): void {
  const status = statusOf(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 413) res.setHeader('connection', 'close');
  if (err instanceof StrataError && status < 500) {
    sendJson(res, status, { error: { code: err.code, message: err.message } });
    return;
  }
  if (
    err instanceof StrataError &&
    (err.code === 'STRATA_KV_UNAVAILABLE' || err.code === 'STRATA_KV_OVERLOADED')
  ) {
    sendJson(res, status, { error: { code: err.code, message: err.message } });
    return;
  }
  sendJson(res, 500, { error: { code: 'STRATA_INTERNAL', message: 'internal error' } });
}

/** Sends a msgpack reply (internal API). */
export function sendPacked(res: ServerResponse, status: number, body: unknown): void {
  const buf = pack(body);
  res.writeHead(status, { 'content-type': 'application/x-msgpack', 'content-length': buf.length });
  res.end(buf);
}

/** Writes framed msgpack batches with backpressure; `end` writes the empty end frame. */
export class FrameWriter {
  readonly #res: ServerResponse;
  #closed = false;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, { 'content-type': 'application/x-strata-frames' });
    res.once('close', () => {
      this.#closed = true;
    });
  }

  async write(batch: unknown): Promise<void> {
    if (this.#closed) throw new KvError('STRATA_KV_UNAVAILABLE', 'receiver closed the stream');
    const body = pack(batch);
    this.#res.write(frameHeader(body.length));
    if (!this.#res.write(body)) {
      await Promise.race([once(this.#res, 'drain'), once(this.#res, 'close')]);
      if (this.#closed) throw new KvError('STRATA_KV_UNAVAILABLE', 'receiver closed the stream');
    }
  }

  end(): void {
    if (!this.#closed) this.#res.end(frameHeader(0));
  }
}
