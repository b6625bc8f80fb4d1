/**
 * Client metrics on an optional Prometheus registry (the host process's: FUSE, S3 gateway,
 * proxy). Without a registry nothing is recorded. Bytes are split by path: `local` is
 * short-circuit (block files opened directly), `remote` is block RPC to a worker, `ufs` is read
 * through a worker from a mount's UFS (the cache hit ratio is (local + remote) / all). Several clients
 * may share one registry: they share the metrics too.
 */
import { Counter, Histogram, LATENCY_BUCKETS_S } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';

/** `ufs`: read through a worker from a mount's UFS (a cache miss). */
export type IoPath = 'local' | 'remote' | 'ufs';

export class ClientMetrics {
  readonly #readBytes: Counter<'path'>;
  readonly #writeBytes: Counter<'path'>;
  readonly #blockReads: Counter<'path'>;
  readonly #failovers: Counter<'op'>;
  readonly #replacements: Counter;
  readonly #spilledBytes: Counter;
  readonly #masterCalls: Counter<'call' | 'result'>;
  readonly #masterLatency: Histogram<'call'>;

  constructor(registry: Registry) {
    this.#readBytes = counter(registry, {
      name: 'strata_client_read_bytes_total',
      help: 'Bytes read by the client from workers, by path (local = short-circuit).',
      labelNames: ['path'],
    });
    this.#writeBytes = counter(registry, {
      name: 'strata_client_write_bytes_total',
      help: 'Bytes written by the client to workers (each replica counted), by path.',
      labelNames: ['path'],
    });
    this.#blockReads = counter(registry, {
      name: 'strata_client_block_reads_total',
      help: 'Block read operations, by path (local = short-circuit).',
      labelNames: ['path'],
    });
    this.#failovers = counter(registry, {
      name: 'strata_client_worker_failovers_total',
      help: 'Times a worker failed a read or write and another replica or placement was used.',
      labelNames: ['op'],
    });
    this.#replacements = counter(registry, {
      name: 'strata_client_block_replacements_total',
      help: 'Blocks abandoned mid-write and placed again on other workers.',
    });
    this.#spilledBytes = counter(registry, {
      name: 'strata_client_spilled_bytes_total',
      help: 'Bytes writers kept in temp files because the memory budget was used up.',
    });
    this.#masterCalls = counter(registry, {
      name: 'strata_client_master_calls_total',
      help: 'Calls to the master, by call name and result.',
      labelNames: ['call', 'result'],
    });
    this.#masterLatency = histogram(registry, {
      name: 'strata_client_master_call_seconds',
      help: 'Latency of calls to the master.',
      labelNames: ['call'],
      buckets: LATENCY_BUCKETS_S,
    });
  }

  read(path: IoPath, bytes: number): void {
    this.#readBytes.inc({ path }, bytes);
  }

  blockRead(path: IoPath): void {
    this.#blockReads.inc({ path });
  }

  write(path: IoPath, bytes: number): void {
    this.#writeBytes.inc({ path }, bytes);
  }

  failover(op: 'read' | 'write'): void {
    this.#failovers.inc({ op });
  }

  replacement(): void {
    this.#replacements.inc();
  }

  spilled(bytes: number): void {
    this.#spilledBytes.inc(bytes);
  }

  masterCall(call: string, result: 'ok' | 'error', ms: number): void {
    this.#masterCalls.inc({ call, result });
    this.#masterLatency.observe({ call }, ms / 1000);
  }
}

function counter<L extends string>(
  registry: Registry,
  cfg: { name: string; help: string; labelNames?: readonly L[] },
): Counter<L> {
  const existing = registry.getSingleMetric(cfg.name);
  if (existing instanceof Counter) return existing;
  return new Counter<L>({ ...cfg, registers: [registry] });
}

function histogram<L extends string>(
  registry: Registry,
  cfg: { name: string; help: string; labelNames?: readonly L[]; buckets: number[] },
): Histogram<L> {
  const existing = registry.getSingleMetric(cfg.name);
  if (existing instanceof Histogram) return existing;
  return new Histogram<L>({ ...cfg, registers: [registry] });
}
