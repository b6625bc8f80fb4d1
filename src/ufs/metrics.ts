/**
 * UFS metrics: requests, errors, latency and bytes per scheme and operation. One set per
 * Registry (a process may hold the master's and a worker's registries in `strata local`), shared
 * by every UFS instance on it, so the series stay bounded by schemes × operations.
 */
import { Counter, Histogram, LATENCY_BUCKETS_S } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';

export type UfsOp = 'check' | 'stat' | 'list' | 'read' | 'write' | 'delete' | 'rename' | 'mkdir';

export class UfsMetrics {
  readonly requests: Counter<'scheme' | 'op'>;
  readonly errors: Counter<'scheme' | 'op' | 'code'>;
  readonly seconds: Histogram<'scheme' | 'op'>;
  readonly readBytes: Counter<'scheme'>;
  readonly writtenBytes: Counter<'scheme'>;

  private constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'strata_ufs_requests_total',
      help: 'UFS operations started, by scheme and operation',
      labelNames: ['scheme', 'op'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'strata_ufs_errors_total',
      help: 'UFS operations failed, by scheme, operation and error code',
      labelNames: ['scheme', 'op', 'code'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'strata_ufs_request_seconds',
      help: 'UFS operation latency (for reads: until the first byte is available)',
      labelNames: ['scheme', 'op'],
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    });
    this.readBytes = new Counter({
      name: 'strata_ufs_read_bytes_total',
      help: 'Bytes read from UFS storage',
      labelNames: ['scheme'],
      registers: [registry],
    });
    this.writtenBytes = new Counter({
      name: 'strata_ufs_written_bytes_total',
      help: 'Bytes written to UFS storage',
      labelNames: ['scheme'],
      registers: [registry],
    });
  }

  static readonly #byRegistry = new WeakMap<Registry, UfsMetrics>();

  static for(registry: Registry): UfsMetrics {
    let m = UfsMetrics.#byRegistry.get(registry);
    if (m === undefined) {
      m = new UfsMetrics(registry);
      UfsMetrics.#byRegistry.set(registry, m);
    }
    return m;
  }
}
