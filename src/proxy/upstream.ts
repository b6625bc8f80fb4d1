/**
 * The origin connection: an undici keep-alive pool to `upstream_address`. Requests are never
 * retried here (the cache-tests harness counts origin requests; slices retry at their own
 * level). Timeouts bound the wait for headers and the gap between body chunks.
 */
import { Readable } from 'node:stream';
import { Pool, errors as undiciErrors, util as undiciUtil } from 'undici';
import type { Dispatcher } from 'undici';
import { UpstreamError } from './errors.js';
import { pairsFromRecord } from './http/headers.js';
import type { HeaderPairs } from './store/types.js';

/** Idle keep-alive connections to the origin are closed after this. */
export const UPSTREAM_KEEPALIVE_MS = 60_000;

export interface UpstreamRequest {
  method: string;
  /** Request target: path and query. */
  path: string;
  headers: Record<string, string | string[]>;
  body?: Readable | Buffer | null;
  signal?: AbortSignal;
  /**
   * Called synchronously when the response headers arrive, inside undici's callback: before the
   * returned promise resolves (a chain of microtasks later) and before the body bytes that came
   * with the headers are parsed. The miss path writes the client's response head here, so the
   * first byte goes out in the same turn of the event loop that received the origin's head. Must
   * not throw (a throw is caught and kept in `hookError`).
   */
  onResponse?: (up: UpstreamResponse) => void;
}

export interface UpstreamResponse {
  status: number;
  /** End-to-end headers (hop-by-hop removed), names lower-case, duplicates kept. */
  headers: HeaderPairs;
  body: Readable;
  /** Time from sending the request to receiving the response headers. */
  headersMs: number;
  /** What `onResponse` threw, if it did. */
  hookError?: Error;
}

export class Upstream {
  #pool: Pool;
  #address: string;
  readonly #timeoutMs: number;
  readonly #maxConnections: number;

  constructor(address: string, opts: { timeoutMs: number; maxConnections: number }) {
    this.#address = address;
    this.#timeoutMs = opts.timeoutMs;
    this.#maxConnections = opts.maxConnections;
    this.#pool = this.#makePool(address);
  }

  get address(): string {
    return this.#address;
  }

  /** The Host header sent upstream. */
  get host(): string {
    return this.#address;
  }

  #makePool(address: string): Pool {
    return new Pool(`http://${address}`, {
      connections: this.#maxConnections,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: UPSTREAM_KEEPALIVE_MS,
      pipelining: 1,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      connectTimeout: Math.min(this.#timeoutMs, 10_000),
    });
  }

  /** Points new requests at another origin (SIGHUP); requests in flight finish on the old pool. */
  setAddress(address: string): void {
    if (address === this.#address) return;
    const old = this.#pool;
    this.#address = address;
    this.#pool = this.#makePool(address);
    void old.close().catch(() => undefined);
  }

  /**
   * Sends a request; resolves with the response once its headers are in. `req.onResponse`, when
   * given, sees the response synchronously in undici's headers callback, before the promise
   * resolves and before the rest of the socket read is parsed (see UpstreamRequest.onResponse).
   *
   * Dispatched with a handler of our own rather than `Pool.request`: that API wraps every request
   * in an AsyncResource and runs its callback in an async scope, work a miss pays before its
   * origin request is written and again before its first byte (about 0.1 ms of CPU when the
   * process is not already busy). The handler does what `Pool.request` does for us: headers
   * parsed the same way (`util.parseHeaders`), the body a Readable with back-pressure,
   * destroying it aborts the request, `signal` aborts it, a request body stream is destroyed
   * when the request fails.
   */
  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const handler = new ResponseHandler(req, this.#address, resolve, reject);
      if (handler.settled) return; // the signal had already fired
      try {
        this.#pool.dispatch(
          {
            method: req.method,
            path: req.path,
            headers: req.headers,
            body: req.body ?? null,
            // Never let undici replay a request: the origin must see each one exactly once.
            idempotent: false,
            // One request per connection at a time anyway (pipelining: 1).
            blocking: false,
          },
          handler,
        );
      } catch (err) {
        handler.onError(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async close(): Promise<void> {
    await this.#pool.close().catch(() => undefined);
  }

  destroy(): void {
    void this.#pool.destroy().catch(() => undefined);
  }
}

function ignoreError(): void {
  // see ResponseHandler.onHeaders
}

/** Body chunks buffered before undici is asked to pause the origin socket (as `Pool.request`). */
const BODY_HIGH_WATER_MARK_BYTES = 64 * 1024;

/** One origin request's undici handler (the dispatcher's callback interface). */
class ResponseHandler implements Dispatcher.DispatchHandler {
  readonly #req: UpstreamRequest;
  readonly #address: string;
  readonly #resolve: (up: UpstreamResponse) => void;
  readonly #reject: (err: UpstreamError) => void;
  readonly #t0 = performance.now();
  #abort: ((err?: Error) => void) | undefined;
  #body: Readable | undefined;
  #reason: Error | undefined;
  #removeAbortListener: (() => void) | undefined;
  /** undici is done with the request (complete or failed): nothing left to abort. */
  #finished = false;
  /** The promise is resolved or rejected. */
  settled = false;

  constructor(
    req: UpstreamRequest,
    address: string,
    resolve: (up: UpstreamResponse) => void,
    reject: (err: UpstreamError) => void,
  ) {
    this.#req = req;
    this.#address = address;
    this.#resolve = resolve;
    this.#reject = reject;
    const signal = req.signal;
    if (signal === undefined) return;
    if (signal.aborted) {
      this.onError(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      const reason = abortReason(signal);
      this.#reason = reason;
      if (this.#body !== undefined) this.#body.destroy(reason);
      else this.#abort?.(reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.#removeAbortListener = () => signal.removeEventListener('abort', onAbort);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#reason !== undefined) {
      abort(this.#reason);
      return;
    }
    this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the final response follows
    const abort = this.#abort;
    const body = new Readable({
      highWaterMark: BODY_HIGH_WATER_MARK_BYTES,
      read: () => resume(),
      destroy: (err, callback) => {
        // Dropping the body before its end aborts the request (the connection is not reused).
        const reason = err ?? (body.readableEnded ? null : new undiciErrors.RequestAbortedError());
        if (reason !== null && !this.#finished) abort?.(reason);
        this.#detach();
        callback(reason);
      },
    });
    // Bodies are often dropped unread (a 304, a retried slice, a client gone): destroying one
    // emits 'error', which must never be unhandled. Readers still see errors through iteration.
    body.on('error', ignoreError);
    this.#body = body;
    this.settled = true;
    const up: UpstreamResponse = {
      status: statusCode,
      headers: pairsFromRecord(undiciUtil.parseHeaders(rawHeaders)),
      body,
      headersMs: performance.now() - this.#t0,
    };
    if (this.#req.onResponse !== undefined) {
      try {
        this.#req.onResponse(up);
      } catch (hookErr) {
        // The hook must never break undici's parser; the caller still gets the response.
        up.hookError =
          hookErr instanceof Error
            ? hookErr
            : new Error('the response headers hook failed', { cause: hookErr });
      }
    }
    this.#resolve(up);
    return true;
  }

  onData(chunk: Buffer): boolean {
    // false: undici stops reading the origin socket until `read` asks for more.
    return this.#body?.push(chunk) ?? false;
  }

  onComplete(): void {
    this.#finished = true;
    this.#detach();
    this.#body?.push(null);
  }

  onError(err: Error): void {
    this.#finished = true;
    this.#detach();
    const upload = this.#req.body;
    if (upload instanceof Readable && !upload.destroyed) upload.on('error', ignoreError).destroy(err);
    if (this.#body !== undefined) {
      if (!this.#body.destroyed) this.#body.destroy(err);
      return;
    }
    if (this.settled) return;
    this.settled = true;
    const timedOut =
      err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError;
    this.#reject(
      new UpstreamError(
        `upstream ${this.#address}: ${timedOut ? 'timed out' : 'request failed'}: ${err.message}`,
        timedOut,
        {
          cause: err,
        },
      ),
    );
  }

  #detach(): void {
    this.#removeAbortListener?.();
    this.#removeAbortListener = undefined;
  }
}

function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new undiciErrors.RequestAbortedError();
}
