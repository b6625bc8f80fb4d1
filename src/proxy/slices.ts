/**
 * Sliced objects (`slice_patterns`): the origin is asked for fixed `slice_size` ranges
 * (`Range: bytes=0-1048575`, …), each cached under its own key (URL + range), and the client's
 * response is assembled from them in order. Only the slices a client's range touches are
 * fetched, up to `max_concurrent_subrequests` at a time, each retried up to `max_retries` times.
 *
 * Slice 0 is the head: its Content-Range gives the total length, its ETag (or Last-Modified)
 * names the version. Every other slice must agree with both; when one does not, the object
 * changed under us: all its slices are dropped and, if nothing was sent yet, the request starts
 * over once with fresh slices. Mid-response, the connection is cut instead (never a mix).
 */
import type CachePolicy from 'http-cache-semantics';
import CachePolicyClass from 'http-cache-semantics';
import { sliceKey } from './cache-key.js';
import { SliceMismatchError, UpstreamError } from './errors.js';
import { Fill } from './fill.js';
import type { Ctx, HandlerDeps, LiveSettings, ProxyHandler } from './handler.js';
import { CACHE_STATUS_HEADER } from './handler.js';
import { evaluatePreconditions, notModifiedHeaders } from './http/conditional.js';
import { flatten, getHeader, isCompressible } from './http/headers.js';
import { evaluateRange, ifRangeAllows, parseContentRange } from './http/range.js';
import { sendFromSource } from './http/respond.js';
import type { BodySource } from './http/respond.js';
import {
  ageHeader,
  clientHeaders,
  evaluateReuse,
  makePolicy,
  mergeNotModified,
  notModifiedMatches,
  storeVerdict,
  validatorHeaders,
} from './policy.js';
import type { EntryMeta, HeaderPairs, StoreHit, StoreWriter } from './store/types.js';
import type { UpstreamResponse } from './upstream.js';

/** First retry waits this long, doubling each time. */
export const SLICE_RETRY_BASE_MS = 100;
/** A changed object is refetched at most this many times per request. */
const MISMATCH_RESTARTS = 1;

/** What identifies the version of a sliced object: every slice must carry the same. */
interface Head {
  totalBytes: number;
  etag: string | undefined;
  lastModified: string | undefined;
  /** Headers for the assembled 200 response (from slice 0, range fields removed). */
  headers: HeaderPairs;
  policy: CachePolicy | undefined;
  /** Which slice the head is (the one holding the first requested byte, else 0). */
  index: number;
  /** That slice itself, ready to read. */
  first: SliceSource | undefined;
}

interface SliceSource {
  read(from: number, to: number): AsyncIterable<Buffer>;
  release(): void;
}

type SliceFetch =
  | { kind: 'slice'; fill: Fill; first: number; last: number; total: number; headers: HeaderPairs }
  | { kind: 'refreshed'; meta: EntryMeta }
  | { kind: 'other'; up: UpstreamResponse };

const RANGE_FIELDS: ReadonlySet<string> = new Set(['content-range', 'content-length']);

export class SliceAssembler {
  readonly #deps: HandlerDeps;
  readonly #handler: ProxyHandler;
  readonly #flights = new Map<string, Promise<SliceFetch>>();

  constructor(deps: HandlerDeps, handler: ProxyHandler) {
    this.#deps = deps;
    this.#handler = handler;
  }

  async serve(ctx: Ctx, s: LiveSettings, restarts = 0): Promise<void> {
    const size = s.sliceSizeBytes;
    // Like nginx's slice module, the first slice fetched is the one holding the first requested
    // byte, so a range deep into a large object does not cost a fetch of its beginning.
    const guess = absoluteRangeStart(ctx.reqHeaders.range);
    const head = await this.#head(ctx, s, guess === undefined ? 0 : Math.floor(guess / size));
    if (head === undefined) return; // answered already (origin error, no range support)
    const prefetched = new Map<number, Promise<SliceSource>>();
    if (head.first !== undefined) prefetched.set(head.index, Promise.resolve(head.first));
    const release = (): void => {
      for (const p of prefetched.values())
        void p.then(
          (src) => src.release(),
          () => undefined,
        );
      prefetched.clear();
    };
    const headers: HeaderPairs = clientHeaders(head.headers).filter(([k]) => k !== 'age');
    headers.push(
      ['age', head.policy === undefined ? '0' : ageHeader(head.policy)],
      [CACHE_STATUS_HEADER, ctx.cache],
    );
    const pre = evaluatePreconditions(ctx.reqHeaders, 200, headers);
    if (pre !== 'proceed' || ctx.method === 'HEAD') {
      release();
      this.#handler.markHead(ctx);
      if (pre === 'failed') {
        ctx.res.writeHead(412, flatten([['content-length', '0']]));
      } else if (pre === 'not-modified') {
        ctx.res.writeHead(304, flatten(notModifiedHeaders(headers)));
      } else {
        ctx.res.writeHead(
          200,
          flatten([
            ...headers.filter(([k]) => k !== 'content-length'),
            ['content-length', String(head.totalBytes)],
            ['accept-ranges', 'bytes'],
          ]),
        );
      }
      ctx.res.end();
      return;
    }
    // Validate the slices the response starts with (up to max_concurrent_subrequests) before
    // anything is sent: a changed object found now can still be dropped and refetched cleanly.
    if (head.totalBytes > 0) {
      const [a, b] = firstRange(ctx.reqHeaders, head);
      const firstIndex = Math.floor(a / size);
      const lastIndex = Math.min(Math.floor(b / size), firstIndex + s.maxConcurrentSubrequests - 1);
      for (let i = firstIndex; i <= lastIndex; i++) {
        if (prefetched.has(i)) continue;
        const p = this.#slice(ctx, s, head, i);
        p.catch(() => undefined);
        prefetched.set(i, p);
      }
      try {
        for (let i = firstIndex; i <= lastIndex; i++) await prefetched.get(i);
      } catch (err) {
        release();
        if (err instanceof SliceMismatchError) {
          await this.#dropObject(ctx, err);
          if (restarts < MISMATCH_RESTARTS) return this.serve(ctx, s, restarts + 1);
        }
        throw err;
      }
    }
    const source: BodySource = {
      length: head.totalBytes,
      read: (a, b) => this.#assemble(ctx, s, head, prefetched, a, b ?? head.totalBytes),
    };
    this.#handler.markHead(ctx);
    try {
      await sendFromSource(ctx.res, 200, headers, source, {
        method: ctx.method,
        ranges: true,
        reqHeaders: ctx.reqHeaders,
      });
    } catch (err) {
      if (err instanceof SliceMismatchError) await this.#dropObject(ctx, err);
      else throw err;
    } finally {
      release();
    }
  }

  async #dropObject(ctx: Ctx, err: SliceMismatchError): Promise<void> {
    this.#deps.metrics.sliceMismatches.inc();
    this.#deps.log.warn(
      { target: ctx.target, err: err.message },
      'sliced object changed: dropping its slices',
    );
    await this.#deps.cache.deleteFamily(ctx.primary);
  }

  /** Reads [a, b) of the object slice by slice, keeping up to N slices in flight ahead. */
  #assemble(
    ctx: Ctx,
    s: LiveSettings,
    head: Head,
    prefetched: Map<number, Promise<SliceSource>>,
    a: number,
    b: number,
  ): AsyncIterable<Buffer> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const size = s.sliceSizeBytes;
    return (async function* () {
      if (a >= b) return;
      const first = Math.floor(a / size);
      const last = Math.floor((b - 1) / size);
      for (let i = first; i <= last; i++) {
        for (let j = i; j <= Math.min(last, i + s.maxConcurrentSubrequests - 1); j++) {
          if (!prefetched.has(j)) {
            const p = self.#slice(ctx, s, head, j);
            p.catch(() => undefined);
            prefetched.set(j, p);
          }
        }
        const src = await (prefetched.get(i) as Promise<SliceSource>);
        prefetched.delete(i);
        try {
          const base = i * size;
          yield* src.read(Math.max(a, base) - base, Math.min(b, base + size) - base);
        } finally {
          src.release();
        }
      }
    })();
  }

  /** Slice `i` from the cache or the origin, checked against the head. */
  async #slice(ctx: Ctx, s: LiveSettings, head: Head, i: number, retry = true): Promise<SliceSource> {
    const size = s.sliceSizeBytes;
    const start = i * size;
    const last = Math.min(start + size, head.totalBytes) - 1;
    const key = sliceKey(ctx.primary, start, start + size - 1);
    const found = await this.#deps.cache.get(key);
    if (found !== undefined) {
      const meta = found.hit.meta;
      const ok =
        meta.slice !== undefined &&
        meta.slice.totalBytes === head.totalBytes &&
        meta.slice.start === start &&
        meta.slice.end === last;
      const same = sameVersion(head, meta.headers);
      const policy = CachePolicyClass.fromObject(meta.policy);
      const usable =
        ok && same === 'same'
          ? true
          : ok && same === 'unknown' && evaluateReuse(meta, policy, {}).kind === 'fresh';
      if (usable && found.hit.bodyBytes === last - start + 1) {
        this.#deps.metrics.hit(found.tier);
        const hit = found.hit;
        return {
          read: (f, t) => this.#handler.resilientRead(ctx, meta, hit, f, t, start),
          release: () => hit.release(),
        };
      }
      found.hit.release();
      if (ok && same === 'different')
        throw new SliceMismatchError(`slice ${i} of ${ctx.target} has another version than slice 0`);
    }
    this.#deps.metrics.miss();
    const r = await this.#fetch(ctx, s, key, start, start + size - 1, undefined);
    if (r.kind !== 'slice') {
      if (r.kind === 'other') r.up.body.destroy();
      throw new SliceMismatchError(`slice ${i} of ${ctx.target}: origin did not answer with a matching 206`);
    }
    if (r.total !== head.totalBytes || r.first !== start || r.last !== last)
      throw new SliceMismatchError(
        `slice ${i} of ${ctx.target}: Content-Range disagrees with slice 0 (total ${r.total} vs ${head.totalBytes})`,
      );
    if (sameVersion(head, r.headers) === 'different')
      throw new SliceMismatchError(`slice ${i} of ${ctx.target}: ETag differs from slice 0`);
    const fill = r.fill;
    // Finished and released since the flight began: it is in the cache by now.
    if (!fill.joinable && retry) return this.#slice(ctx, s, head, i, false);
    return { read: (f, t) => fill.read(f, t), release: fill.hold() };
  }

  /** The head slice: from the cache when fresh, else fetched (or revalidated). Undefined: answered already. */
  async #head(ctx: Ctx, s: LiveSettings, index: number): Promise<Head | undefined> {
    const size = s.sliceSizeBytes;
    const start = index * size;
    const key = sliceKey(ctx.primary, start, start + size - 1);
    const found = await this.#deps.cache.get(key);
    let stored: EntryMeta | undefined;
    if (found !== undefined) {
      const meta = found.hit.meta;
      const policy = CachePolicyClass.fromObject(meta.policy);
      const reuse = evaluateReuse(meta, policy, ctx.reqHeaders);
      if (meta.slice !== undefined && reuse.kind !== 'revalidate') {
        this.#deps.metrics.hit(found.tier);
        ctx.cache = 'HIT';
        const hit = found.hit;
        return {
          ...headFrom(meta.headers, meta.slice.totalBytes),
          policy,
          index,
          first: { read: (f, t) => hit.read(f, t), release: () => hit.release() },
        };
      }
      stored = meta.slice !== undefined ? meta : undefined;
      found.hit.release();
    }
    this.#deps.metrics.miss();
    ctx.cache = stored === undefined ? 'MISS' : 'REVALIDATED';
    const r = await this.#fetch(ctx, s, key, start, start + size - 1, stored);
    if (r.kind === 'refreshed') {
      const again = await this.#deps.cache.get(key);
      if (again === undefined || again.hit.meta.slice === undefined) {
        again?.hit.release();
        await this.#handler.pass(ctx, 'pass');
        return undefined;
      }
      const hit = again.hit;
      return {
        ...headFrom(r.meta.headers, again.hit.meta.slice.totalBytes),
        policy: CachePolicyClass.fromObject(r.meta.policy),
        index,
        first: { read: (f, t) => hit.read(f, t), release: () => hit.release() },
      };
    }
    if (r.kind === 'other') {
      // Not a usable 206 (an error, 416 for an empty object, or an origin without ranges):
      // relay the origin's answer as it is.
      const up = r.up;
      ctx.cache = 'PASS';
      this.#handler.markHead(ctx);
      if (up.status === 416) {
        up.body.destroy();
        // Past the end: the object is shorter than the range guessed; slice 0 tells its length.
        if (index > 0) return this.#head(ctx, s, 0);
        await this.#handler.pass(ctx, 'pass');
        return undefined;
      }
      ctx.res.writeHead(up.status, flatten([...up.headers, [CACHE_STATUS_HEADER, 'PASS']]));
      for await (const c of up.body)
        if (!ctx.res.write(c as Buffer)) await new Promise((res) => ctx.res.once('drain', res));
      ctx.res.end();
      return undefined;
    }
    if (stored !== undefined && sameVersion(headFrom(stored.headers, r.total), r.headers) !== 'same') {
      // A new version: every other slice of the old one is now useless.
      await this.#deps.cache.deleteFamily(ctx.primary);
    }
    const fill = r.fill;
    return {
      ...headFrom(r.headers, r.total),
      policy: undefined,
      index,
      first: { read: (f, t) => fill.read(f, t), release: fill.hold() },
    };
  }

  /** One Range request for a slice, coalesced by key, retried on connection errors and 5xx. */
  #fetch(
    ctx: Ctx,
    s: LiveSettings,
    key: string,
    first: number,
    last: number,
    stored: EntryMeta | undefined,
  ): Promise<SliceFetch> {
    const running = this.#flights.get(key);
    if (running !== undefined) {
      this.#deps.metrics.coalesced.inc();
      return running;
    }
    const p = this.#fetchOnce(ctx, s, key, first, last, stored);
    this.#flights.set(key, p);
    p.then(
      (r) => {
        if (r.kind !== 'slice') this.#flights.delete(key);
      },
      () => this.#flights.delete(key),
    );
    return p;
  }

  async #fetchOnce(
    ctx: Ctx,
    s: LiveSettings,
    key: string,
    first: number,
    last: number,
    stored: EntryMeta | undefined,
  ): Promise<SliceFetch> {
    const m = this.#deps.metrics;
    const headers = this.#handler.upstreamHeaders(ctx, true);
    headers.range = `bytes=${first}-${last}`;
    if (stored !== undefined) Object.assign(headers, validatorHeaders(stored));
    let up: UpstreamResponse | undefined;
    let lastErr: unknown;
    for (let attempt = 0; attempt <= s.maxRetries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, SLICE_RETRY_BASE_MS * 2 ** (attempt - 1)));
      m.upstreamRequests.inc({ kind: 'slice' });
      try {
        const res = await this.#deps.upstream.request({ method: 'GET', path: ctx.target, headers });
        m.upstreamSeconds.observe({ kind: 'slice' }, res.headersMs / 1000);
        if (res.status >= 500 && attempt < s.maxRetries) {
          res.body.destroy();
          lastErr = new UpstreamError(`origin answered ${res.status} for slice ${first}-${last}`, false);
          continue;
        }
        up = res;
        break;
      } catch (err) {
        m.upstreamErrors.inc({ kind: 'slice' });
        lastErr = err;
      }
    }
    if (up === undefined)
      throw lastErr instanceof Error ? lastErr : new UpstreamError('slice request failed', false);
    if (stored !== undefined && up.status === 304 && notModifiedMatches(stored, up.headers)) {
      up.body.resume();
      const merged = mergeNotModified(stored.headers, up.headers);
      const policy = makePolicy(this.#handler.policyLike(ctx), 200, merged, s);
      const meta: EntryMeta = {
        ...stored,
        headers: merged,
        policy: policy.toObject(),
        storedAtMs: Date.now(),
      };
      await this.#deps.cache.updateMeta(meta);
      return { kind: 'refreshed', meta };
    }
    const cr = parseContentRange(getHeader(up.headers, 'content-range'));
    if (up.status !== 206 || cr === undefined || cr.total === undefined || cr.first !== first)
      return { kind: 'other', up };
    // Stored as a 200 would be: the slice is a cacheable part of a cacheable whole.
    const policy = makePolicy(this.#handler.policyLike(ctx), 200, up.headers, s);
    const verdict = storeVerdict(policy, 200, up.headers, s);
    let sink: Promise<StoreWriter | undefined> | undefined;
    if (verdict.store) {
      const meta: EntryMeta = {
        key,
        status: 206,
        headers: up.headers,
        policy: policy.toObject(),
        slice: { start: cr.first, end: cr.last, totalBytes: cr.total },
        storedAtMs: Date.now(),
      };
      sink = this.#deps.cache.put(meta, {
        expectedBytes: cr.last - cr.first + 1,
        compressible: isCompressible(up.headers),
      });
    }
    const fill = new Fill({
      key,
      status: 206,
      headers: up.headers,
      contentLength: cr.last - cr.first + 1,
      body: up.body,
      sink,
      onSettled: () => {
        if (this.#flights.get(key) !== undefined) this.#flights.delete(key);
      },
      onSinkError: () => m.cacheErrors.inc({ store: 'tier', op: 'slice' }),
    });
    return { kind: 'slice', fill, first: cr.first, last: cr.last, total: cr.total, headers: up.headers };
  }
}

function headFrom(headers: HeaderPairs, totalBytes: number): Omit<Head, 'policy' | 'first' | 'index'> {
  return {
    totalBytes,
    etag: getHeader(headers, 'etag'),
    lastModified: getHeader(headers, 'last-modified'),
    headers: headers.filter(([k]) => !RANGE_FIELDS.has(k)),
  };
}

/** Compares a slice's validators with the head's: strong ETag first, then Last-Modified. */
function sameVersion(
  head: Pick<Head, 'etag' | 'lastModified'>,
  headers: HeaderPairs,
): 'same' | 'different' | 'unknown' {
  const etag = getHeader(headers, 'etag');
  if (head.etag !== undefined || etag !== undefined) {
    if (head.etag === undefined || etag === undefined) return 'different';
    if (head.etag.startsWith('W/') || etag.startsWith('W/'))
      return head.etag === etag ? 'unknown' : 'different';
    return head.etag === etag ? 'same' : 'different';
  }
  const lm = getHeader(headers, 'last-modified');
  if (head.lastModified !== undefined || lm !== undefined)
    return head.lastModified === lm ? 'unknown' : 'different';
  return 'unknown';
}

/** The start of the first range when it is absolute (`bytes=N-…`); undefined otherwise. */
function absoluteRangeStart(range: string | undefined): number | undefined {
  if (range === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d+)\s*-/i.exec(range);
  return m === null ? undefined : Number(m[1]);
}

/** The first byte range the response will send (the whole object when no usable Range). */
function firstRange(reqHeaders: Record<string, string>, head: Head): [number, number] {
  const whole: [number, number] = [0, head.totalBytes - 1];
  if (!ifRangeAllows(reqHeaders['if-range'], head.etag, head.lastModified)) return whole;
  const d = evaluateRange(reqHeaders.range, head.totalBytes);
  if (d.kind !== 'partial') return whole;
  const r = d.ranges[0];
  return r === undefined ? whole : [r[0], r[1]];
}

export type { StoreHit };
