/**
 * The proxy's Prometheus metrics. Names of seed 004 are kept as they are (`cache_hit_rate`,
 * `cache_l1_hits_total`, `raw_disk_*` …) so existing dashboards and the seed's alert rules work;
 * Strata adds request, TTFB and upstream latency histograms under `proxy_`.
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_S, createRegistry } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { RawDiskStats, StoreStats } from './store/types.js';

export interface MetricSources {
  l1(): StoreStats;
  rawDisk(): RawDiskStats | undefined;
}

export class ProxyMetrics {
  readonly registry: Registry;
  readonly l1Hits: Counter;
  readonly l2Hits: Counter;
  readonly misses: Counter;
  readonly requests: Counter<'method' | 'status' | 'cache'>;
  readonly requestSeconds: Histogram<'cache'>;
  readonly ttfbSeconds: Histogram<'cache'>;
  readonly upstreamSeconds: Histogram<'kind'>;
  readonly upstreamRequests: Counter<'kind'>;
  readonly upstreamErrors: Counter<'kind'>;
  readonly coalesced: Counter;
  readonly cacheErrors: Counter<'store' | 'op'>;
  readonly purges: Counter<'result'>;
  readonly inflight: Gauge;
  readonly sliceMismatches: Counter;
  #hits = 0;
  #lookups = 0;
  /** Label children resolved once: prom-client hashes labels on every call otherwise. */
  readonly #requestChildren = new Map<string, { inc(): void }>();
  readonly #durationChildren = new Map<string, { observe(v: number): void }>();
  readonly #ttfbChildren = new Map<string, { observe(v: number): void }>();

  constructor(sources: MetricSources) {
    const r = createRegistry('proxy');
    this.registry = r;
    this.l1Hits = new Counter({
      name: 'cache_l1_hits_total',
      help: 'Requests answered from L1 (memory)',
      registers: [r],
    });
    this.l2Hits = new Counter({
      name: 'cache_l2_hits_total',
      help: 'Requests answered from L2 (disk)',
      registers: [r],
    });
    this.misses = new Counter({
      name: 'cache_misses_total',
      help: 'Cacheable requests that had to go to the origin',
      registers: [r],
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    new Gauge({
      name: 'cache_hit_rate',
      help: 'Share of cacheable requests answered from the cache since start, in percent (0-100)',
      registers: [r],
      collect() {
        this.set(self.#lookups === 0 ? 0 : (100 * self.#hits) / self.#lookups);
      },
    });
    new Gauge({
      name: 'cache_l1_entries',
      help: 'Entries in L1',
      registers: [r],
      collect() {
        this.set(sources.l1().entries);
      },
    });
    new Gauge({
      name: 'cache_l1_bytes',
      help: 'Bytes held by L1 (bodies plus per-entry overhead)',
      registers: [r],
      collect() {
        this.set(sources.l1().bytes);
      },
    });
    const raw = (name: string, help: string, pick: (s: RawDiskStats) => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          const s = sources.rawDisk();
          this.set(s === undefined ? 0 : pick(s));
        },
      });
    };
    raw('raw_disk_total_blocks', 'Data blocks of the raw-disk cache', (s) => s.totalBlocks);
    raw(
      'raw_disk_used_blocks',
      'Blocks in use (entries, checkpoints, blocks awaiting release)',
      (s) => s.usedBlocks,
    );
    raw('raw_disk_free_blocks', 'Free blocks', (s) => s.freeBlocks);
    raw(
      'raw_disk_fragmentation_rate',
      'Free-space fragmentation: 1 - largest free extent / free blocks (0 = one free extent)',
      (s) => s.fragmentationRate,
    );
    raw('raw_disk_cache_entries', 'Entries in the raw-disk cache', (s) => s.entries);
    this.requests = new Counter({
      name: 'proxy_requests_total',
      help: 'Requests answered, by method, status and cache outcome',
      labelNames: ['method', 'status', 'cache'],
      registers: [r],
    });
    this.requestSeconds = new Histogram({
      name: 'proxy_request_duration_seconds',
      help: 'Time from request to the last byte of the response',
      labelNames: ['cache'],
      buckets: LATENCY_BUCKETS_S,
      registers: [r],
    });
    this.ttfbSeconds = new Histogram({
      name: 'proxy_ttfb_seconds',
      help: 'Time from request to the response headers being written',
      labelNames: ['cache'],
      buckets: LATENCY_BUCKETS_S,
      registers: [r],
    });
    this.upstreamSeconds = new Histogram({
      name: 'proxy_upstream_latency_seconds',
      help: 'Time from sending a request to the origin to its response headers',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS_S,
      registers: [r],
    });
    this.upstreamRequests = new Counter({
      name: 'proxy_upstream_requests_total',
      help: 'Requests sent to the origin, by kind (fill, revalidate, pass, slice)',
      labelNames: ['kind'],
      registers: [r],
    });
    this.upstreamErrors = new Counter({
      name: 'proxy_upstream_errors_total',
      help: 'Origin requests that failed (connection, timeout)',
      labelNames: ['kind'],
      registers: [r],
    });
    this.coalesced = new Counter({
      name: 'proxy_coalesced_requests_total',
      help: 'Requests that joined a fetch already in flight instead of sending their own',
      registers: [r],
    });
    this.cacheErrors = new Counter({
      name: 'proxy_cache_errors_total',
      help: 'Cache store failures (each degraded to proxying)',
      labelNames: ['store', 'op'],
      registers: [r],
    });
    this.purges = new Counter({
      name: 'proxy_purge_requests_total',
      help: 'PURGE requests by result',
      labelNames: ['result'],
      registers: [r],
    });
    this.inflight = new Gauge({
      name: 'proxy_inflight_requests',
      help: 'Requests being answered',
      registers: [r],
    });
    this.sliceMismatches = new Counter({
      name: 'proxy_slice_mismatches_total',
      help: 'Sliced objects dropped because a slice disagreed with the first (ETag or length)',
      registers: [r],
    });
  }

  /** One answered request: counter and duration histogram. */
  request(method: string, status: number, cache: string, seconds: number): void {
    const key = `${method} ${status} ${cache}`;
    let c = this.#requestChildren.get(key);
    if (c === undefined) {
      c = this.requests.labels(method, String(status), cache);
      this.#requestChildren.set(key, c);
    }
    c.inc();
    let d = this.#durationChildren.get(cache);
    if (d === undefined) {
      d = this.requestSeconds.labels(cache);
      this.#durationChildren.set(cache, d);
    }
    d.observe(seconds);
  }

  ttfb(cache: string, seconds: number): void {
    let t = this.#ttfbChildren.get(cache);
    if (t === undefined) {
      t = this.ttfbSeconds.labels(cache);
      this.#ttfbChildren.set(cache, t);
    }
    t.observe(seconds);
  }

  hit(tier: 'l1' | 'l2'): void {
    this.#hits++;
    this.#lookups++;
    if (tier === 'l1') this.l1Hits.inc();
    else this.l2Hits.inc();
  }

  miss(): void {
    this.#lookups++;
    this.misses.inc();
  }
}
