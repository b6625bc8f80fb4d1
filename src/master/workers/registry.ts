/**
 * The worker registry: who the workers are, what they hold per tier, whether they are alive,
 * and the commands waiting for their next heartbeat.
 *
 * Liveness: a worker silent for `blacklistIntervalMs` is blacklisted (no new blocks go there; it
 * returns to live with its next heartbeat); silent for `lostIntervalMs` it is lost (the block
 * manager drops its locations and re-replicates). A lost worker, or one this master does not
 * know (after a master restart), is told to register again with a full block report.
 * Decommissioning takes a worker out of placement while its blocks are copied elsewhere.
 */
import type { StorageType } from '../../common/config/data-dir.js';
import { StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type {
  TierUsage,
  WorkerAddress,
  WorkerCommand,
  WorkerInfo,
  WorkerState,
} from '../../protocol/types.js';
import type { PlacementCandidate } from '../placement/index.js';

/** Most block ids one delete command carries (bounds the heartbeat reply). */
export const MAX_DELETES_PER_HEARTBEAT = 10_000;
/** Most replication tasks handed to one worker per heartbeat. */
export const MAX_REPLICATIONS_PER_HEARTBEAT = 64;
/** A delete not confirmed (removedBlocks) within this many heartbeat intervals is sent again. */
export const DELETE_RESEND_HEARTBEATS = 10;
/** Workers one registry accepts. */
export const MAX_WORKERS = 10_000;

export interface ReplicateTask {
  blockId: number;
  length: number;
  source: WorkerAddress;
  storageType: StorageType;
}

export interface WorkerEntry {
  readonly id: string;
  address: WorkerAddress;
  state: WorkerState;
  tiers: TierUsage[];
  version: string;
  registeredAtMs: number;
  lastHeartbeatMs: number;
  /** Bytes promised to blocks placed since the last heartbeat, per tier. */
  reservedBytes: Map<StorageType, number>;
  /** Blocks to delete → when the command was last sent (0 = not yet). */
  deletes: Map<number, number>;
  replications: ReplicateTask[];
  /** Pin changes to send (block → pinned). */
  pins: Map<number, boolean>;
  /** A full block report is being received (from register until the page with last = true). */
  reporting: boolean;
}

export interface RegistryOptions {
  clusterId: string;
  heartbeatIntervalMs: number;
  blacklistIntervalMs: number;
  lostIntervalMs: number;
  log: Logger;
  clock?: () => number;
}

export interface RegistryEvents {
  /** The worker's locations must be forgotten (lost, replaced, re-registered). */
  onWorkerReset?(workerId: string, why: 'lost' | 'registered' | 'replaced'): void;
  /** The worker started draining. */
  onDecommission?(workerId: string): void;
}

export interface RegisterRequest {
  clusterId: string;
  address: WorkerAddress;
  tiers: TierUsage[];
  version: string;
}

export class WorkerRegistry {
  readonly #workers = new Map<string, WorkerEntry>();
  readonly #opts: RegistryOptions;
  readonly #clock: () => number;
  readonly #log: Logger;
  events: RegistryEvents = {};

  constructor(opts: RegistryOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? Date.now;
    this.#log = opts.log;
  }

  get heartbeatIntervalMs(): number {
    return this.#opts.heartbeatIntervalMs;
  }

  register(req: RegisterRequest): WorkerEntry {
    const a = req.address;
    if (req.clusterId !== this.#opts.clusterId) {
      throw new StrataError(
        'STRATA_CLUSTER_MISMATCH',
        `worker ${a.workerId} at ${a.hostname}:${a.rpcPort} belongs to cluster "${req.clusterId}"; ` +
          `this master serves cluster "${this.#opts.clusterId}" (check cluster_id in the worker's configuration)`,
        { details: { workerClusterId: req.clusterId, clusterId: this.#opts.clusterId } },
      );
    }
    if (a.workerId.trim() === '' || a.workerId.length > 128)
      throw new StrataError('STRATA_BAD_REQUEST', 'worker id must be 1-128 characters');
    const now = this.#clock();
    // Another identity at the same address is a worker whose data directory was replaced: the
    // process now listening there is the new one, so the old identity is gone for good.
    for (const w of this.#workers.values()) {
      if (
        w.id !== a.workerId &&
        w.address.hostname === a.hostname &&
        w.address.rpcPort === a.rpcPort &&
        w.state !== 'lost'
      ) {
        this.#log.warn(
          { old: w.id, new: a.workerId, host: a.hostname, port: a.rpcPort },
          'worker replaced at the same address',
        );
        w.state = 'lost';
        w.deletes.clear();
        w.replications = [];
        this.events.onWorkerReset?.(w.id, 'replaced');
      }
    }
    let w = this.#workers.get(a.workerId);
    if (w === undefined) {
      if (this.#workers.size >= MAX_WORKERS)
        throw new StrataError('STRATA_OVERLOADED', `more than ${MAX_WORKERS} workers registered`);
      w = {
        id: a.workerId,
        address: a,
        state: 'live',
        tiers: req.tiers,
        version: req.version,
        registeredAtMs: now,
        lastHeartbeatMs: now,
        reservedBytes: new Map(),
        deletes: new Map(),
        replications: [],
        pins: new Map(),
        reporting: true,
      };
      this.#workers.set(w.id, w);
      this.#log.info({ workerId: w.id, host: a.hostname, port: a.rpcPort }, 'worker registered');
    } else {
      this.events.onWorkerReset?.(w.id, 'registered');
      w.address = a;
      w.tiers = req.tiers;
      w.version = req.version;
      w.registeredAtMs = now;
      w.lastHeartbeatMs = now;
      w.reservedBytes.clear();
      w.deletes.clear();
      w.replications = [];
      w.reporting = true;
      // Draining survives a restart of the worker; anything else starts live again.
      if (w.state !== 'decommissioning' && w.state !== 'decommissioned') w.state = 'live';
      this.#log.info(
        { workerId: w.id, host: a.hostname, port: a.rpcPort, state: w.state },
        'worker registered again',
      );
    }
    return w;
  }

  get(workerId: string): WorkerEntry | undefined {
    return this.#workers.get(workerId);
  }

  /** The entry of a worker allowed to report, or undefined when it must register first. */
  active(workerId: string): WorkerEntry | undefined {
    const w = this.#workers.get(workerId);
    return w === undefined || w.state === 'lost' ? undefined : w;
  }

  /** Updates usage and liveness from a heartbeat; undefined means "register again". */
  heartbeat(workerId: string, tiers: TierUsage[]): WorkerEntry | undefined {
    const w = this.active(workerId);
    if (w === undefined) return undefined;
    w.tiers = tiers;
    w.lastHeartbeatMs = this.#clock();
    w.reservedBytes.clear();
    if (w.state === 'blacklisted') {
      w.state = 'live';
      this.#log.info({ workerId }, 'worker back from the blacklist');
    }
    return w;
  }

  /** The commands for this heartbeat reply (deletes due, replication tasks). */
  takeCommands(w: WorkerEntry): WorkerCommand[] {
    const out: WorkerCommand[] = [];
    const now = this.#clock();
    const resendAfter = DELETE_RESEND_HEARTBEATS * this.#opts.heartbeatIntervalMs;
    const del: number[] = [];
    for (const [id, sentAt] of w.deletes) {
      if (del.length >= MAX_DELETES_PER_HEARTBEAT) break;
      if (sentAt === 0 || now - sentAt >= resendAfter) {
        del.push(id);
        w.deletes.set(id, now);
      }
    }
    if (del.length > 0) out.push({ type: 'delete', blockIds: del });
    if (w.replications.length > 0) {
      const tasks = w.replications.splice(0, MAX_REPLICATIONS_PER_HEARTBEAT);
      out.push({ type: 'replicate', tasks });
    }
    if (w.pins.size > 0) {
      const on: number[] = [];
      const off: number[] = [];
      for (const [id, pinned] of w.pins) {
        if (on.length + off.length >= MAX_DELETES_PER_HEARTBEAT) break;
        (pinned ? on : off).push(id);
      }
      for (const id of [...on, ...off]) w.pins.delete(id);
      if (on.length > 0) out.push({ type: 'pin', blockIds: on, pinned: true });
      if (off.length > 0) out.push({ type: 'pin', blockIds: off, pinned: false });
    }
    return out;
  }

  /** Pins (or unpins) a block on a worker with its next heartbeat reply. */
  queuePin(workerId: string, blockId: number, pinned: boolean): void {
    const w = this.#workers.get(workerId);
    if (w !== undefined && w.state !== 'lost') w.pins.set(blockId, pinned);
  }

  queueDelete(workerId: string, blockId: number): void {
    const w = this.#workers.get(workerId);
    if (w !== undefined && w.state !== 'lost' && !w.deletes.has(blockId)) w.deletes.set(blockId, 0);
  }

  /**
   * Whether a delete of the block is queued for the worker: 'queued' (not sent yet), 'sent', or
   * undefined.
   */
  pendingDelete(workerId: string, blockId: number): 'queued' | 'sent' | undefined {
    const at = this.#workers.get(workerId)?.deletes.get(blockId);
    return at === undefined ? undefined : at === 0 ? 'queued' : 'sent';
  }

  /** Takes back a delete not sent yet (the block is wanted there again). */
  cancelDelete(workerId: string, blockId: number): boolean {
    const w = this.#workers.get(workerId);
    if (w?.deletes.get(blockId) !== 0) return false;
    w.deletes.delete(blockId);
    return true;
  }

  /** The worker confirmed a block is gone. */
  deleteConfirmed(workerId: string, blockId: number): void {
    this.#workers.get(workerId)?.deletes.delete(blockId);
  }

  queueReplication(targetId: string, task: ReplicateTask): void {
    this.#workers.get(targetId)?.replications.push(task);
  }

  reserve(workerId: string, type: StorageType, bytes: number): void {
    const w = this.#workers.get(workerId);
    if (w !== undefined) w.reservedBytes.set(type, (w.reservedBytes.get(type) ?? 0) + bytes);
  }

  /** Moves silent workers down the liveness ladder; returns the workers that became lost. */
  checkLiveness(): string[] {
    const now = this.#clock();
    const lost: string[] = [];
    for (const w of this.#workers.values()) {
      if (w.state === 'lost' || w.state === 'decommissioned') continue;
      const silentMs = now - w.lastHeartbeatMs;
      if (silentMs > this.#opts.lostIntervalMs) {
        this.#log.warn({ workerId: w.id, silentMs, host: w.address.hostname }, 'worker lost');
        w.state = 'lost';
        w.deletes.clear();
        w.replications = [];
        w.reservedBytes.clear();
        lost.push(w.id);
        this.events.onWorkerReset?.(w.id, 'lost');
      } else if (silentMs > this.#opts.blacklistIntervalMs && w.state === 'live') {
        this.#log.warn({ workerId: w.id, silentMs }, 'worker blacklisted: no heartbeat');
        w.state = 'blacklisted';
      }
    }
    return lost;
  }

  /** Starts draining a worker named by id or "host:port". */
  decommission(name: string): WorkerEntry {
    const w = this.find(name);
    if (w === undefined) {
      const known = [...this.#workers.values()].map((x) => `${x.address.hostname}:${x.address.rpcPort}`);
      throw new StrataError(
        'STRATA_WORKER_UNKNOWN',
        `no worker "${name}" (give a worker id or host:port; known: ${known.length === 0 ? 'none' : known.join(', ')})`,
      );
    }
    if (w.state === 'lost')
      throw new StrataError('STRATA_WORKER_LOST', `worker ${name} is lost; nothing to drain`);
    if (w.state !== 'decommissioning' && w.state !== 'decommissioned') {
      w.state = 'decommissioning';
      this.#log.info({ workerId: w.id }, 'worker decommissioning');
      this.events.onDecommission?.(w.id);
    }
    return w;
  }

  markDecommissioned(workerId: string): void {
    const w = this.#workers.get(workerId);
    if (w?.state === 'decommissioning') {
      w.state = 'decommissioned';
      this.#log.info({ workerId }, 'worker decommissioned: every block has copies elsewhere');
    }
  }

  find(name: string): WorkerEntry | undefined {
    const byId = this.#workers.get(name);
    if (byId !== undefined) return byId;
    for (const w of this.#workers.values()) {
      if (`${w.address.hostname}:${w.address.rpcPort}` === name) return w;
    }
    return undefined;
  }

  all(): WorkerEntry[] {
    return [...this.#workers.values()];
  }

  candidates(): PlacementCandidate[] {
    return [...this.#workers.values()].map((w) => ({
      id: w.id,
      address: w.address,
      state: w.state,
      tiers: w.tiers,
      reservedBytes: w.reservedBytes,
    }));
  }

  info(w: WorkerEntry, blocks: number): WorkerInfo {
    let capacityBytes = 0;
    let usedBytes = 0;
    let availableBytes = 0;
    for (const t of w.tiers) {
      capacityBytes += t.capacityBytes;
      usedBytes += t.usedBytes;
      availableBytes += t.availableBytes;
    }
    return {
      address: w.address,
      state: w.state,
      tiers: w.tiers,
      capacityBytes,
      usedBytes,
      availableBytes,
      blocks,
      lastHeartbeatMs: w.lastHeartbeatMs,
      registeredAtMs: w.registeredAtMs,
      version: w.version,
    };
  }

  countByState(): Record<WorkerState, number> {
    const c: Record<WorkerState, number> = {
      live: 0,
      blacklisted: 0,
      lost: 0,
      decommissioning: 0,
      decommissioned: 0,
    };
    for (const w of this.#workers.values()) c[w.state]++;
    return c;
  }
}
