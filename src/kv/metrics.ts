/**
 * The KV node's Prometheus metrics, served on /metrics and on the seed's /admin/metrics. Names
 * start with `cache_` as in the seed's alert rules (`cache_errors_total`). Gauges that are cheap
 * to read from the store are computed at scrape time. The per-request series (count, latency
 * histogram, hits, misses) are kept in plain arrays and rendered at scrape time by collectors
 * registered beside prom-client's: at several hundred thousand RESP commands a second,
 * prom-client's label hashing on every observe would cost more than the command itself.
 */
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, LATENCY_BUCKETS_S, createRegistry } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { EvictionReason } from './store.js';

/** Seconds of history behind cache_qps. */
const QPS_WINDOW_S = 10;

export type Protocol = 'http' | 'resp' | 'internal';

export interface KvGaugeSources {
  keys: () => number;
  bytes: () => number;
  maxBytes: number;
  maxKeys: number;
  tombstones: () => number;
  handoffPending: () => number;
  nodeStates: () => { id: string; state: string }[];
  ownership: () => { shares: Map<string, number>; relativeStdDev: number };
  respConnections: () => number;
}

export class KvMetrics {
  readonly registry: Registry;
  readonly #series = new Map<string, RequestSeries>();
  readonly #evictions: Counter<'reason'>;
  readonly #forwards: Counter<'outcome'>;
  readonly #replications: Counter<'outcome'>;
  readonly #migrations: Counter<'direction'>;
  readonly #errors: Counter<'code'>;
  readonly #viewChanges: Counter;
  #hitCount = 0;
  #missCount = 0;
  /** Requests per second over the last QPS_WINDOW_S whole seconds. */
  readonly #qpsSlots = new Float64Array(QPS_WINDOW_S + 1);
  #qpsSecond = 0;

  constructor(nodeId: string, sources: KvGaugeSources) {
    this.registry = createRegistry('kv', { node: nodeId });
    const r = [this.registry];
    const series = (): RequestSeries[] => [...this.#series.values()];
    this.registry.registerMetric(requestCounter(series) as never);
    this.registry.registerMetric(latencyHistogram(series) as never);
    const hits = (): number => this.#hitCount;
    const misses = (): number => this.#missCount;
    new Counter({
      name: 'cache_hits_total',
      help: 'Reads that found their key',
      registers: r,
      collect() {
        this.reset();
        this.inc(hits());
      },
    });
    new Counter({
      name: 'cache_misses_total',
      help: 'Reads that did not find their key',
      registers: r,
      collect() {
        this.reset();
        this.inc(misses());
      },
    });
    this.#evictions = new Counter({
      name: 'cache_evictions_total',
      help: 'Entries removed by the LRU (reason entries|memory) or by expiry (reason expired)',
      labelNames: ['reason'],
      registers: r,
    });
    this.#forwards = new Counter({
      name: 'cache_forwards_total',
      help: 'Operations forwarded to the owning node, by outcome',
      labelNames: ['outcome'],
      registers: r,
    });
    this.#replications = new Counter({
      name: 'cache_replications_total',
      help: 'Writes copied to replica nodes, by outcome',
      labelNames: ['outcome'],
      registers: r,
    });
    this.#migrations = new Counter({
      name: 'cache_migrations_total',
      help: 'Entries moved between nodes by rebalancing (direction sent|received|dropped)',
      labelNames: ['direction'],
      registers: r,
    });
    this.#errors = new Counter({
      name: 'cache_errors_total',
      help: 'Requests answered with an error, by error code',
      labelNames: ['code'],
      registers: r,
    });
    this.#viewChanges = new Counter({
      name: 'cache_view_changes_total',
      help: 'Changes of the cluster view',
      registers: r,
    });

    // collect() runs with `this` bound to the gauge; these arrows reach the counters.
    const hitRatio = (): number => {
      const total = this.#hitCount + this.#missCount;
      return total === 0 ? 0 : this.#hitCount / total;
    };
    const qps = (): number => this.qps();
    new Gauge({
      name: 'cache_hit_ratio',
      help: 'Hits / (hits + misses) since start',
      registers: r,
      collect() {
        this.set(hitRatio());
      },
    });
    new Gauge({
      name: 'cache_qps',
      help: `Client requests per second, averaged over the last ${QPS_WINDOW_S} s`,
      registers: r,
      collect() {
        this.set(qps());
      },
    });
    new Gauge({
      name: 'cache_keys',
      help: 'Entries held by this node',
      registers: r,
      collect() {
        this.set(sources.keys());
      },
    });
    new Gauge({
      name: 'cache_bytes',
      help: 'Bytes held (keys, values, per-entry overhead)',
      registers: r,
      collect() {
        this.set(sources.bytes());
      },
    });
    new Gauge({
      name: 'cache_max_bytes',
      help: 'max_memory',
      registers: r,
      collect() {
        this.set(sources.maxBytes);
      },
    });
    new Gauge({
      name: 'cache_max_keys',
      help: 'cache_size',
      registers: r,
      collect() {
        this.set(sources.maxKeys);
      },
    });
    new Gauge({
      name: 'cache_tombstones',
      help: 'Deletes remembered',
      registers: r,
      collect() {
        this.set(sources.tombstones());
      },
    });
    new Gauge({
      name: 'cache_handoff_pending',
      help: 'Keys waiting to be handed to their owners',
      registers: r,
      collect() {
        this.set(sources.handoffPending());
      },
    });
    new Gauge({
      name: 'cache_resp_connections',
      help: 'Open RESP client connections',
      registers: r,
      collect() {
        this.set(sources.respConnections());
      },
    });
    new Gauge({
      name: 'cache_node_up',
      help: 'Whether this node sees each cluster node as up (1) or not (0)',
      labelNames: ['peer', 'state'],
      registers: r,
      collect() {
        this.reset();
        for (const n of sources.nodeStates())
          this.set({ peer: n.id, state: n.state }, n.state === 'up' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cache_ring_ownership_ratio',
      help: "Each node's share of the key space on the ring",
      labelNames: ['peer'],
      registers: r,
      collect() {
        this.reset();
        for (const [id, share] of sources.ownership().shares) this.set({ peer: id }, share);
      },
    });
    new Gauge({
      name: 'cache_distribution_stddev_ratio',
      help: 'Standard deviation of ring ownership shares divided by their mean (0 = perfectly even)',
      registers: r,
      collect() {
        this.set(sources.ownership().relativeStdDev);
      },
    });
  }

  /** Counts one client request; `startMs` from `KvMetrics.now()`. */
  request(protocol: Protocol, op: string, startMs: number, ok: boolean): void {
    this.observe(this.series(protocol, op), startMs, ok);
  }

  /** The series of one (protocol, op), to keep and pass to `observe` on hot paths. */
  series(protocol: Protocol, op: string): RequestSeries {
    const k = `${protocol}|${op}`;
    let series = this.#series.get(k);
    if (series === undefined) {
      series = new RequestSeries(protocol, op);
      this.#series.set(k, series);
    }
    return series;
  }

  observe(series: RequestSeries, startMs: number, ok: boolean): void {
    series.record((performance.now() - startMs) / 1000, ok);
    this.#tickQps(1);
  }

  /** A monotonic timestamp in ms for `request`. */
  static now(): number {
    return performance.now();
  }

  hit(): void {
    this.#hitCount++;
  }

  miss(): void {
    this.#missCount++;
  }

  get hitCount(): number {
    return this.#hitCount;
  }

  get missCount(): number {
    return this.#missCount;
  }

  eviction(reason: EvictionReason): void {
    this.#evictions.labels(reason).inc();
  }

  forward(outcome: 'ok' | 'unreachable' | 'error', n = 1): void {
    this.#forwards.labels(outcome).inc(n);
  }

  replication(outcome: 'ok' | 'failed', n = 1): void {
    this.#replications.labels(outcome).inc(n);
  }

  migration(direction: 'sent' | 'received' | 'dropped', n: number): void {
    if (n > 0) this.#migrations.labels(direction).inc(n);
  }

  error(code: string): void {
    this.#errors.labels(code).inc();
  }

  viewChange(): void {
    this.#viewChanges.inc();
  }

  /** Requests per second over the last QPS_WINDOW_S complete seconds. */
  qps(): number {
    this.#tickQps(0);
    let sum = 0;
    const cur = this.#qpsSecond % this.#qpsSlots.length;
    for (let i = 0; i < this.#qpsSlots.length; i++) if (i !== cur) sum += this.#qpsSlots[i] as number;
    return sum / QPS_WINDOW_S;
  }

  #tickQps(n: number): void {
    const sec = Math.floor(Date.now() / 1000);
    const slots = this.#qpsSlots;
    if (sec !== this.#qpsSecond) {
      const gap = Math.min(sec - this.#qpsSecond, slots.length);
      for (let i = 1; i <= gap; i++) slots[(this.#qpsSecond + i) % slots.length] = 0;
      this.#qpsSecond = sec;
    }
    const idx = sec % slots.length;
    slots[idx] = (slots[idx] as number) + n;
  }
}

/** Requests and latencies of one (protocol, op): a count per outcome and histogram buckets. */
export class RequestSeries {
  readonly protocol: string;
  readonly op: string;
  ok = 0;
  errors = 0;
  sumS = 0;
  /** Non-cumulative counts per bucket of LATENCY_BUCKETS_S, plus one for +Inf. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS_S.length + 1);

  constructor(protocol: string, op: string) {
    this.protocol = protocol;
    this.op = op;
  }

  record(seconds: number, ok: boolean): void {
    if (ok) this.ok++;
    else this.errors++;
    this.sumS += seconds;
    let i = 0;
    while (i < LATENCY_BUCKETS_S.length && seconds > (LATENCY_BUCKETS_S[i] as number)) i++;
    this.buckets[i] = (this.buckets[i] as number) + 1;
  }
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** A collector prom-client's registry renders like its own metrics (`get()` at scrape time). */
interface CustomMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] };
  reset(): void;
}

function requestCounter(series: () => RequestSeries[]): CustomMetric {
  const name = 'cache_requests_total';
  const help = 'Client requests by protocol, operation and outcome';
  return {
    name,
    help,
    type: 'counter',
    aggregator: 'sum',
    get() {
      const values: MetricValue[] = [];
      for (const s of series()) {
        values.push({ labels: { protocol: s.protocol, op: s.op, outcome: 'ok' }, value: s.ok });
        if (s.errors > 0)
          values.push({ labels: { protocol: s.protocol, op: s.op, outcome: 'error' }, value: s.errors });
      }
      return { name, help, type: 'counter', aggregator: 'sum', values };
    },
    reset() {
      // Counters of a live process are never reset.
    },
  };
}

function latencyHistogram(series: () => RequestSeries[]): CustomMetric {
  const name = 'cache_request_duration_seconds';
  const help = 'Client request latency by protocol and operation';
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const values: MetricValue[] = [];
      for (const s of series()) {
        let cumulative = 0;
        LATENCY_BUCKETS_S.forEach((le, i) => {
          cumulative += s.buckets[i] as number;
          values.push({
            metricName: `${name}_bucket`,
            labels: { protocol: s.protocol, op: s.op, le },
            value: cumulative,
          });
        });
        const count = cumulative + (s.buckets[LATENCY_BUCKETS_S.length] as number);
        values.push({
          metricName: `${name}_bucket`,
          labels: { protocol: s.protocol, op: s.op, le: '+Inf' },
          value: count,
        });
        values.push({ metricName: `${name}_sum`, labels: { protocol: s.protocol, op: s.op }, value: s.sumS });
        values.push({
          metricName: `${name}_count`,
          labels: { protocol: s.protocol, op: s.op },
          value: count,
        });
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
    reset() {
      // Histograms of a live process are never reset.
    },
  };
}
