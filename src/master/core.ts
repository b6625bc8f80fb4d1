/**
 * The master without its servers: namespace, worker registry, block manager, placement, and the
 * periodic work (liveness and replication, lease recovery, TTL, trash purge). The process
 * (master.ts) adds the store, the RPC and HTTP servers and signals; tests drive a core directly.
 */
import type { ClusterConfig } from '../common/config/index.js';
import type { Logger } from '../common/logging.js';
import type { MetaStore } from '../meta/index.js';
import type { MasterInfo } from '../protocol/types.js';
import type { RetryRecords } from './ha/retry-records.js';
import { BlockManager } from './blocks/block-manager.js';
import { Namespace } from './namespace/index.js';
import type { NamespaceOptions } from './namespace/index.js';
import { createPlacementPolicy } from './placement/index.js';
import type { PlacementPolicy, Rng } from './placement/index.js';
import { masterBindings } from './service.js';
import type { Binding } from './service.js';
import { WorkerRegistry } from './workers/registry.js';
import { MasterUfs } from './mounts/master-ufs.js';
import type { Registry } from '../common/metrics.js';

/** Longest pause between two sweeps of expired request outcomes. */
const RETRY_SWEEP_MAX_MS = 60_000;
/** Longest pause between two liveness/replication passes, whatever the intervals. */
const MAX_TICK_MS = 1000;
const MIN_TICK_MS = 10;

export interface MasterCoreOptions {
  config: ClusterConfig;
  store: MetaStore;
  log: Logger;
  clock?: () => number;
  rng?: Rng;
  rpcAddress?: () => string;
  webAddress?: () => string;
  /** Overrides for tests (cache sizes, inline delete limit…). */
  namespace?: Partial<NamespaceOptions>;
  /** Request outcomes recorded in the store (exactly-once retries across restarts and failovers). */
  retryRecords?: RetryRecords;
  /** Every master and its role, for GetClusterInfo (HA); absent: this one alone. */
  masters?: () => MasterInfo[];
  /** Where mount and UFS metrics go. */
  registry?: Registry;
}

export class MasterCore {
  readonly namespace: Namespace;
  readonly registry: WorkerRegistry;
  readonly blocks: BlockManager;
  readonly policy: PlacementPolicy;
  readonly ufs: MasterUfs;
  readonly startedAtMs: number;
  readonly #log: Logger;
  readonly #config: ClusterConfig;
  readonly #opts: MasterCoreOptions;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #running = new Set<Promise<unknown>>();
  #stopped = false;

  private constructor(
    opts: MasterCoreOptions,
    ns: Namespace,
    registry: WorkerRegistry,
    blocks: BlockManager,
    policy: PlacementPolicy,
    ufs: MasterUfs,
  ) {
    this.#opts = opts;
    this.ufs = ufs;
    this.#config = opts.config;
    this.#log = opts.log;
    this.namespace = ns;
    this.registry = registry;
    this.blocks = blocks;
    this.policy = policy;
    this.startedAtMs = (opts.clock ?? Date.now)();
  }

  static async open(opts: MasterCoreOptions): Promise<MasterCore> {
    const m = opts.config.master;
    const c = opts.config.client;
    const log = opts.log;
    const clock = opts.clock ?? Date.now;
    const registry = new WorkerRegistry({
      clusterId: opts.config.cluster_id,
      heartbeatIntervalMs: m.heartbeat_interval,
      blacklistIntervalMs: m.worker_blacklist_interval,
      lostIntervalMs: m.worker_lost_interval,
      log: log.child({ component: 'master.workers' }),
      clock,
    });
    const policy = createPlacementPolicy(m.worker_policy, opts.rng);
    // The namespace reports to the block manager, which needs the namespace: tie the knot late.
    const late: { blocks?: BlockManager } = {};
    const ns = await Namespace.open({
      store: opts.store,
      clusterId: opts.config.cluster_id,
      defaults: {
        blockSizeBytes: c.block_size,
        replicas: c.replicas,
        storageType: c.storage_type,
        ttlMs: c.ttl_ms,
        ttlAction: c.ttl_action,
      },
      leaseTimeoutMs: m.file_lease_timeout,
      log: log.child({ component: 'master.namespace' }),
      clock,
      events: {
        blocksRemoved: (ids) => late.blocks?.blocksRemoved(ids),
        blocksCommitted: (file, bs) => late.blocks?.blocksCommitted(file, bs),
        // Only files whose data a UFS holds may lose their cached copies.
        canFree: (file) => file.ufs?.persisted === true,
        blocksFreed: (ids) => late.blocks?.dropCopies(ids),
      },
      cachedBytes: (file) => late.blocks?.cachedBytes(file),
      ...(opts.retryRecords === undefined ? {} : { recorder: opts.retryRecords }),
      ...opts.namespace,
    });
    const blocks = new BlockManager({
      registry,
      catalog: ns,
      policy,
      // A file whose data its UFS holds may lose cached copies freely (eviction, free, TTL).
      hasUfsCopy: (file) => file.ufs?.persisted === true,
      log: log.child({ component: 'master.blocks' }),
      clock,
    });
    late.blocks = blocks;
    const ufs = await MasterUfs.open({
      config: opts.config,
      store: opts.store,
      namespace: ns,
      registry,
      blocks,
      policy,
      log,
      ...(opts.registry === undefined ? {} : { metricsRegistry: opts.registry }),
      clock,
    });
    return new MasterCore(opts, ns, registry, blocks, policy, ufs);
  }

  bindings(): Binding<never>[] {
    const base = masterBindings({
      clusterId: this.#config.cluster_id,
      namespace: this.namespace,
      registry: this.registry,
      blocks: this.blocks,
      policy: this.policy,
      rpcAddress:
        this.#opts.rpcAddress ?? (() => `${this.#config.master.hostname}:${this.#config.master.rpc_port}`),
      webAddress:
        this.#opts.webAddress ?? (() => `${this.#config.master.hostname}:${this.#config.master.web_port}`),
      startedAtMs: this.startedAtMs,
      ...(this.#opts.masters === undefined ? {} : { masters: this.#opts.masters }),
    });
    return this.ufs.bindings(base);
  }

  /** Starts the periodic work. */
  start(): void {
    const m = this.#config.master;
    const tickMs = clamp(
      Math.min(m.heartbeat_interval, m.worker_blacklist_interval / 2),
      MIN_TICK_MS,
      MAX_TICK_MS,
    );
    const leaseMs = clamp(m.file_lease_timeout / 4, MIN_TICK_MS, MAX_TICK_MS);
    this.#every('blocks', tickMs, () => this.blocks.tick());
    this.#every('leases', leaseMs, () => this.namespace.recoverExpiredLeases());
    this.#every('ttl', m.ttl_checker_interval, () => this.runTtl());
    const records = this.#opts.retryRecords;
    if (records !== undefined)
      this.#every('retry-records', clamp(m.retry_cache_ttl / 4, MIN_TICK_MS, RETRY_SWEEP_MAX_MS), () =>
        records.sweep(),
      );
    this.#track(this.namespace.purgeTrash());
    this.ufs.start();
  }

  /** Runs the TTL checker until no expired entry is left. */
  async runTtl(): Promise<void> {
    for (let pass = 0; pass < 1000 && !this.#stopped; pass++) {
      const r = await this.namespace.runTtl();
      if (r.deleted + r.freed + r.skipped === 0) return;
    }
  }

  #every(name: string, ms: number, fn: () => Promise<unknown>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.#stopped) return;
      busy = true;
      this.#track(
        fn()
          .catch((err: unknown) => this.#log.error({ err, task: name }, 'periodic task failed'))
          .finally(() => {
            busy = false;
          }),
      );
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  #track(p: Promise<unknown>): void {
    this.#running.add(p);
    void p.finally(() => this.#running.delete(p));
  }

  /** Stops the periodic work and waits for what is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    await this.ufs.stop();
    await Promise.allSettled([...this.#running]);
    await this.namespace.idle();
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}
