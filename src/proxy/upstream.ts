/**
 * The origin connection: an undici keep-alive pool to `upstream_address`. Requests are never
 * retried here (the cache-tests harness counts origin requests; slices retry at their own
 * level). Timeouts bound the wait for headers and the gap between body chunks.
 */
import type { Readable } from 'node:stream';
import { Pool, errors as undiciErrors } from 'undici';
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
}

export interface UpstreamResponse {
  status: number;
  /** End-to-end headers (hop-by-hop removed), names lower-case, duplicates kept. */
  headers: HeaderPairs;
  body: Readable;
  /** Time from sending the request to receiving the response headers. */
  headersMs: number;
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

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const t0 = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#pool.request({
        method: req.method,
        path: req.path,
        headers: req.headers,
        body: req.body ?? null,
        signal: req.signal ?? null,
        // Never let undici replay a request: the origin must see each one exactly once.
        idempotent: false,
        // One request per connection at a time anyway (pipelining: 1).
        blocking: false,
      });
    } catch (err) {
      const timedOut =
        err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.ConnectTimeoutError;
      throw new UpstreamError(
        `upstream ${this.#address}: ${timedOut ? 'timed out' : 'request failed'}: ${(err as Error).message}`,
        timedOut,
        { cause: err },
      );
    }
    // Bodies are often dropped unread (a 304, a retried slice, a client gone): destroying one
    // emits 'error', which must never be unhandled. Readers still see errors through iteration.
    res.body.on('error', ignoreError);
    return {
      status: res.statusCode,
      headers: pairsFromRecord(res.headers),
      body: res.body,
      headersMs: performance.now() - t0,
    };
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
