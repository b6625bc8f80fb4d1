/**
 * Everything the master does for UFS mounts, built and started in one place: the mount table,
 * the metadata sync, fill assignments, the persist queue, load jobs, and the calls that expose
 * them. The core adds it with `bindings()` around its namespace bindings, `start()` and `stop()`.
 */
import type { ClusterConfig } from '../../common/config/index.js';
import type { Logger } from '../../common/logging.js';
import type { Registry } from '../../common/metrics.js';
import type { MetaStore } from '../../meta/index.js';
import type { BlockManager } from '../blocks/block-manager.js';
import { MetaJobStore } from '../jobs/job-store.js';
import { LoadJobs } from '../jobs/load-job.js';
import type { Namespace } from '../namespace/index.js';
import type { PlacementPolicy } from '../placement/index.js';
import type { Binding } from '../service.js';
import type { WorkerRegistry } from '../workers/registry.js';
import { FillAssigner } from './fill-assigner.js';
import { MountManager } from './mount-manager.js';
import { MountMetrics } from './mount-metrics.js';
import { MountService } from './mount-service.js';
import { PersistQueue } from './persist-queue.js';
import { UfsSync } from './ufs-sync.js';
import { WorkerClients } from './worker-clients.js';

/** Deadline of the reachability and credentials check of a new mount. */
export const MOUNT_CHECK_TIMEOUT_MS = 15_000;
/** How often the persist queue is looked at when nothing kicks it. */
export const PERSIST_PASS_INTERVAL_MS = 1_000;

export interface MasterUfsOptions {
  config: ClusterConfig;
  store: MetaStore;
  namespace: Namespace;
  registry: WorkerRegistry;
  blocks: BlockManager;
  policy: PlacementPolicy;
  log: Logger;
  metricsRegistry?: Registry;
  clock?: () => number;
}

export class MasterUfs {
  readonly mounts: MountManager;
  readonly sync: UfsSync;
  readonly assigner: FillAssigner;
  readonly persist: PersistQueue;
  readonly loads: LoadJobs;
  readonly service: MountService;
  readonly #workers: WorkerClients;

  private constructor(
    mounts: MountManager,
    sync: UfsSync,
    assigner: FillAssigner,
    persist: PersistQueue,
    loads: LoadJobs,
    service: MountService,
    workers: WorkerClients,
  ) {
    this.mounts = mounts;
    this.sync = sync;
    this.assigner = assigner;
    this.persist = persist;
    this.loads = loads;
    this.service = service;
    this.#workers = workers;
  }

  static async open(o: MasterUfsOptions): Promise<MasterUfs> {
    const clock = o.clock ?? Date.now;
    const log = o.log.child({ component: 'master.ufs' });
    const c = o.config;
    const mounts = await MountManager.open({
      store: o.store,
      namespace: o.namespace,
      log,
      ...(o.metricsRegistry === undefined ? {} : { registry: o.metricsRegistry }),
      checkTimeoutMs: MOUNT_CHECK_TIMEOUT_MS,
      clock,
    });
    const defaults = {
      blockSizeBytes: c.client.block_size,
      replicas: c.client.replicas,
      storageType: c.client.storage_type,
    };
    const sync = new UfsSync({
      namespace: o.namespace,
      mounts,
      intervalMs: c.master.ufs_sync_interval,
      defaults,
      log,
      clock,
    });
    mounts.onUnmount = (m) => sync.invalidate(m.path);
    const assigner = new FillAssigner(o.registry, o.policy, clock);
    const workers = new WorkerClients({ connectTimeoutMs: c.client.conn_timeout, log });
    const anyWorker = () => o.registry.all().find((w) => w.state === 'live')?.address;
    const persist = new PersistQueue({
      store: o.store,
      namespace: o.namespace,
      mounts,
      sync,
      blocks: o.blocks,
      workers,
      anyWorker,
      pin: (ids, pinned) => o.blocks.setPinned(ids, pinned),
      concurrency: c.master.persist_concurrency,
      log,
      clock,
    });
    const late: { service?: MountService } = {};
    const loads = new LoadJobs({
      namespace: o.namespace,
      mounts,
      sync,
      blocks: o.blocks,
      assigner,
      workers,
      perWorker: c.master.load_tasks_per_worker,
      liveWorkers: () => o.registry.all().filter((w) => w.state === 'live').length,
      sourceOf: (file, r, b) => {
        if (late.service === undefined) throw new Error('mount service not ready');
        return late.service.sourceOf(file, r, b);
      },
      store: new MetaJobStore(o.store, log),
      // Workers re-register at their next heartbeat and report their blocks with it.
      resumeGraceMs: 2 * c.master.heartbeat_interval,
      log,
      clock,
    });
    await loads.restore();
    const metrics = new MountMetrics(o.metricsRegistry, {
      mounts: () => mounts.table.size,
      persistQueued: () => persist.stats().queued,
      persistRunning: () => persist.stats().running,
      fillAssignments: () => assigner.size,
    });
    const service = new MountService({
      namespace: o.namespace,
      registry: o.registry,
      blocks: o.blocks,
      mounts,
      sync,
      assigner,
      persist,
      loads,
      workers,
      metrics,
      log,
      clock,
      defaults,
    });
    late.service = service;
    return new MasterUfs(mounts, sync, assigner, persist, loads, service, workers);
  }

  bindings(base: readonly Binding<never>[]): Binding<never>[] {
    return this.service.bindings(base);
  }

  start(): void {
    this.persist.start(PERSIST_PASS_INTERVAL_MS);
    this.loads.start();
  }

  async stop(): Promise<void> {
    await this.loads.stop();
    await this.persist.stop();
    await this.#workers.close();
    await this.mounts.close();
  }
}
