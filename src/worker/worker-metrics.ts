/**
 * The worker's Prometheus metrics. Tier figures are read from the tiers at scrape time (never
 * stale); traffic and tiering are counters fed by the data server and by store events.
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_S } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { BlockEvent } from './block-store.js';
import type { TierSet } from './tiers.js';

export type DataPath = 'remote' | 'local' | 'replication';

export class WorkerMetrics {
  readonly readBytes: Counter<'path'>;
  readonly writeBytes: Counter<'path'>;
  readonly readSeconds: Histogram<'path'>;
  readonly writeSeconds: Histogram<'path'>;
  readonly checksumFailures: Counter;
  readonly evictions: Counter<'tier'>;
  readonly demotions: Counter<'from' | 'to'>;
  readonly promotions: Counter<'from' | 'to'>;
  readonly deletions: Counter;
  readonly replications: Counter<'outcome'>;
  readonly heartbeats: Counter<'outcome'>;

  constructor(registry: Registry, tiers: TierSet) {
    const labels = ['tier', 'dir'] as const;
    const perDir = (
      name: string,
      help: string,
      value: (d: ReturnType<TierSet['allDirs']>[number]) => number,
    ) =>
      new Gauge({
        name,
        help,
        labelNames: labels,
        registers: [registry],
        collect() {
          for (const t of tiers.tiers) {
            for (const d of t.dirs) this.set({ tier: t.storageType, dir: d.path }, value(d));
          }
        },
      });
    perDir('strata_worker_capacity_bytes', 'Capacity of each tier directory', (d) => d.capacityBytes);
    perDir(
      'strata_worker_used_bytes',
      'Bytes used in each tier directory (blocks and writes in progress)',
      (d) => d.usedBytes + d.pendingBytes,
    );
    perDir(
      'strata_worker_available_bytes',
      'Bytes still available in each tier directory',
      (d) => d.availableBytes,
    );
    perDir('strata_worker_blocks', 'Blocks stored in each tier directory', (d) => d.blocks);
    this.readBytes = new Counter({
      name: 'strata_worker_read_bytes_total',
      help: 'Block bytes served (remote: streamed over RPC; local: short-circuit opens, by block length)',
      labelNames: ['path'],
      registers: [registry],
    });
    this.writeBytes = new Counter({
      name: 'strata_worker_write_bytes_total',
      help: 'Block bytes stored (remote: streamed; local: short-circuit commits; replication: copied from peers)',
      labelNames: ['path'],
      registers: [registry],
    });
    this.readSeconds = new Histogram({
      name: 'strata_worker_read_seconds',
      help: 'Latency of block reads',
      labelNames: ['path'],
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    });
    this.writeSeconds = new Histogram({
      name: 'strata_worker_write_seconds',
      help: 'Latency of block writes',
      labelNames: ['path'],
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    });
    this.checksumFailures = new Counter({
      name: 'strata_worker_checksum_failures_total',
      help: 'Blocks found corrupt (checksum mismatch or damaged file)',
      registers: [registry],
    });
    this.evictions = new Counter({
      name: 'strata_worker_evictions_total',
      help: 'Blocks dropped to make room (another copy existed)',
      labelNames: ['tier'],
      registers: [registry],
    });
    this.demotions = new Counter({
      name: 'strata_worker_demotions_total',
      help: 'Blocks moved to a slower tier',
      labelNames: ['from', 'to'],
      registers: [registry],
    });
    this.promotions = new Counter({
      name: 'strata_worker_promotions_total',
      help: 'Blocks moved to a faster tier after repeated reads',
      labelNames: ['from', 'to'],
      registers: [registry],
    });
    this.deletions = new Counter({
      name: 'strata_worker_deletions_total',
      help: 'Blocks deleted on the master’s command',
      registers: [registry],
    });
    this.replications = new Counter({
      name: 'strata_worker_replications_total',
      help: 'Blocks copied from another worker on the master’s command',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.heartbeats = new Counter({
      name: 'strata_worker_heartbeats_total',
      help: 'Heartbeats sent to the master',
      labelNames: ['outcome'],
      registers: [registry],
    });
  }

  /** Counts tiering and integrity events from the store. */
  record(e: BlockEvent): void {
    switch (e.kind) {
      case 'moved':
        (e.promotion ? this.promotions : this.demotions).inc({ from: e.from, to: e.to });
        break;
      case 'corrupt':
        this.checksumFailures.inc();
        break;
      case 'removed':
        if (e.reason === 'evicted') this.evictions.inc({ tier: e.storageType });
        else if (e.reason === 'deleted') this.deletions.inc();
        break;
      case 'added':
        break;
    }
  }
}
