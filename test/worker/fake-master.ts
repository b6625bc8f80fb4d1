/**
 * A stand-in master for worker tests before (and beside) the real one: an RpcServer on loopback
 * that serves RegisterWorker, BlockReport and Heartbeat, records what workers said, keeps their
 * block lists from reports and deltas, and hands out the commands a test queues.
 */
import type { TestContext } from 'node:test';
import { MasterCalls } from '../../src/protocol/index.js';
import type { TierUsage, WorkerAddress, WorkerCommand } from '../../src/protocol/index.js';
import { RpcServer } from '../../src/rpc/index.js';
import { StrataError } from '../../src/common/errors.js';

export interface KnownBlock {
  length: number;
  storageType: string;
}

export interface KnownWorker {
  address: WorkerAddress;
  blocks: Map<number, KnownBlock>;
  tiers: TierUsage[];
  reportDone: boolean;
  heartbeats: number;
  corrupt: number[];
  evictAsked: number[];
  /** Replication tasks the worker reported failed. */
  failedReplications: number[];
}

export class FakeMaster {
  readonly server: RpcServer;
  readonly clusterId: string;
  readonly workers = new Map<string, KnownWorker>();
  readonly registrations: string[] = [];
  /** Commands handed to the next heartbeat of each worker id. */
  readonly queued = new Map<string, WorkerCommand[]>();
  /** Which eviction candidates may go (another copy exists). */
  grantEvict: (blockId: number) => boolean = () => false;
  heartbeatIntervalMs = 100;
  port = 0;

  private constructor(clusterId: string) {
    this.clusterId = clusterId;
    this.server = new RpcServer();
    this.server.handle(MasterCalls.RegisterWorker, async (req) => {
      if (req.clusterId !== this.clusterId) {
        throw new StrataError(
          'STRATA_WRONG_CLUSTER',
          `worker of cluster "${req.clusterId}" refused by cluster "${this.clusterId}"`,
        );
      }
      this.registrations.push(req.address.workerId);
      this.workers.set(req.address.workerId, {
        address: req.address,
        blocks: new Map(),
        tiers: req.tiers,
        reportDone: false,
        heartbeats: 0,
        corrupt: [],
        evictAsked: [],
        failedReplications: [],
      });
      return { heartbeatIntervalMs: this.heartbeatIntervalMs };
    });
    this.server.handle(MasterCalls.BlockReport, async (req) => {
      const w = this.workers.get(req.workerId);
      if (w === undefined) throw new StrataError('STRATA_UNKNOWN_WORKER', `unknown worker ${req.workerId}`);
      for (const b of req.blocks) w.blocks.set(b.blockId, { length: b.length, storageType: b.storageType });
      if (req.last) w.reportDone = true;
      return {};
    });
    this.server.handle(MasterCalls.Heartbeat, async (req) => {
      const w = this.workers.get(req.workerId);
      if (w === undefined) return { commands: [{ type: 'register' as const }] };
      w.heartbeats++;
      w.tiers = req.tiers;
      for (const b of req.addedBlocks ?? [])
        w.blocks.set(b.blockId, { length: b.length, storageType: b.storageType });
      for (const id of req.removedBlocks ?? []) w.blocks.delete(id);
      for (const id of req.corruptBlocks ?? []) {
        w.blocks.delete(id);
        w.corrupt.push(id);
      }
      w.failedReplications.push(...(req.failedReplications ?? []));
      const commands = this.queued.get(req.workerId) ?? [];
      this.queued.delete(req.workerId);
      const granted = (req.evictCandidates ?? []).filter((id) => {
        w.evictAsked.push(id);
        return this.grantEvict(id);
      });
      if (granted.length > 0) {
        for (const id of granted) w.blocks.delete(id);
        commands.push({ type: 'delete', blockIds: granted });
      }
      return { commands };
    });
  }

  static async start(t: Pick<TestContext, 'after'>, clusterId = 'test', port = 0): Promise<FakeMaster> {
    const m = new FakeMaster(clusterId);
    m.port = (await m.server.listen('127.0.0.1', port)).port;
    t.after(() => m.server.close(500));
    return m;
  }

  /** Forgets every worker, as a restarted master would. */
  forgetWorkers(): void {
    this.workers.clear();
  }

  queue(workerId: string, cmd: WorkerCommand): void {
    const list = this.queued.get(workerId) ?? [];
    list.push(cmd);
    this.queued.set(workerId, list);
  }
}
