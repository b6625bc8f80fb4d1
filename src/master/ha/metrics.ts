/**
 * Metrics of an HA master: `strata_master_is_leader` (1 on the leader, 0 on a standby),
 * `strata_master_leadership_changes_total{event}` (this master elected / deposed),
 * `strata_master_fenced_commits_total` (commits a deposed leader tried and the fence refused),
 * `strata_master_etcd_request_duration_seconds{op,result}` (every request to etcd: reads, commits,
 * lease keepalives), and the etcd engine's cache and transaction counts.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { LATENCY_BUCKETS_S } from '../../common/metrics.js';
import type { EtcdObserver } from '../../meta/etcd/index.js';

export interface HaMetrics {
  readonly observeEtcd: EtcdObserver;
  elected(): void;
  deposed(reason: string): void;
  /** A commit was refused by the fence (this master had lost leadership). */
  fenced(): void;
}

export interface HaMetricsSources {
  isLeader: () => boolean;
  etcdCache?: () => { entries: number; hits: number; misses: number };
}

export function registerHaMetrics(registry: Registry, src: HaMetricsSources): HaMetrics {
  const registers = [registry];
  new Gauge({
    name: 'strata_master_is_leader',
    help: '1 when this master is the leader (serving), 0 on a standby',
    registers,
    collect() {
      this.set(src.isLeader() ? 1 : 0);
    },
  });
  const changes = new Counter({
    name: 'strata_master_leadership_changes_total',
    help: 'Times this master became leader (event="elected") or stopped being leader (event="deposed")',
    labelNames: ['event'],
    registers,
  });
  changes.inc({ event: 'elected' }, 0);
  changes.inc({ event: 'deposed' }, 0);
  const fenced = new Counter({
    name: 'strata_master_fenced_commits_total',
    help: 'Metadata commits refused because this master no longer held leadership (the fence)',
    registers,
  });
  const latency = new Histogram({
    name: 'strata_master_etcd_request_duration_seconds',
    help: 'Requests to etcd by kind (range, read_txn, commit, put, delete, lease) and result',
    labelNames: ['op', 'result'],
    buckets: LATENCY_BUCKETS_S,
    registers,
  });
  const cache = src.etcdCache;
  if (cache !== undefined) {
    new Gauge({
      name: 'strata_master_etcd_cache_entries',
      help: 'Entries the etcd engine holds in its validated cache',
      registers,
      collect() {
        this.set(cache().entries);
      },
    });
    new Gauge({
      name: 'strata_master_etcd_cache_lookups',
      help: 'Lookups of the etcd engine cache since start, by result',
      labelNames: ['result'],
      registers,
      collect() {
        const c = cache();
        this.set({ result: 'hit' }, c.hits);
        this.set({ result: 'miss' }, c.misses);
      },
    });
  }
  return {
    observeEtcd: (op, seconds, ok) => latency.observe({ op, result: ok ? 'ok' : 'error' }, seconds),
    elected: () => changes.inc({ event: 'elected' }),
    deposed: () => changes.inc({ event: 'deposed' }),
    fenced: () => fenced.inc(),
  };
}
