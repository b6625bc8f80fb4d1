/**
 * The worker process assembled: data directories and identity, tiers, the block store, eviction,
 * the data server on the RPC, the ops HTTP server, and the link to the master. `stop` shuts down
 * in the reverse order, letting in-flight streams finish within a bound.
 */
import type { ClusterConfig } from '../common/config/index.js';
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { OpsHttpServer } from '../common/ops-http.js';
import type { HealthState } from '../common/ops-http.js';
import { STRATA_VERSION } from '../common/version.js';
import { MAX_EVICT_CANDIDATES } from '../protocol/master-calls.js';
import type { WorkerAddress, WorkerCommand } from '../protocol/index.js';
import { BlockDelta } from './block-delta.js';
import { BlockStore } from './block-store.js';
import { DataServer } from './data-server.js';
import type { CallRegistry } from './data-server.js';
import { Evictor } from './eviction.js';
import { machineHostId, prepareDataDirs } from './identity.js';
import { LocalWrites } from './local-write.js';
import { MasterLink } from './master-link.js';
import type { MasterClient } from './master-link.js';
import { Replicator } from './replicator.js';
import { Scrubber } from './scrubber.js';
import type { PeerReader } from './replicator.js';
import { buildTiers } from './tiers.js';
import type { TierSet } from './tiers.js';
import type { StatFs } from './tier-dir.js';
import { WorkerMetrics } from './worker-metrics.js';
import { WorkerMounts } from './ufs-mounts.js';
import { WorkerUfs } from './ufs-service.js';

/** Default bound for in-flight streams to finish on shutdown. */
export const DEFAULT_STOP_GRACE_MS = 8_000;
/**
 * Beyond two heartbeat intervals, how long a write waits for eviction before ENOSPC: dropping
 * needs the master's permission, asked on a heartbeat sent at once.
 */
const SPACE_WAIT_EXTRA_MS = 1_000;

/** The RPC pieces the worker needs; the CLI builds them on RpcServer and RpcClient. */
export interface WorkerRpc {
  server: CallRegistry & {
    listen(host: string, port: number): Promise<{ host: string; port: number }>;
    close(graceMs?: number): Promise<void>;
  };
  master: MasterClient & { close(): Promise<void> };
  peers: PeerReader & { close(): Promise<void> };
}

export interface WorkerStartOptions {
  config: ClusterConfig;
  log: Logger;
  registry: Registry;
  rpc: WorkerRpc;
  /** Overrides the machine id (tests). */
  hostId?: string;
  statFs?: StatFs;
}

export class Worker {
  readonly workerId: string;
  readonly address: WorkerAddress;
  readonly store: BlockStore;
  readonly tiers: TierSet;
  readonly evictor: Evictor;
  readonly scrubber: Scrubber;
  readonly link: MasterLink;
  readonly #rpc: WorkerRpc;
  readonly #http: OpsHttpServer;
  readonly #dataServer: DataServer;
  readonly #replicator: Replicator;
  readonly #localWrites: LocalWrites;
  readonly #ufs: WorkerUfs;
  readonly #mounts: WorkerMounts;
  readonly #log: Logger;
  #stopping: Promise<void> | undefined;

  private constructor(parts: {
    workerId: string;
    address: WorkerAddress;
    store: BlockStore;
    tiers: TierSet;
    evictor: Evictor;
    scrubber: Scrubber;
    link: MasterLink;
    rpc: WorkerRpc;
    http: OpsHttpServer;
    dataServer: DataServer;
    replicator: Replicator;
    localWrites: LocalWrites;
    ufs: WorkerUfs;
    mounts: WorkerMounts;
    log: Logger;
  }) {
    this.workerId = parts.workerId;
    this.address = parts.address;
    this.store = parts.store;
    this.tiers = parts.tiers;
    this.evictor = parts.evictor;
    this.scrubber = parts.scrubber;
    this.link = parts.link;
    this.#rpc = parts.rpc;
    this.#http = parts.http;
    this.#dataServer = parts.dataServer;
    this.#replicator = parts.replicator;
    this.#localWrites = parts.localWrites;
    this.#ufs = parts.ufs;
    this.#mounts = parts.mounts;
    this.#log = parts.log;
  }

  static async start(opts: WorkerStartOptions): Promise<Worker> {
    const { config, registry, rpc } = opts;
    const log = opts.log.child({ component: 'worker' });
    const w = config.worker;
    const workerId = await prepareDataDirs(
      w.data_dir.map((d) => d.path),
      { clusterId: config.cluster_id, format: config.format_worker, log },
    );
    const tiers = buildTiers(config, { log, ...(opts.statFs === undefined ? {} : { statFs: opts.statFs }) });
    const late: { evictor?: Evictor } = {};
    const store = await BlockStore.open({
      tiers,
      log,
      spaceWaitMs: 2 * config.master.heartbeat_interval + SPACE_WAIT_EXTRA_MS,
      onSpaceNeeded: (tier, bytes) => late.evictor?.needSpace(tier, bytes),
    });
    const r = store.recovery;
    log.info(
      {
        workerId,
        blocks: store.size,
        stagingFilesRemoved: r.stagingFilesRemoved,
        corrupt: r.corrupt.length,
        duplicatesRemoved: r.duplicatesRemoved,
        tiers: tiers.usage(),
      },
      'block store opened',
    );
    const metrics = new WorkerMetrics(registry, tiers);
    const delta = new BlockDelta();
    for (const id of r.corrupt) delta.markCorrupt(id);
    const dropCandidates = new Set<number>();
    const holder: { link?: MasterLink } = {};
    const evictor = new Evictor({
      store,
      tiers,
      intervalMs: w.eviction_interval,
      promoteAfterReads: w.promote_after_reads,
      log: log.child({ component: 'worker.eviction' }),
      requestDrop: (ids) => {
        for (const id of ids) dropCandidates.add(id);
        holder.link?.heartbeatSoon();
      },
    });
    late.evictor = evictor;
    store.on((e) => {
      delta.record(e);
      metrics.record(e);
      if (e.kind === 'removed' || e.kind === 'corrupt') {
        evictor.forget(e.blockId);
        dropCandidates.delete(e.blockId);
      }
    });
    const localWrites = new LocalWrites({ store, log });
    const dataServer = new DataServer({
      store,
      evictor,
      localWrites,
      metrics,
      promoteAfterReads: w.promote_after_reads,
      log,
    });
    const replicator = new Replicator({ store, peers: rpc.peers, log, metrics });
    const scrubber = new Scrubber({
      store,
      rateBytesPerSec: w.scrub_rate,
      intervalMs: w.scrub_interval,
      // The store already queued the corrupt block for the heartbeat; send it now.
      onCorrupt: () => holder.link?.heartbeatSoon(),
      registry,
      log: log.child({ component: 'worker.scrub' }),
    });

    const state: { worker?: Worker } = {};
    const http = new OpsHttpServer({
      host: w.bind_host,
      port: w.web_port,
      registry,
      log,
      live: () => ({ ok: true, workerId }),
      ready: () => state.worker?.readiness() ?? { ok: false, reason: 'starting' },
    });
    const web = await http.listen();
    const mounts = new WorkerMounts({ master: rpc.master, workerId, log, registry });
    const ufs = new WorkerUfs({
      workerId,
      store,
      dataServer,
      mounts,
      peers: rpc.peers,
      maxConcurrentFills: w.ufs_fill_concurrency,
      registry,
      log,
    });
    let bound: { host: string; port: number };
    try {
      dataServer.register(rpc.server);
      ufs.register(rpc.server);
      bound = await rpc.server.listen(w.bind_host, w.rpc_port);
    } catch (err) {
      await http.close();
      await store.close();
      throw err;
    }
    const address: WorkerAddress = {
      workerId,
      hostname: w.hostname,
      rpcPort: bound.port,
      webPort: web.port,
      hostId: opts.hostId ?? machineHostId(),
    };
    const link = new MasterLink({
      client: rpc.master,
      clusterId: config.cluster_id,
      address,
      version: STRATA_VERSION,
      store,
      delta,
      tierUsage: () => tiers.usage(),
      heartbeatIntervalMs: config.master.heartbeat_interval,
      onCommand: (cmd) =>
        runCommand(cmd, {
          store,
          evictor,
          replicator,
          confirmAbsent: (blockId) => delta.markRemoved(blockId),
        }),
      takeEvictCandidates: () => {
        const ids = [...dropCandidates].filter((id) => store.has(id)).slice(0, MAX_EVICT_CANDIDATES);
        for (const id of ids) dropCandidates.delete(id);
        return ids;
      },
      failedReplications: {
        take: () => replicator.takeFailed(),
        restore: (ids) => replicator.restoreFailed(ids),
      },
      metrics,
      log: log.child({ component: 'worker.heartbeat' }),
    });
    holder.link = link;
    const worker = new Worker({
      workerId,
      address,
      store,
      tiers,
      evictor,
      scrubber,
      link,
      rpc,
      http,
      dataServer,
      replicator,
      localWrites,
      ufs,
      mounts,
      log,
    });
    state.worker = worker;
    evictor.start();
    evictor.kick();
    link.start();
    scrubber.start();
    log.info(
      {
        workerId,
        rpc: `${bound.host}:${bound.port}`,
        web: `${web.address}:${web.port}`,
        hostId: address.hostId,
      },
      'worker serving',
    );
    return worker;
  }

  /** Ready = serving blocks and registered with the master (it knows our blocks). */
  readiness(): HealthState {
    if (this.#stopping !== undefined) return { ok: false, reason: 'stopping' };
    if (!this.link.everRegistered) {
      return { ok: false, reason: `not registered with the master yet${suffix(this.link.lastError)}` };
    }
    return {
      ok: true,
      workerId: this.workerId,
      registered: this.link.registered,
      lastHeartbeatOkMs: this.link.lastHeartbeatOkMs,
      blocks: this.store.size,
    };
  }

  /**
   * Graceful stop: refuse new calls, let streams in flight finish within `graceMs` (then abort
   * them: their staging files are removed), stop heartbeats and eviction, close servers.
   */
  stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#log.info({ graceMs }, 'worker stopping');
    this.#dataServer.stop();
    await this.#rpc.server.close(graceMs);
    this.#ufs.stop();
    await this.#mounts.close();
    await this.link.stop();
    await this.#replicator.stop();
    await this.evictor.stop();
    await this.scrubber.stop();
    await this.#localWrites.close();
    await this.store.close();
    await this.#http.close();
    await Promise.allSettled([this.#rpc.master.close(), this.#rpc.peers.close()]);
    this.#log.info('worker stopped');
  }
}

interface CommandTargets {
  store: BlockStore;
  evictor: Evictor;
  replicator: Replicator;
  /** Tells the master a block it asked to delete is not here (it resends until it hears so). */
  confirmAbsent: (blockId: number) => void;
}

/** Carries out one master command. */
export async function runCommand(cmd: WorkerCommand, t: CommandTargets): Promise<void> {
  switch (cmd.type) {
    case 'delete':
      for (const id of cmd.blockIds) {
        const evicted = t.evictor.wasDropRequested(id);
        if (!(await t.store.delete(id, evicted ? 'evicted' : 'deleted'))) t.confirmAbsent(id);
      }
      return;
    case 'replicate':
      t.replicator.enqueue(cmd.tasks);
      return;
    case 'pin':
      await t.store.setPinned(cmd.blockIds, cmd.pinned);
      if (!cmd.pinned) t.evictor.kick();
      return;
    case 'register':
      // Handled by the master link itself.
      return;
  }
}

function suffix(err: string | undefined): string {
  return err === undefined ? '' : ` (${err})`;
}
