/**
 * The request path of the caching proxy.
 *
 *   GET/HEAD  → stored response? fresh: serve it; stale-while-revalidate: serve it and refresh in
 *               the background; otherwise revalidate (conditional request; 304 refreshes the
 *               stored headers). No stored response: join the fetch in flight for this key or
 *               start one (a "flight"); the response body is streamed to every waiting client
 *               while it is written to the cache (see fill.ts).
 *   slices    → paths matching `slice_patterns` are assembled from cached Range slices.
 *   PURGE     → drops a URL with its variants and slices (bearer token).
 *   others    → passed through (body streamed both ways); a non-error answer invalidates the URL.
 *
 * Cache failures never reach the client (tiered.ts); origin failures become 502/504, or a stale
 * response where stale-if-error allows.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type CachePolicy from 'http-cache-semantics';
import CachePolicyClass from 'http-cache-semantics';
import type { Logger } from '../common/logging.js';
import { familyOf, parseVary, primaryKey, variantKey } from './cache-key.js';
import { CorruptEntryError, UpstreamError } from './errors.js';
import { parseContentRange } from './http/range.js';
import { Fill } from './fill.js';
import { evaluatePreconditions, notModifiedHeaders } from './http/conditional.js';
import { HOP_BY_HOP, flatten, getHeader, isCompressible, requestRecord } from './http/headers.js';
import {
  noBody,
  planResponse,
  pump,
  sendFromSource,
  sendPlannedBody,
  sendText,
  writePlannedHead,
} from './http/respond.js';
import type { BodySource, ResponsePlan } from './http/respond.js';
import type { ProxyMetrics } from './metrics.js';
import {
  SURROGATE_CAPABILITY,
  ageHeader,
  clientHeaders,
  effectiveDirectives,
  evaluateReuse,
  makePolicy,
  responseDirectives,
  mergeNotModified,
  notModifiedMatches,
  parseCacheControl,
  staleIfErrorAllows,
  storeVerdict,
  validatorHeaders,
} from './policy.js';
import type { PolicySettings, RequestLike } from './policy.js';
import { SliceAssembler } from './slices.js';
import { readBuffers } from './store/buffer-pool.js';
import type { EntryMeta, HeaderPairs, StoreHit, StoreWriter } from './store/types.js';
import type { TieredCache, TieredHit } from './tiered.js';
import type { Upstream, UpstreamResponse } from './upstream.js';

/** After a response that may not be shared, requests for its key skip coalescing this long. */
export const HIT_FOR_PASS_MS = 5_000;
/** Bound of the hit-for-pass table. */
export const HIT_FOR_PASS_MAX_ENTRIES = 10_000;
export const CACHE_STATUS_HEADER = 'x-strata-cache';
/** A waiting request that may not share a fill waits for it to be stored only up to this size. */
export const WAIT_FOR_FILL_MAX_BYTES = 1024 * 1024;
/** A disk hit's first bytes are checked before the response starts (damage there costs nothing). */
export const PREVERIFY_BYTES = 256 * 1024;
/**
 * A miss whose body may be larger than this sends its response head to the client the moment
 * the origin's headers arrive, before the cache decision, the cache writer and the first body
 * chunk (an extra packet, worth it only when the body is not about to follow at once).
 */
export const EARLY_HEAD_MIN_BYTES = 64 * 1024;
const VIA = '1.1 strata';

/** Settings a SIGHUP may change; read per request. */
export interface LiveSettings extends PolicySettings {
  enableCache: boolean;
  slicePatterns: RegExp[];
  sliceSizeBytes: number;
  maxConcurrentSubrequests: number;
  maxRetries: number;
  purgeEnabled: boolean;
  purgeToken: string | undefined;
}

export interface HandlerDeps {
  cache: TieredCache;
  upstream: Upstream;
  metrics: ProxyMetrics;
  log: Logger;
  settings: () => LiveSettings;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  target: string;
  primary: string;
  reqHeaders: Record<string, string>;
  started: number;
  cache: string;
  headSent: boolean;
  /** The response head already written for a miss (see EARLY_HEAD_MIN_BYTES); the body follows it. */
  sentPlan?: ResponsePlan;
}

type FlightResult =
  | {
      kind: 'fill';
      fill: Fill;
      /** Storable and not marked for revalidation on every use. */
      shareable: boolean;
      /** Being stored (possibly only to be revalidated before every use). */
      storable: boolean;
      /** The response as it would be stored, for joiners to judge its freshness for themselves. */
      meta: EntryMeta;
      storageKey: string;
      varyNames: string[];
    }
  | { kind: 'refreshed'; meta: EntryMeta }
  | { kind: 'stale' }
  | { kind: 'error'; error: unknown };

interface Flight {
  key: string;
  result: Promise<FlightResult>;
  fill: Fill | undefined;
  /** The request that started the flight: it may use a response no one else may share. */
  initiator: Ctx;
  /** Keys it is registered under (the lookup key, and the variant key once known). */
  keys: string[];
}

export class ProxyHandler {
  readonly #deps: HandlerDeps;
  readonly #flights = new Map<string, Flight>();
  readonly #hitForPass = new Map<string, number>();
  readonly #slices: SliceAssembler;
  readonly #prepared = new WeakMap<EntryMeta, Prepared>();
  #active = 0;
  #idle: (() => void)[] = [];
  #draining = false;

  constructor(deps: HandlerDeps) {
    this.#deps = deps;
    this.#slices = new SliceAssembler(deps, this);
  }

  get activeRequests(): number {
    return this.#active;
  }

  get flightCount(): number {
    return this.#flights.size;
  }

  /** From now on responses ask clients to close their connections. */
  startDraining(): void {
    this.#draining = true;
  }

  /** Resolves when no request is being answered. */
  idle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const s = this.#deps.settings();
    const plain = plainTarget(req, s);
    if (plain !== undefined && this.#fastHit(req, res, plain)) return;
    const target = req.url ?? '/';
    const ctx: Ctx = {
      req,
      res,
      method: (req.method ?? 'GET').toUpperCase(),
      target,
      primary: primaryKey(target),
      reqHeaders: requestRecord(req.headers),
      started: performance.now(),
      cache: 'PASS',
      headSent: false,
    };
    this.#active++;
    this.#deps.metrics.inflight.inc();
    if (this.#draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      this.#active--;
      const m = this.#deps.metrics;
      m.inflight.dec();
      m.request(ctx.method, res.statusCode, ctx.cache, (performance.now() - ctx.started) / 1000);
      if (this.#deps.log.isLevelEnabled('debug'))
        this.#deps.log.debug(
          {
            method: ctx.method,
            target: ctx.target,
            status: res.statusCode,
            cache: ctx.cache,
            range: ctx.reqHeaders.range,
          },
          'request',
        );
      if (this.#active === 0) for (const r of this.#idle.splice(0)) r();
    });
    if (plain !== undefined && ctx.method === 'GET' && this.#plainMiss(ctx, s)) return;
    this.#route(ctx).catch((err: unknown) => this.#fail(ctx, err));
  }

  /**
   * A plain GET for a key no tier holds, known without I/O (L1, the L2's index): the flight is
   * joined or started at once, so the origin request is dispatched before `handle` returns
   * rather than after the asynchronous lookup and routing. It decides exactly as #cached does
   * for such a request (a plain request has no directives, range or preconditions); anything
   * else, a remembered hit-for-pass included, takes the general path.
   */
  #plainMiss(ctx: Ctx, s: LiveSettings): boolean {
    const key = ctx.primary;
    if (this.#hitForPass.has(key) || !this.#deps.cache.knownAbsent(key)) return false;
    this.#deps.metrics.miss();
    this.#viaFlight(ctx, key, s, undefined, 0).catch((err: unknown) => this.#fail(ctx, err));
    return true;
  }

  /**
   * The hot path: a plain request (see plainTarget) for a fresh single-buffer entry in L1 is
   * answered synchronously from headers prepared once per entry. Anything else takes the
   * general path, which decides the same way.
   */
  #fastHit(req: IncomingMessage, res: ServerResponse, target: string): boolean {
    const method = req.method === 'HEAD' ? 'HEAD' : 'GET'; // plainTarget admits only these
    const e = this.#deps.cache.l1.peek(target);
    if (e === undefined || e.meta.vary !== undefined || e.chunks.length > 1) return false;
    const prep = this.#prepare(e.meta);
    const now = Date.now();
    if (prep === undefined || now >= prep.freshUntilMs) return false;
    const started = performance.now();
    const m = this.#deps.metrics;
    m.hit('l1');
    this.#active++;
    if (this.#draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      this.#active--;
      m.request(method, res.statusCode, 'HIT', (performance.now() - started) / 1000);
      if (this.#active === 0) for (const r of this.#idle.splice(0)) r();
    });
    const age = Math.max(0, Math.floor(prep.ageAtPrepareS + (now - prep.preparedAtMs) / 1000));
    const headers = prep.flat.slice();
    headers.push('age', String(age), CACHE_STATUS_HEADER, 'HIT');
    const body = e.chunks[0];
    const bodyLess = noBody(e.meta.status);
    if (!bodyLess) headers.push('content-length', String(e.bodyBytes));
    res.writeHead(e.meta.status, headers);
    m.ttfb('HIT', (performance.now() - started) / 1000);
    if (method === 'HEAD' || bodyLess || body === undefined) res.end();
    else res.end(body);
    return true;
  }

  /** Per-entry values the hot path needs, computed once (entries are replaced, never mutated). */
  #prepare(meta: EntryMeta): Prepared | undefined {
    const cached = this.#prepared.get(meta);
    if (cached !== undefined) return cached;
    let policy: CachePolicy;
    try {
      policy = CachePolicyClass.fromObject(meta.policy);
    } catch {
      return undefined;
    }
    const rescc = responseDirectives(meta);
    const now = Date.now();
    const age = policy.age();
    // `no-cache` (unqualified) means "validate every time": never the hot path.
    const lifetime = rescc['no-cache'] === true ? 0 : policy.maxAge();
    const flat: string[] = [];
    for (const [k, v] of clientHeaders(meta.headers))
      if (k !== 'age' && k !== 'content-length') flat.push(k, v);
    const prep: Prepared = {
      flat,
      freshUntilMs: now + (lifetime - age) * 1000,
      ageAtPrepareS: age,
      preparedAtMs: now,
    };
    this.#prepared.set(meta, prep);
    return prep;
  }

  /** Records TTFB; called right before the status line goes out. */
  markHead(ctx: Ctx): void {
    if (ctx.headSent) return;
    ctx.headSent = true;
    this.#deps.metrics.ttfb(ctx.cache, (performance.now() - ctx.started) / 1000);
  }

  #fail(ctx: Ctx, err: unknown): void {
    const { res } = ctx;
    if (res.headersSent || res.destroyed) {
      this.#deps.log.debug({ err, target: ctx.target }, 'response aborted after headers');
      res.destroy();
      return;
    }
    if (err instanceof UpstreamError) {
      this.#deps.log.warn({ err: err.message, target: ctx.target }, 'origin request failed');
      this.markHead(ctx);
      sendText(
        res,
        err.timedOut ? 504 : 502,
        `${err.timedOut ? 'origin timed out' : 'origin unreachable'}\n`,
        [[CACHE_STATUS_HEADER, ctx.cache]],
      );
      return;
    }
    this.#deps.log.error({ err, target: ctx.target }, 'request failed');
    this.markHead(ctx);
    sendText(res, 500, 'internal error\n');
  }

  async #route(ctx: Ctx): Promise<void> {
    const s = this.#deps.settings();
    if (!ctx.target.startsWith('/')) {
      this.markHead(ctx);
      sendText(ctx.res, 400, 'request target must be an absolute path\n');
      return;
    }
    if (ctx.method === 'PURGE') return this.#purge(ctx, s);
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.#unsafe(ctx);
    if (!s.enableCache) return this.pass(ctx, 'pass');
    const path = ctx.target.split('?')[0] ?? ctx.target;
    if (s.slicePatterns.length > 0 && s.slicePatterns.some((re) => re.test(path)))
      return this.#slices.serve(ctx, s);
    return this.#cached(ctx, s);
  }

  // ---- the cached path -------------------------------------------------------------------

  /** Finds the stored response for a request, following a Vary marker to the right variant. */
  async lookup(
    primary: string,
    reqHeaders: Record<string, string>,
  ): Promise<{ found: TieredHit | undefined; key: string }> {
    const first = await this.#deps.cache.get(primary);
    if (first === undefined) return { found: undefined, key: primary };
    const vary = first.hit.meta.vary;
    if (vary === undefined) return { found: first, key: primary };
    first.hit.release();
    const key = variantKey(primary, vary, (n) => reqHeaders[n]);
    return { found: await this.#deps.cache.get(key), key };
  }

  policyLike(ctx: Ctx): RequestLike {
    // The key, not the client's Host, identifies the resource: every request goes to one origin.
    return {
      url: ctx.primary,
      method: 'GET',
      headers: { ...ctx.reqHeaders, host: this.#deps.upstream.host },
    };
  }

  async #cached(ctx: Ctx, s: LiveSettings, attempt = 0): Promise<void> {
    const { found, key } = await this.lookup(ctx.primary, ctx.reqHeaders);
    const reqcc = parseCacheControl(ctx.reqHeaders['cache-control']);
    if (found !== undefined) {
      const { hit, tier } = found;
      let policy: CachePolicy;
      try {
        policy = CachePolicyClass.fromObject(hit.meta.policy);
      } catch {
        hit.release();
        await this.#deps.cache.delete(key);
        if (attempt < 2) return this.#cached(ctx, s, attempt + 1);
        return this.pass(ctx, 'pass');
      }
      const reuse = evaluateReuse(hit.meta, policy, ctx.reqHeaders);
      if (reuse.kind === 'fresh' || reuse.kind === 'stale-while-revalidate') {
        this.#deps.metrics.hit(tier);
        ctx.cache = reuse.kind === 'fresh' ? 'HIT' : 'STALE';
        if (await this.serveStored(ctx, found, policy, hit.meta)) {
          if (reuse.kind === 'stale-while-revalidate') this.#backgroundRevalidate(ctx, key, hit.meta);
          return;
        }
        // The stored copy is damaged (and now dropped): answer from the origin instead.
        if (attempt < 2) return this.#cached(ctx, s, attempt + 1);
        return this.pass(ctx, 'pass');
      }
      if (reqcc['only-if-cached'] !== undefined) {
        hit.release();
        return this.#gatewayTimeout(ctx);
      }
      if (ctx.method === 'HEAD') {
        hit.release();
        return this.#headRevalidate(ctx, key);
      }
      // Revalidate: the stored entry stays usable for stale-if-error and a 304.
      hit.release();
      this.#deps.metrics.miss();
      return this.#viaFlight(ctx, key, s, hit.meta, attempt);
    }
    if (reqcc['only-if-cached'] !== undefined) return this.#gatewayTimeout(ctx);
    if (ctx.method === 'HEAD' || ctx.reqHeaders.range !== undefined || reqcc['no-store'] !== undefined) {
      // Never the start of a fill (a range or HEAD is not the whole object), but a fill already
      // under way answers it: ranges are served from it as its bytes arrive.
      const running = this.#flights.get(key);
      if (
        running !== undefined &&
        reqcc['no-store'] === undefined &&
        ctx.reqHeaders.authorization === undefined
      ) {
        this.#deps.metrics.miss();
        return this.#viaFlight(ctx, key, s, undefined, attempt);
      }
      return this.pass(ctx, 'pass');
    }
    const passUntil = this.#hitForPass.get(key);
    if (passUntil !== undefined) {
      if (passUntil > Date.now()) return this.pass(ctx, 'pass');
      this.#hitForPass.delete(key);
    }
    this.#deps.metrics.miss();
    return this.#viaFlight(ctx, key, s, undefined, attempt);
  }

  #gatewayTimeout(ctx: Ctx): void {
    ctx.cache = 'MISS';
    this.markHead(ctx);
    sendText(ctx.res, 504, 'not in cache (only-if-cached)\n', [[CACHE_STATUS_HEADER, 'MISS']]);
  }

  /** Joins the flight for `key`, starting it if there is none. */
  async #viaFlight(
    ctx: Ctx,
    key: string,
    s: LiveSettings,
    stored: EntryMeta | undefined,
    attempt: number,
  ): Promise<void> {
    const alone = ctx.reqHeaders.authorization !== undefined;
    let flight = alone ? undefined : this.#flights.get(key);
    if (flight !== undefined) this.#deps.metrics.coalesced.inc();
    else flight = this.#startFlight(ctx, key, s, stored, !alone);
    const r = await flight.result;
    ctx.cache = stored === undefined ? 'MISS' : 'REVALIDATED';
    switch (r.kind) {
      case 'fill': {
        if (flight.initiator === ctx) return this.#serveFill(ctx, r.fill);
        const sameVariant =
          r.varyNames.length === 0 ||
          variantKey(ctx.primary, r.varyNames, (n) => ctx.reqHeaders[n]) === r.storageKey;
        const fresh =
          r.shareable &&
          evaluateReuse(r.meta, CachePolicyClass.fromObject(r.meta.policy), ctx.reqHeaders).kind === 'fresh';
        if (sameVariant && r.storable && !fresh && r.fill.storing && attempt < 2 && smallEnough(r.fill)) {
          // Stored but to be revalidated before each use (no-cache, max-age=0, or this request's
          // own limits): wait until it is stored, then revalidate it like any stored response.
          await r.fill.settled;
          return this.#cached(ctx, s, attempt + 1);
        }
        if (!fresh || !sameVariant) return this.pass(ctx, 'pass'); // not for us: our own request
        if (r.fill.joinable) return this.#serveFill(ctx, r.fill);
        // Finished and released since: it is in the cache now (or failed); look again.
        if (attempt < 2) return this.#cached(ctx, s, attempt + 1);
        return this.pass(ctx, 'pass');
      }
      case 'refreshed':
      case 'stale': {
        const again = await this.#deps.cache.get(r.kind === 'refreshed' ? r.meta.key : key);
        if (again === undefined) return this.pass(ctx, 'pass');
        ctx.cache = r.kind === 'refreshed' ? 'REVALIDATED' : 'STALE-IF-ERROR';
        const meta = r.kind === 'refreshed' ? r.meta : again.hit.meta;
        if (await this.serveStored(ctx, again, CachePolicyClass.fromObject(meta.policy), meta)) return;
        return this.pass(ctx, 'pass');
      }
      case 'error':
        throw r.error;
    }
  }

  #startFlight(
    ctx: Ctx,
    key: string,
    s: LiveSettings,
    stored: EntryMeta | undefined,
    register: boolean,
  ): Flight {
    const flight: Flight = {
      key,
      result: Promise.resolve({ kind: 'stale' }),
      fill: undefined,
      initiator: ctx,
      keys: [key],
    };
    const unregister = (): void => {
      for (const k of flight.keys) if (this.#flights.get(k) === flight) this.#flights.delete(k);
    };
    flight.result = this.#fly(ctx, key, s, stored, flight, unregister).then(
      (r) => {
        if (r.kind !== 'fill' || !r.storable) unregister();
        return r;
      },
      (err: unknown) => {
        unregister();
        return { kind: 'error', error: err };
      },
    );
    if (register) this.#flights.set(key, flight);
    return flight;
  }

  async #fly(
    ctx: Ctx,
    key: string,
    s: LiveSettings,
    stored: EntryMeta | undefined,
    flight: Flight,
    unregister: () => void,
  ): Promise<FlightResult> {
    const kind = stored === undefined ? 'fill' : 'revalidate';
    const headers = this.upstreamHeaders(ctx, true);
    if (stored !== undefined) Object.assign(headers, validatorHeaders(stored));
    let up: UpstreamResponse;
    const m = this.#deps.metrics;
    m.upstreamRequests.inc({ kind });
    // The initiator of a fill gets its response head from inside the origin's headers callback.
    const early = stored === undefined && flight.initiator === ctx;
    try {
      up = await this.#deps.upstream.request({
        method: 'GET',
        path: ctx.target,
        headers,
        ...(early ? { onResponse: (r: UpstreamResponse) => this.#sendHeadEarly(ctx, r) } : {}),
      });
    } catch (err) {
      m.upstreamErrors.inc({ kind });
      if (
        stored !== undefined &&
        staleIfErrorAllows(stored, CachePolicyClass.fromObject(stored.policy), ctx.reqHeaders)
      )
        return { kind: 'stale' };
      return { kind: 'error', error: err };
    }
    m.upstreamSeconds.observe({ kind }, up.headersMs / 1000);
    if (up.hookError !== undefined) {
      // Writing the early head failed: the flight fails as it did when the head was written
      // here, and the origin body is dropped so its connection goes back to the pool.
      up.body.destroy();
      throw up.hookError;
    }
    const reqLike = this.policyLike(ctx);
    if (stored !== undefined) {
      const storedPolicy = CachePolicyClass.fromObject(stored.policy);
      if (up.status === 304 && notModifiedMatches(stored, up.headers)) {
        up.body.resume();
        const headers304 = mergeNotModified(stored.headers, up.headers);
        const policy = makePolicy(reqLike, stored.status, headers304, s);
        const meta: EntryMeta = {
          ...stored,
          headers: headers304,
          policy: policy.toObject(),
          storedAtMs: Date.now(),
        };
        await this.#deps.cache.updateMeta(meta);
        return { kind: 'refreshed', meta };
      }
      if (up.status >= 500 && staleIfErrorAllows(stored, storedPolicy, ctx.reqHeaders)) {
        up.body.destroy();
        return { kind: 'stale' };
      }
      if (up.status === 304) {
        // The origin says our validator still matches but names another one: the stored body is
        // still the right one, its headers are left as they were (RFC 9111 §4.3.4).
        up.body.resume();
        return { kind: 'refreshed', meta: stored };
      }
    }
    const policy = makePolicy(reqLike, up.status, up.headers, s);
    const verdict =
      up.status === 206
        ? { store: false as const, reason: 'partial content' }
        : storeVerdict(policy, up.status, up.headers, s);
    const varyNames = parseVary(getHeader(up.headers, 'vary'));
    const storageKey =
      varyNames.length > 0 ? variantKey(ctx.primary, varyNames, (n) => ctx.reqHeaders[n]) : ctx.primary;
    const rescc = effectiveDirectives(up.headers);
    // A response the origin wants revalidated on every use may still be stored, but not handed to
    // other waiting clients as if it had been validated for them.
    const shareable = verdict.store && rescc['no-cache'] === undefined && policy.maxAge() > 0;
    let sink: Promise<StoreWriter | undefined> | undefined;
    const meta: EntryMeta = {
      key: storageKey,
      status: up.status,
      headers: up.headers,
      policy: policy.toObject(),
      storedAtMs: Date.now(),
    };
    if (verdict.store) {
      const contentLength = contentLengthOf(up.headers);
      const opts = { expectedBytes: contentLength, compressible: isCompressible(up.headers) };
      const open = (): Promise<StoreWriter | undefined> => this.#deps.cache.put(meta, opts);
      // When the head has not gone out early (a small body: head and body leave together once
      // the fill has its first chunk), the writer is opened in the check phase, after this
      // turn's response writes: opening an L2 writer hashes, reserves space and wakes a
      // thread-pool thread, which must not run before the client's bytes on a host with few
      // CPUs. The fill writes nothing to the sink before it is open, and an invalidation
      // meanwhile reaches the body through the fill.
      sink =
        ctx.sentPlan === undefined
          ? new Promise<void>((resolve) => setImmediate(resolve)).then(open)
          : open();
      if (varyNames.length > 0) {
        const marker: EntryMeta = { ...meta, key: ctx.primary, vary: varyNames };
        void this.#deps.cache.putMarker(marker).catch(() => undefined);
      } else if (storageKey !== key) {
        void this.#deps.cache.delete(key);
      }
    } else {
      this.#rememberPass(key);
      if (stored !== undefined) void this.#deps.cache.delete(stored.key);
      this.#deps.log.debug({ target: ctx.target, reason: verdict.reason }, 'response not stored');
    }
    const fill = new Fill({
      key: storageKey,
      status: up.status,
      headers: up.headers,
      contentLength: contentLengthOf(up.headers),
      body: up.body,
      sink,
      onSettled: (outcome, err) => {
        unregister();
        if (outcome === 'failed' && err !== undefined)
          this.#deps.log.debug({ err, target: ctx.target }, 'fill ended early');
        else this.#deps.log.debug({ target: ctx.target, key: storageKey, outcome }, 'fill settled');
      },
      onSinkError: () => this.#deps.metrics.cacheErrors.inc({ store: 'tier', op: 'fill' }),
    });
    flight.fill = fill;
    if (storageKey !== key && verdict.store && !this.#flights.has(storageKey)) {
      // Requests that find the Vary marker look the flight up by their variant's key.
      this.#flights.set(storageKey, flight);
      flight.keys.push(storageKey);
    }
    return { kind: 'fill', fill, shareable, storable: verdict.store, meta, storageKey, varyNames };
  }

  /**
   * The first byte of a miss must not wait for the cache: the initiator of a fill gets its
   * response head as soon as the origin's headers are in, unless the body is known to be small
   * (then head and body leave together a moment later). The head is exactly what #serveFill
   * would send: it depends only on the origin's status and headers and the client's request.
   */
  #sendHeadEarly(ctx: Ctx, up: UpstreamResponse): void {
    if (ctx.method !== 'GET' || ctx.res.headersSent || ctx.res.destroyed) return;
    const length = contentLengthOf(up.headers);
    if (length !== undefined && length <= EARLY_HEAD_MIN_BYTES) return;
    const headers: HeaderPairs = [...clientHeaders(up.headers), [CACHE_STATUS_HEADER, 'MISS']];
    if (evaluatePreconditions(ctx.reqHeaders, up.status, up.headers) !== 'proceed') return;
    const plan = planResponse(up.status, headers, length, {
      method: ctx.method,
      ranges: length !== undefined,
      reqHeaders: ctx.reqHeaders,
    });
    ctx.cache = 'MISS';
    ctx.sentPlan = plan;
    this.markHead(ctx);
    writePlannedHead(ctx.res, plan);
    ctx.res.flushHeaders();
  }

  #rememberPass(key: string): void {
    if (this.#hitForPass.size >= HIT_FOR_PASS_MAX_ENTRIES) {
      const oldest = this.#hitForPass.keys().next();
      if (oldest.done !== true) this.#hitForPass.delete(oldest.value);
    }
    this.#hitForPass.set(key, Date.now() + HIT_FOR_PASS_MS);
  }

  /** stale-while-revalidate: refresh in the background unless a refresh is already running. */
  #backgroundRevalidate(ctx: Ctx, key: string, stored: EntryMeta): void {
    if (this.#flights.has(key)) return;
    const flight = this.#startFlight(ctx, key, this.#deps.settings(), stored, true);
    void flight.result.then((r) => {
      // Nobody reads this body: it runs into the cache, or stops if it is not being stored.
      if (r.kind === 'fill') r.fill.detach();
    });
  }

  // ---- serving ---------------------------------------------------------------------------

  /** Serves a stored entry (client preconditions, ranges, HEAD); releases the hit. */
  /**
   * Serves a stored entry (client preconditions, ranges, HEAD); releases the hit. Returns false,
   * having sent nothing, when a disk copy turns out damaged before the first byte went out;
   * damage found later is patched over with a ranged request to the origin.
   */
  async serveStored(ctx: Ctx, found: TieredHit, policy: CachePolicy, meta: EntryMeta): Promise<boolean> {
    const hit = found.hit;
    try {
      if (found.tier === 'l2' && ctx.method !== 'HEAD' && hit.bodyBytes > 0) {
        try {
          // Reading verifies the checksums of the first frames; the bytes themselves are not kept.
          for await (const c of hit.read(0, Math.min(hit.bodyBytes, PREVERIFY_BYTES))) readBuffers.recycle(c);
        } catch (err) {
          if (!(err instanceof CorruptEntryError)) throw err;
          this.#deps.metrics.cacheErrors.inc({ store: 'l2', op: 'verify' });
          this.#deps.log.warn(
            { key: meta.key, err: err.message },
            'damaged cache entry dropped; serving from the origin',
          );
          await this.#deps.cache.delete(meta.key);
          return false;
        }
      }
      const headers: HeaderPairs = clientHeaders(meta.headers).filter(([k]) => k !== 'age');
      headers.push(['age', ageHeader(policy)], [CACHE_STATUS_HEADER, ctx.cache]);
      const pre = evaluatePreconditions(ctx.reqHeaders, meta.status, meta.headers);
      if (pre !== 'proceed') {
        this.markHead(ctx);
        if (pre === 'not-modified') {
          ctx.res.writeHead(304, flatten(notModifiedHeaders(headers)));
          ctx.res.end();
        } else sendText(ctx.res, 412, 'precondition failed\n');
        return true;
      }
      const source: BodySource = {
        length: hit.bodyBytes,
        // Memory hits cannot be damaged on disk: only disk hits need the repairing reader.
        read: (a, b) =>
          found.tier === 'l1'
            ? hit.read(a, b ?? hit.bodyBytes)
            : this.resilientRead(ctx, meta, hit, a, b ?? hit.bodyBytes, 0),
      };
      this.markHead(ctx);
      await sendFromSource(ctx.res, meta.status, headers, source, {
        method: ctx.method,
        ranges: true,
        reqHeaders: ctx.reqHeaders,
      });
      return true;
    } finally {
      hit.release();
    }
  }

  /**
   * Reads [start, end) of a stored body; if the copy turns out damaged part-way, the rest comes
   * from the origin as a Range request guarded by If-Range (the stored validator), so the client
   * still gets the right bytes. `offset` is where the entry starts in the object (slices).
   */
  resilientRead(
    ctx: Ctx,
    meta: EntryMeta,
    hit: StoreHit,
    start: number,
    end: number,
    offset: number,
  ): AsyncIterable<Buffer> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return (async function* () {
      let pos = start;
      try {
        for await (const c of hit.read(start, end)) {
          pos += c.length;
          yield c;
        }
        return;
      } catch (err) {
        if (!(err instanceof CorruptEntryError)) throw err;
        self.#deps.metrics.cacheErrors.inc({ store: 'l2', op: 'read' });
        self.#deps.log.warn(
          { key: meta.key, at: pos, err: err.message },
          'damaged cache entry: fetching the rest from the origin',
        );
      }
      const etag = getHeader(meta.headers, 'etag');
      const validator =
        etag !== undefined && !etag.startsWith('W/') ? etag : getHeader(meta.headers, 'last-modified');
      if (validator === undefined)
        throw new CorruptEntryError(meta.key, 'damaged and no validator to resume from the origin');
      const first = offset + pos;
      const last = offset + end - 1;
      const headers = self.upstreamHeaders(ctx, true);
      headers.range = `bytes=${first}-${last}`;
      headers['if-range'] = validator;
      self.#deps.metrics.upstreamRequests.inc({ kind: 'repair' });
      const up = await self.#deps.upstream.request({ method: 'GET', path: ctx.target, headers });
      const cr = parseContentRange(getHeader(up.headers, 'content-range'));
      if (up.status !== 206 || cr === undefined || cr.first !== first || cr.last !== last) {
        up.body.destroy();
        throw new CorruptEntryError(
          meta.key,
          'damaged, and the origin could not supply the rest of this version',
        );
      }
      for await (const c of up.body) yield c as Buffer;
    })();
  }

  async #serveFill(ctx: Ctx, fill: Fill): Promise<void> {
    if (ctx.sentPlan !== undefined) {
      // The head went out when the origin's headers arrived: only the body is left.
      await sendPlannedBody(ctx.res, ctx.sentPlan, {
        length: fill.contentLength,
        read: (a, b) => fill.read(a, b),
      });
      return;
    }
    const headers: HeaderPairs = [...clientHeaders(fill.headers), [CACHE_STATUS_HEADER, ctx.cache]];
    const pre = evaluatePreconditions(ctx.reqHeaders, fill.status, fill.headers);
    if (pre !== 'proceed') {
      this.markHead(ctx);
      if (pre === 'not-modified') {
        ctx.res.writeHead(304, flatten(notModifiedHeaders(headers)));
        ctx.res.end();
      } else sendText(ctx.res, 412, 'precondition failed\n');
      return;
    }
    const source: BodySource = { length: fill.contentLength, read: (a, b) => fill.read(a, b) };
    this.markHead(ctx);
    await sendFromSource(ctx.res, fill.status, headers, source, {
      method: ctx.method,
      ranges: fill.contentLength !== undefined,
      reqHeaders: ctx.reqHeaders,
    });
  }

  // ---- pass-through ----------------------------------------------------------------------

  /** Request headers for the origin: hop-by-hop removed, Host set, X-Forwarded-* and Via added. */
  upstreamHeaders(ctx: Ctx, forCache: boolean): Record<string, string | string[]> {
    const raw = ctx.req.rawHeaders;
    const out: Record<string, string | string[]> = {};
    const listed = new Set<string>();
    for (const v of (ctx.reqHeaders.connection ?? '').split(','))
      if (v.trim() !== '') listed.add(v.trim().toLowerCase());
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = (raw[i] as string).toLowerCase();
      if (HOP_BY_HOP.has(name) || listed.has(name) || name === 'host') continue;
      if (forCache && CONDITIONAL_OR_RANGE.has(name)) continue;
      const v = raw[i + 1] as string;
      const prev = out[name];
      out[name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
    out.host = this.#deps.upstream.host;
    const client = ctx.req.socket.remoteAddress;
    const xff = ctx.reqHeaders['x-forwarded-for'];
    if (client !== undefined) out['x-forwarded-for'] = xff === undefined ? client : `${xff}, ${client}`;
    if (ctx.reqHeaders.host !== undefined && out['x-forwarded-host'] === undefined)
      out['x-forwarded-host'] = ctx.reqHeaders.host;
    if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = 'http';
    out.via = ctx.reqHeaders.via === undefined ? VIA : `${ctx.reqHeaders.via}, ${VIA}`;
    const cap = ctx.reqHeaders['surrogate-capability'];
    out['surrogate-capability'] =
      cap === undefined ? SURROGATE_CAPABILITY : `${cap}, ${SURROGATE_CAPABILITY}`;
    return out;
  }

  /**
   * Forwards the request as is and streams the answer back. `onHeaders` runs before anything is
   * written to the client (invalidation must happen before the client can ask again).
   */
  async pass(ctx: Ctx, kind: string, onHeaders?: (up: UpstreamResponse) => Promise<void>): Promise<void> {
    ctx.cache = 'PASS';
    const m = this.#deps.metrics;
    const hasBody = ctx.method !== 'GET' && ctx.method !== 'HEAD';
    m.upstreamRequests.inc({ kind });
    let up: UpstreamResponse;
    const abort = new AbortController();
    const onClientGone = (): void => {
      if (!ctx.res.writableFinished) abort.abort();
    };
    ctx.res.once('close', onClientGone);
    try {
      up = await this.#deps.upstream.request({
        method: ctx.method,
        path: ctx.target,
        headers: this.upstreamHeaders(ctx, false),
        body: hasBody ? ctx.req : null,
        signal: abort.signal,
      });
    } catch (err) {
      m.upstreamErrors.inc({ kind });
      if (abort.signal.aborted) return;
      throw err;
    }
    m.upstreamSeconds.observe({ kind }, up.headersMs / 1000);
    try {
      if (onHeaders !== undefined) await onHeaders(up);
      const headers: HeaderPairs = [...up.headers, [CACHE_STATUS_HEADER, 'PASS']];
      this.markHead(ctx);
      ctx.res.writeHead(up.status, flatten(headers));
      if (ctx.method === 'HEAD' || noBody(up.status)) {
        up.body.resume();
        ctx.res.end();
        return;
      }
      if (await pump(ctx.res, up.body)) ctx.res.end();
      else up.body.destroy();
    } catch (err) {
      up.body.destroy();
      throw err;
    } finally {
      ctx.res.off('close', onClientGone);
    }
  }

  /** HEAD on a stale entry: forward it, and let its answer update or invalidate the entry (RFC 9111 §4.3.5). */
  async #headRevalidate(ctx: Ctx, key: string): Promise<void> {
    return this.pass(ctx, 'pass', async (up) => {
      if (up.status !== 200) return;
      const found = await this.#deps.cache.get(key);
      if (found === undefined) return;
      const meta = found.hit.meta;
      found.hit.release();
      const etagOld = getHeader(meta.headers, 'etag');
      const etagNew = getHeader(up.headers, 'etag');
      const lmOld = getHeader(meta.headers, 'last-modified');
      const lmNew = getHeader(up.headers, 'last-modified');
      const same =
        etagNew !== undefined
          ? etagOld === etagNew
          : lmNew !== undefined
            ? lmOld === lmNew
            : etagOld === undefined && lmOld === undefined;
      if (!same) {
        await this.#deps.cache.delete(key);
        return;
      }
      const headers = mergeNotModified(meta.headers, up.headers);
      const policy = makePolicy(this.policyLike(ctx), meta.status, headers, this.#deps.settings());
      await this.#deps.cache.updateMeta({
        ...meta,
        headers,
        policy: policy.toObject(),
        storedAtMs: Date.now(),
      });
    });
  }

  /** Unsafe methods: pass through; a non-error answer invalidates the URL (RFC 9111 §4.4). */
  async #unsafe(ctx: Ctx): Promise<void> {
    return this.pass(ctx, 'pass', async (up) => {
      if (up.status >= 400) return;
      const targets = new Set<string>([ctx.primary]);
      for (const name of ['location', 'content-location']) {
        const v = getHeader(up.headers, name);
        const local = v === undefined ? undefined : this.#sameOriginTarget(ctx, v);
        if (local !== undefined) targets.add(primaryKey(local));
      }
      for (const t of targets) await this.invalidate(t);
    });
  }

  /** The request target of a Location-style URL if it points at this proxy or its origin. */
  #sameOriginTarget(ctx: Ctx, value: string): string | undefined {
    try {
      const base = `http://${ctx.reqHeaders.host ?? 'localhost'}`;
      const u = new URL(value, `${base}${ctx.target}`);
      const b = new URL(base);
      if (u.host !== b.host && u.host !== this.#deps.upstream.host) return undefined;
      return `${u.pathname}${u.search}`;
    } catch {
      return undefined;
    }
  }

  /** Drops everything stored for a primary key and stops in-flight fills from committing. */
  async invalidate(primary: string): Promise<number> {
    // Fills in flight for this URL must neither be committed nor joined by later requests.
    for (const [k, f] of [...this.#flights]) {
      if (familyOf(k) !== primary) continue;
      f.fill?.invalidate();
      this.#flights.delete(k);
    }
    for (const k of [...this.#hitForPass.keys()]) if (familyOf(k) === primary) this.#hitForPass.delete(k);
    return this.#deps.cache.deleteFamily(primary);
  }

  // ---- PURGE -----------------------------------------------------------------------------

  async #purge(ctx: Ctx, s: LiveSettings): Promise<void> {
    const m = this.#deps.metrics;
    ctx.cache = 'PURGE';
    this.markHead(ctx);
    if (!s.purgeEnabled || s.purgeToken === undefined) {
      m.purges.inc({ result: 'disabled' });
      sendText(ctx.res, 405, '{"error":"PURGE is disabled (purge.enabled: false)"}\n', [
        ['allow', 'GET, HEAD, POST, PUT, DELETE'],
      ]);
      return;
    }
    const auth = ctx.reqHeaders.authorization;
    const m2 = auth === undefined ? null : /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m2 === null) {
      m.purges.inc({ result: 'unauthorized' });
      sendText(ctx.res, 401, '{"error":"PURGE needs Authorization: Bearer <purge.auth_token>"}\n', [
        ['www-authenticate', 'Bearer realm="strata-proxy"'],
      ]);
      return;
    }
    if (!tokenEquals(m2[1] ?? '', s.purgeToken)) {
      m.purges.inc({ result: 'forbidden' });
      sendText(ctx.res, 403, '{"error":"wrong purge token"}\n');
      return;
    }
    const n = await this.invalidate(ctx.primary);
    m.purges.inc({ result: n > 0 ? 'purged' : 'absent' });
    sendText(ctx.res, n > 0 ? 200 : 404, `${JSON.stringify({ purged: n, key: ctx.primary })}\n`);
  }
}

interface Prepared {
  /** Client response headers without Age, flattened for writeHead. */
  flat: string[];
  freshUntilMs: number;
  ageAtPrepareS: number;
  preparedAtMs: number;
}

const CONDITIONAL_OR_RANGE: ReadonlySet<string> = new Set([
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'if-range',
  'range',
]);

/**
 * The target of a plain GET/HEAD the cache may answer (no preconditions, ranges, request
 * directives or credentials; caching on; not a sliced path), else undefined. Such a request is
 * decided without the general path: a fresh L1 hit (#fastHit) or a known miss (#plainMiss).
 */
function plainTarget(req: IncomingMessage, s: LiveSettings): string | undefined {
  const method = req.method;
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const h = req.headers;
  if (
    h['cache-control'] !== undefined ||
    h.pragma !== undefined ||
    h.range !== undefined ||
    h['if-none-match'] !== undefined ||
    h['if-modified-since'] !== undefined ||
    h['if-match'] !== undefined ||
    h['if-unmodified-since'] !== undefined ||
    h.authorization !== undefined
  )
    return undefined;
  const target = req.url;
  if (target === undefined || !target.startsWith('/') || !s.enableCache) return undefined;
  if (s.slicePatterns.length > 0) {
    const path = target.split('?')[0] ?? target;
    if (s.slicePatterns.some((re) => re.test(path))) return undefined;
  }
  return target;
}

/** A fill worth waiting for rather than fetching around: announced and small, or already done. */
function smallEnough(fill: Fill): boolean {
  return fill.done || (fill.contentLength !== undefined && fill.contentLength <= WAIT_FOR_FILL_MAX_BYTES);
}

export function contentLengthOf(headers: HeaderPairs): number | undefined {
  const v = getHeader(headers, 'content-length');
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}

/** Constant-time comparison of two tokens (hashes first, so lengths do not leak either). */
function tokenEquals(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
