/**
 * The master's RPC handlers: one per call of protocol/master-calls.ts, each a thin adapter from
 * the wire request to the namespace, the worker registry, the block manager and placement.
 * Mutating calls are wrapped by the caller (the RetryCache) so a retried request id returns the
 * first outcome instead of running twice.
 */
import type { StorageType } from '../common/config/data-dir.js';
import { STORAGE_TYPES } from '../common/config/data-dir.js';
import { FsError, StrataError } from '../common/errors.js';
import { STRATA_VERSION } from '../common/version.js';
import * as M from '../protocol/master-calls.js';
import type { MasterInfo } from '../protocol/types.js';
import { withPayload } from '../rpc/api.js';
import type { CallContext, ReplyWithPayload, UnaryCall } from '../rpc/api.js';
import type { BlockManager } from './blocks/block-manager.js';
import type { Namespace } from './namespace/index.js';
import { ROOT_CALLER } from './namespace/index.js';
import { placeReplicas } from './placement/index.js';
import type { PlacementPolicy } from './placement/index.js';
import { scopeOf } from './request-scope.js';
import type { WorkerRegistry } from './workers/registry.js';

export interface MasterServiceDeps {
  clusterId: string;
  namespace: Namespace;
  registry: WorkerRegistry;
  blocks: BlockManager;
  policy: PlacementPolicy;
  /** "host:port" of this master's RPC and web servers, for GetClusterInfo. */
  rpcAddress: () => string;
  webAddress: () => string;
  startedAtMs: number;
  /** Every master and its role; absent: this one alone, as leader. */
  masters?: () => MasterInfo[];
}

type Handler<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res | ReplyWithPayload<Res>>;

/** A call with its handler, ready to register on an RPC server. */
export interface Binding<Req = never, Res = unknown> {
  def: UnaryCall<Req, Res>;
  handler: Handler<Req, Res>;
}

function bind<Req, Res>(def: UnaryCall<Req, Res>, handler: Handler<Req, Res>): Binding<Req, Res> {
  return { def, handler };
}

/** Cluster totals over the workers that count (not lost, not decommissioned). */
export function clusterTotals(registry: WorkerRegistry): {
  capacityBytes: number;
  usedBytes: number;
  availableBytes: number;
  tiers: { storageType: StorageType; capacityBytes: number; usedBytes: number; availableBytes: number }[];
} {
  const byType = new Map<StorageType, { capacityBytes: number; usedBytes: number; availableBytes: number }>();
  let capacityBytes = 0;
  let usedBytes = 0;
  let availableBytes = 0;
  for (const w of registry.all()) {
    if (w.state === 'lost' || w.state === 'decommissioned') continue;
    for (const t of w.tiers) {
      const cur = byType.get(t.storageType) ?? { capacityBytes: 0, usedBytes: 0, availableBytes: 0 };
      cur.capacityBytes += t.capacityBytes;
      cur.usedBytes += t.usedBytes;
      cur.availableBytes += t.availableBytes;
      byType.set(t.storageType, cur);
      capacityBytes += t.capacityBytes;
      usedBytes += t.usedBytes;
      availableBytes += t.availableBytes;
    }
  }
  const tiers = STORAGE_TYPES.filter((t) => byType.has(t)).map((t) => ({
    storageType: t,
    ...(byType.get(t) as { capacityBytes: number; usedBytes: number; availableBytes: number }),
  }));
  return { capacityBytes, usedBytes, availableBytes, tiers };
}

export function masterBindings(d: MasterServiceDeps): Binding<never>[] {
  const ns = d.namespace;
  const caller = (c: { uid: number; gid: number; groups?: number[] } | undefined) => c ?? ROOT_CALLER;
  const bindings = [
    bind(M.GetStatus, async (r) => ns.getStatus(r.path, caller(r.caller))),
    bind(M.List, async (r) =>
      ns.list(
        r.path,
        {
          ...(r.startAfter === undefined ? {} : { startAfter: r.startAfter }),
          ...(r.limit === undefined ? {} : { limit: r.limit }),
        },
        caller(r.caller),
      ),
    ),
    bind(M.Mkdir, async (r, ctx) =>
      ns.mkdir(
        r.path,
        { parents: r.parents === true, ...(r.mode === undefined ? {} : { mode: r.mode }) },
        caller(r.caller),
        scopeOf(ctx),
      ),
    ),
    bind(M.Create, async (r, ctx) => {
      const { caller: c, path, firstBlock, ...opts } = r;
      const out = await ns.create(
        path,
        { ...opts, firstBlock: firstBlock !== undefined },
        caller(c),
        scopeOf(ctx),
      );
      const blockId = out.firstBlockId;
      if (firstBlock === undefined || blockId === undefined)
        return { status: out.status, leaseId: out.leaseId };
      const st = out.status;
      const blockBytes = expectedBlockBytes(st.blockSize, firstBlock.lengthHint);
      let placed: ReturnType<typeof placeReplicas>;
      try {
        placed = placeReplicas(d.policy, d.registry.candidates(), {
          replicas: st.replicas,
          storageType: st.storageType,
          blockSizeBytes: blockBytes,
          ...(r.clientHost === undefined ? {} : { clientHost: r.clientHost }),
          ...(firstBlock.clientHostId === undefined ? {} : { clientHostId: firstBlock.clientHostId }),
          exclude: new Set<string>(),
        });
      } catch {
        // No placement now: the block goes back and the writer's AddBlock reports why.
        await ns.abandonBlock(st.id, out.leaseId, blockId).catch(() => undefined);
        return { status: st, leaseId: out.leaseId };
      }
      for (const p of placed) d.registry.reserve(p.worker.id, p.storageType, blockBytes);
      return {
        status: st,
        leaseId: out.leaseId,
        firstBlock: { blockId, workers: placed.map((p) => p.worker.address) },
      };
    }),
    bind(M.OpenForWrite, async (r, ctx) =>
      ns.openForWrite(r.path, r.clientHost ?? '', caller(r.caller), scopeOf(ctx)),
    ),
    bind(M.AddBlock, async (r, ctx) => {
      const file = await ns.leasedFile(r.fileId, r.leaseId);
      const blockBytes = expectedBlockBytes(file.blockSize, r.lengthHint);
      const placed = placeReplicas(d.policy, d.registry.candidates(), {
        replicas: file.replicas,
        storageType: file.storageType,
        blockSizeBytes: blockBytes,
        ...(r.clientHost === undefined ? {} : { clientHost: r.clientHost }),
        ...(r.clientHostId === undefined ? {} : { clientHostId: r.clientHostId }),
        exclude: new Set(r.excludeWorkers ?? []),
      });
      const { blockId } = await ns.addBlock(r.fileId, r.leaseId, scopeOf(ctx));
      for (const p of placed) d.registry.reserve(p.worker.id, p.storageType, blockBytes);
      return { blockId, workers: placed.map((p) => p.worker.address) };
    }),
    bind(M.Complete, async (r, ctx) =>
      ns.complete(r.fileId, r.leaseId, r.blocks, r.length, r.mtimeMs, scopeOf(ctx)),
    ),
    bind(M.CompleteAs, async (r, ctx) => {
      let at = 0;
      const xattrs = (r.xattrs ?? []).map((x) => {
        const value = ctx.payload.subarray(at, at + x.length);
        at += x.length;
        return { name: x.name, value };
      });
      if (at !== ctx.payload.length)
        throw new FsError(
          'EINVAL',
          `completeAs: the payload holds ${ctx.payload.length} bytes, the attributes name ${at}`,
        );
      return ns.completeAs(
        r.fileId,
        r.leaseId,
        {
          blocks: r.blocks,
          length: r.length,
          ...(r.mtimeMs === undefined ? {} : { mtimeMs: r.mtimeMs }),
          xattrs,
          ...(r.renameTo === undefined ? {} : { renameTo: r.renameTo }),
          ...(r.concat === undefined ? {} : { concat: r.concat }),
        },
        caller(r.caller),
        scopeOf(ctx),
      );
    }),
    bind(M.RenewLease, async (r) => ({ expiresAtMs: ns.renewLease(r.fileId, r.leaseId) })),
    bind(M.AbandonBlock, async (r, ctx) => {
      await ns.abandonBlock(r.fileId, r.leaseId, r.blockId, scopeOf(ctx));
      return {};
    }),
    bind(M.GetBlockLocations, async (r) => {
      const { status, blocks } = await ns.getBlocks(r.path, r.offset ?? 0, r.length, caller(r.caller));
      const located = {
        status,
        blocks: blocks.map((b) => ({
          ...b,
          workers: d.blocks.readableReplicas(b.blockId).map((x) => x.address),
        })),
      };
      if (r.xattr === undefined) return located;
      const value = await ns.getXattr(r.path, r.xattr, caller(r.caller)).catch((err: unknown) => {
        if (err instanceof FsError && err.code === 'ENODATA') return undefined;
        throw err;
      });
      return withPayload({ ...located, xattrFound: value !== undefined }, value ?? Buffer.alloc(0));
    }),
    bind(M.Delete, async (r, ctx) => {
      await ns.delete(r.path, { recursive: r.recursive === true }, caller(r.caller), scopeOf(ctx));
      return {};
    }),
    bind(M.Rename, async (r, ctx) => {
      await ns.rename(r.src, r.dst, { noReplace: r.noReplace === true }, caller(r.caller), scopeOf(ctx));
      return {};
    }),
    bind(M.Symlink, async (r, ctx) => ns.symlink(r.target, r.path, caller(r.caller), scopeOf(ctx))),
    bind(M.Readlink, async (r) => ({ target: await ns.readlink(r.path, caller(r.caller)) })),
    bind(M.Link, async (r, ctx) => ns.link(r.existing, r.path, caller(r.caller), scopeOf(ctx))),
    bind(M.SetAttr, async (r, ctx) => {
      const { caller: c, path, ...attrs } = r;
      return ns.setAttr(path, attrs, caller(c), scopeOf(ctx));
    }),
    bind(M.SetXattr, async (r, ctx) => {
      await ns.setXattr(r.path, r.name, ctx.payload, r.flag ?? 'any', caller(r.caller), scopeOf(ctx));
      return {};
    }),
    bind(M.GetXattr, async (r) => ({
      body: {},
      payload: await ns.getXattr(r.path, r.name, caller(r.caller)),
    })),
    bind(M.ListXattr, async (r) => ({ names: await ns.listXattr(r.path, caller(r.caller)) })),
    bind(M.RemoveXattr, async (r, ctx) => {
      await ns.removeXattr(r.path, r.name, caller(r.caller), scopeOf(ctx));
      return {};
    }),
    bind(M.GetContentSummary, async (r) => ns.contentSummary(r.path, caller(r.caller))),
    bind(M.GetClusterInfo, async () => {
      const totals = clusterTotals(d.registry);
      const byState = d.registry.countByState();
      const counts = ns.counts();
      return {
        clusterId: d.clusterId,
        version: STRATA_VERSION,
        masters: d.masters?.() ?? [
          { address: d.rpcAddress(), role: 'leader' as const, webAddress: d.webAddress() },
        ],
        ...totals,
        workers: {
          live: byState.live,
          blacklisted: byState.blacklisted,
          lost: byState.lost,
          decommissioning: byState.decommissioning,
        },
        files: counts.files,
        dirs: counts.dirs,
        blocks: counts.blocks,
        startedAtMs: d.startedAtMs,
      };
    }),
    bind(M.ListWorkers, async () => ({
      workers: d.registry.all().map((w) => d.registry.info(w, d.blocks.map.blocksOf(w.id).size)),
    })),
    bind(M.DecommissionWorker, async (r) => ({ workerId: d.registry.decommission(r.worker).id })),
    bind(M.RegisterWorker, async (r) => {
      d.registry.register(r);
      return { heartbeatIntervalMs: d.registry.heartbeatIntervalMs };
    }),
    bind(M.BlockReport, async (r) => {
      const w = d.registry.active(r.workerId);
      if (w === undefined)
        throw new StrataError(
          'STRATA_WORKER_UNKNOWN',
          `worker ${r.workerId} is not registered: register before reporting blocks`,
        );
      await d.blocks.addReported(r.workerId, r.blocks);
      if (r.last) w.reporting = false;
      return {};
    }),
    bind(M.Heartbeat, async (r) => {
      const w = d.registry.heartbeat(r.workerId, r.tiers);
      if (w === undefined) return { commands: [{ type: 'register' as const }] };
      if (r.removedBlocks !== undefined) d.blocks.removeReported(r.workerId, r.removedBlocks);
      if (r.corruptBlocks !== undefined) d.blocks.corruptReported(r.workerId, r.corruptBlocks);
      if (r.failedReplications !== undefined) d.blocks.replicationsFailed(r.workerId, r.failedReplications);
      if (r.addedBlocks !== undefined) await d.blocks.addReported(r.workerId, r.addedBlocks);
      if (r.evictCandidates !== undefined) await d.blocks.grantEvictions(r.workerId, r.evictCandidates);
      return { commands: d.registry.takeCommands(w) };
    }),
  ];
  return bindings as unknown as Binding<never>[];
}

/**
 * Bytes a new block will take, for placement and the soft reservation that lasts until the
 * worker's next heartbeat: the writer's length hint when it gave one (a 1 KiB object must not
 * hold 128 MiB of a worker's room: many small writes between two heartbeats would exhaust it and
 * get ENOSPC with the disk nearly empty), else the file's block size.
 */
function expectedBlockBytes(blockSizeBytes: number, lengthHint: number | undefined): number {
  return lengthHint === undefined ? blockSizeBytes : Math.max(1, Math.min(blockSizeBytes, lengthHint));
}
