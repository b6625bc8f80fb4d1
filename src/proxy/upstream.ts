/**
 * The origin connection: an undici keep-alive pool to `upstream_address`. Requests are never
 * retried here (the cache-tests harness counts origin requests; slices retry at their own
 * level). Timeouts bound the wait for headers and the gap between body chunks.
 */
import type { Readable } from 'node:stream';
import { Pool, errors as undiciErrors } from 'undici';
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
   */
  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      this.#pool.request(
        {
          method: req.method,
          path: req.path,
          headers: req.headers,
          body: req.body ?? null,
          signal: req.signal ?? null,
          // Never let undici replay a request: the origin must see each one exactly once.
          idempotent: false,
          // One request per connection at a time anyway (pipelining: 1).
          blocking: false,
        },
        (err, res) => {
          if (err !== null) {
            const timedOut =
              err instanceof undiciErrors.HeadersTimeoutError ||
              err instanceof undiciErrors.ConnectTimeoutError;
            reject(
              new UpstreamError(
                `upstream ${this.#address}: ${timedOut ? 'timed out' : 'request failed'}: ${err.message}`,
                timedOut,
                { cause: err },
              ),
            );
            return;
          }
          // Bodies are often dropped unread (a 304, a retried slice, a client gone): destroying
          // one emits 'error', which must never be unhandled. Readers still see errors through
          // iteration.
          res.body.on('error', ignoreError);
          const up: UpstreamResponse = {
            status: res.statusCode,
            headers: pairsFromRecord(res.headers),
            body: res.body,
            headersMs: performance.now() - t0,
          };
          if (req.onResponse !== undefined) {
            try {
              req.onResponse(up);
            } catch (hookErr) {
              // The hook must never break undici's parser; the caller still gets the response.
              up.hookError =
                hookErr instanceof Error
                  ? hookErr
                  : new Error('the response headers hook failed', { cause: hookErr });
            }
          }
          resolve(up);
        },
      );
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
  // see request()
}
