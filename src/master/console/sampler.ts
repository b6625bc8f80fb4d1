/**
 * Samples the cluster every few seconds into the console's history ring: the master's own
 * counters (RPC calls, namespace cache, UFS block reads when mounts exist) read from its
 * Prometheus registry, and the workers' byte counters scraped from their `/metrics`. Every
 * figure is a rate over the interval, computed from counter deltas with Prometheus's reset rule
 * (a counter that went down restarted from zero).
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/logging.js';
import type { HistorySample } from './history.js';
import { SampleRing } from './history.js';
import { parsePromText, sumSamples } from './prom-text.js';
import type { PromSample } from './prom-text.js';
import { fetchMetricsText, scrapeAll } from './worker-scrape.js';
import type { ScrapeFn, ScrapeTarget } from './worker-scrape.js';

/** How often a sample is taken. */
export const SAMPLE_INTERVAL_MS = 5_000;
/** How much history is kept. */
export const HISTORY_WINDOW_MS = 60 * 60 * 1000;

/** RPC calls that workers make to the master; every other call is a client's metadata op. */
export const WORKER_CALLS: ReadonlySet<string> = new Set([
  'master.registerWorker',
  'master.heartbeat',
  'master.blockReport',
]);

/** Worker traffic paths that are clients' reads and writes (replication is counted apart). */
const CLIENT_PATHS = ['remote', 'local'] as const;

interface Totals {
  tMs: number;
  values: Record<string, number>;
}

export interface SamplerOptions {
  registry: Registry;
  /** The workers to scrape now. */
  targets: () => ScrapeTarget[];
  log: Logger;
  intervalMs?: number;
  windowMs?: number;
  clock?: () => number;
  scrape?: ScrapeFn;
  /** Called after every round (the first included), for state that must be watched continuously. */
  onRound?: (tMs: number) => void;
}

export class ConsoleSampler {
  readonly ring: SampleRing<HistorySample>;
  readonly intervalMs: number;
  readonly #opts: SamplerOptions;
  readonly #clock: () => number;
  readonly #scrape: ScrapeFn;
  #master: Totals | undefined;
  readonly #workers = new Map<string, Totals>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: SamplerOptions) {
    this.#opts = opts;
    this.intervalMs = opts.intervalMs ?? SAMPLE_INTERVAL_MS;
    this.ring = new SampleRing(Math.ceil((opts.windowMs ?? HISTORY_WINDOW_MS) / this.intervalMs));
    this.#clock = opts.clock ?? Date.now;
    this.#scrape = opts.scrape ?? fetchMetricsText;
  }

  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    // A baseline now, so the first point appears one interval after the start.
    this.#kick();
    this.#timer = setInterval(() => this.#kick(), this.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #kick(): void {
    // A slow round (workers not answering) is not stacked on by the next one.
    if (this.#running !== undefined || this.#stopped) return;
    this.#running = this.sampleOnce()
      .then(() => undefined)
      .catch((err: unknown) => this.#opts.log.warn({ err }, 'console metrics sample failed'))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Takes one sample (the first only sets the baseline). Exposed for tests. */
  async sampleOnce(): Promise<HistorySample | undefined> {
    const targets = this.#opts.targets();
    const [master, bodies] = await Promise.all([
      this.#masterTotals(),
      scrapeAll(targets, this.#scrape, this.#opts.log),
    ]);
    const tMs = this.#clock();
    this.#opts.onRound?.(tMs);
    const prevMaster = this.#master;
    this.#master = { tMs, values: master };

    // Per worker, its own rate over its own interval: a worker that missed a round does not
    // put two rounds of bytes into one point.
    const workerRates: Record<string, number> = {};
    const seen = new Set<string>();
    for (const [id, body] of bodies) {
      seen.add(id);
      const values = workerTotals(parsePromText(body).samples);
      const prev = this.#workers.get(id);
      this.#workers.set(id, { tMs, values });
      if (prev === undefined) continue;
      for (const [k, r] of Object.entries(rates(prev, { tMs, values })))
        workerRates[k] = (workerRates[k] ?? 0) + r;
    }
    for (const id of this.#workers.keys()) if (!targets.some((t) => t.id === id)) this.#workers.delete(id);

    if (prevMaster === undefined) return undefined;
    const m = rates(prevMaster, this.#master);
    const hits = m.ufsCacheReads ?? 0;
    const misses = m.ufsMissReads ?? 0;
    const metaHits = m.metaHits ?? 0;
    const metaMisses = m.metaMisses ?? 0;
    const sample: HistorySample = {
      tMs,
      opsPerSec: m.clientCalls ?? 0,
      errorsPerSec: m.errorCalls ?? 0,
      workerCallsPerSec: m.workerCalls ?? 0,
      readBytesPerSec: workerRates.readBytes ?? 0,
      writeBytesPerSec: workerRates.writeBytes ?? 0,
      replicationBytesPerSec: workerRates.replicationBytes ?? 0,
      hitRatio: hits + misses > 0 ? hits / (hits + misses) : null,
      blockReadsPerSec: hits + misses,
      metaHitRatio: metaHits + metaMisses > 0 ? metaHits / (metaHits + metaMisses) : null,
      workersScraped: seen.size,
      workersAsked: targets.length,
    };
    this.ring.push(sample);
    return sample;
  }

  async #masterTotals(): Promise<Record<string, number>> {
    const r = this.#opts.registry;
    const values = async (name: string): Promise<PromSample[]> => {
      const metric = r.getSingleMetric(name);
      if (metric === undefined) return [];
      const got = await metric.get();
      return got.values.map((v) => ({
        name,
        labels: Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])),
        value: v.value,
      }));
    };
    const calls = await values('strata_rpc_server_requests_total');
    let clientCalls = 0;
    let workerCalls = 0;
    let errorCalls = 0;
    for (const s of calls) {
      if (WORKER_CALLS.has(s.labels.call ?? '')) workerCalls += s.value;
      else clientCalls += s.value;
      if (s.labels.status !== 'ok') errorCalls += s.value;
    }
    const lookups = await values('strata_master_cache_lookups');
    const ufsReads = await values('strata_master_ufs_block_reads_total');
    return {
      clientCalls,
      workerCalls,
      errorCalls,
      metaHits: sumSamples(lookups, 'strata_master_cache_lookups', { result: 'hit' }),
      metaMisses: sumSamples(lookups, 'strata_master_cache_lookups', { result: 'miss' }),
      ufsCacheReads: sumSamples(ufsReads, 'strata_master_ufs_block_reads_total', { source: 'cache' }),
      ufsMissReads: sumSamples(ufsReads, 'strata_master_ufs_block_reads_total', { source: 'ufs' }),
    };
  }
}

function workerTotals(samples: readonly PromSample[]): Record<string, number> {
  return {
    readBytes: sumSamples(samples, 'strata_worker_read_bytes_total', { path: CLIENT_PATHS }),
    writeBytes: sumSamples(samples, 'strata_worker_write_bytes_total', { path: CLIENT_PATHS }),
    replicationBytes: sumSamples(samples, 'strata_worker_write_bytes_total', { path: 'replication' }),
  };
}

/** Per-second rates between two totals; a counter that went down restarted at zero. */
function rates(prev: Totals, cur: Totals): Record<string, number> {
  const dtS = (cur.tMs - prev.tMs) / 1000;
  const out: Record<string, number> = {};
  if (dtS <= 0) return out;
  for (const [k, v] of Object.entries(cur.values)) {
    const before = prev.values[k] ?? 0;
    out[k] = (v >= before ? v - before : v) / dtS;
  }
  return out;
}
