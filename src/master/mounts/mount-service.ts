/**
 * The master's calls for mounts and jobs, and the mount-aware versions of the namespace calls.
 * A call on a path under a mount sees the unified namespace (UFS entries entered lazily), and
 * its writes reach the UFS per the mount's write type:
 *
 * | write type | new files                         | delete / rename                    |
 * | ---------- | --------------------------------- | ---------------------------------- |
 * | cache      | Strata only                       | Strata only (UFS data cannot move) |
 * | through    | UFS and Strata before close ends  | UFS and Strata                     |
 * | async      | Strata now, UFS by the persist queue | UFS and Strata                  |
 *
 * Paths outside every mount go straight to the namespace handlers. Under a mount mounted
 * read-only (`mountReadOnly`), every call that would change something fails with EROFS first;
 * reads, loads, frees and the UFS metadata entered by listings are not changes.
 */
import { FsError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import * as M from '../../protocol/master-calls.js';
import * as U from '../../protocol/mount-calls.js';
import type { Caller, FileStatus, LocatedBlock, WorkerAddress } from '../../protocol/types.js';
import type { UfsBlockSource, UfsValidatorWire } from '../../protocol/ufs-types.js';
import type { CallContext, UnaryCall } from '../../rpc/api.js';
import type { BlockManager } from '../blocks/block-manager.js';
import type { LoadJobs } from '../jobs/load-job.js';
import { ROOT_CALLER, realBlockIds, sameUfsVersion } from '../namespace/index.js';
import type { FileInode, Namespace } from '../namespace/index.js';
import type { Binding } from '../service.js';
import type { WorkerRegistry } from '../workers/registry.js';
import type { FillAssigner } from './fill-assigner.js';
import type { MountManager } from './mount-manager.js';
import { writesReachUfs } from './mount-manager.js';
import { isWithin, mountInfo, trimPath, ufsPathOf } from './mount-table.js';
import type { MountRecord, Resolved } from './mount-table.js';
import type { MountMetrics } from './mount-metrics.js';
import type { PersistQueue, PersistTask } from './persist-queue.js';
import { locatedBlocks, persistBlocks } from './persist-queue.js';
import type { UfsSync } from './ufs-sync.js';
import type { WorkerClients } from './worker-clients.js';

/** Through-write results waiting for their file's Complete, at most this many (oldest dropped). */
const MAX_THROUGH_RESULTS = 10_000;

export interface MountServiceDeps {
  namespace: Namespace;
  registry: WorkerRegistry;
  blocks: BlockManager;
  mounts: MountManager;
  sync: UfsSync;
  assigner: FillAssigner;
  persist: PersistQueue;
  loads: LoadJobs;
  workers: WorkerClients;
  metrics: MountMetrics;
  log: Logger;
  clock: () => number;
  defaults: { blockSizeBytes: number };
}

type AnyHandler = (req: never, ctx: CallContext) => Promise<unknown>;
/** A block and the workers holding it, as persist tasks take them. */
type HeldBlock = PersistTask['blocks'][number];
/** A call to the namespace's own handler (under the mount rules' wrappers). */
type BaseCall = <Req, Res>(def: UnaryCall<Req, Res>, req: Req, ctx: CallContext) => Promise<Res>;
type CompleteAsRequest = typeof M.CompleteAs extends UnaryCall<infer Req, unknown> ? Req : never;

/**
 * The same call's context with another payload. Not a spread: the context's `signal` and `log`
 * are getters of its class, which a spread would leave behind.
 */
function withOtherPayload(ctx: CallContext, payload: Buffer): CallContext {
  return {
    requestId: ctx.requestId,
    deadlineAt: ctx.deadlineAt,
    remote: ctx.remote,
    payload,
    get signal() {
      return ctx.signal;
    },
    get log() {
      return ctx.log;
    },
  };
}

function isErr(err: unknown, code: string): boolean {
  return err instanceof FsError && err.code === code;
}

export class MountService {
  readonly #d: MountServiceDeps;
  readonly #through = new Map<number, { leaseId: string; validator: UfsValidatorWire }>();

  constructor(deps: MountServiceDeps) {
    this.#d = deps;
  }

  /** A block's UFS source. */
  sourceOf(file: FileInode, r: Resolved, b: { offset: number; length: number }): UfsBlockSource {
    const u = file.ufs;
    if (u === undefined) throw new Error(`file ${file.id} has no UFS copy`);
    return {
      mountId: r.mount.mountId,
      ufsPath: r.ufsPath,
      objectOffset: b.offset,
      length: b.length,
      validator: { size: u.size, mtimeMs: u.mtimeMs, ...(u.etag === '' ? {} : { etag: u.etag }) },
      cache: r.mount.autoCache,
      storageType: file.storageType,
    };
  }

  #resolve(path: string): Resolved | undefined {
    return this.#d.mounts.table.resolve(path);
  }

  #decorate(s: FileStatus, r: Resolved | undefined): FileStatus {
    if (r === undefined) return s;
    const p = trimPath(s.path);
    const inner = isWithin(p, r.mount.path) ? ufsPathOf(p, r.mount.path) : r.ufsPath;
    s.ufsPath = inner === '/' ? r.mount.uri : `${r.mount.uri}${inner}`;
    s.writeType = r.mount.writeType;
    return s;
  }

  #ufs(m: MountRecord) {
    return this.#d.mounts.ufs(m);
  }

  /** Replaces the namespace handlers that mounts change and adds the mount and job calls. */
  bindings(base: readonly Binding<never>[]): Binding<never>[] {
    const orig = new Map<number, AnyHandler>();
    for (const b of base) orig.set(b.def.code, b.handler);
    const call = <Req, Res>(def: UnaryCall<Req, Res>, req: Req, ctx: CallContext): Promise<Res> => {
      const h = orig.get(def.code);
      if (h === undefined) throw new Error(`no base handler for ${def.name}`);
      return h(req as never, ctx) as Promise<Res>;
    };
    const wrapped = new Map<number, AnyHandler>();
    const wrap = <Req, Res>(
      def: UnaryCall<Req, Res>,
      fn: (req: Req, ctx: CallContext) => Promise<Res>,
    ): void => {
      wrapped.set(def.code, fn);
    };

    wrap(M.GetStatus, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.GetStatus, r, ctx);
      const st = await this.#d.sync.status(r.path, res, () => call(M.GetStatus, r, ctx));
      return this.#decorate(st, res);
    });

    wrap(M.List, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.List, r, ctx);
      if (r.startAfter === undefined) await this.#syncForList(r.path, res);
      const out = await call(M.List, r, ctx);
      for (const e of out.entries) this.#decorate(e, res);
      return out;
    });

    wrap(M.GetBlockLocations, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.GetBlockLocations, r, ctx);
      return this.#locate(r, res);
    });

    wrap(M.Create, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.Create, r, ctx);
      this.#refuseReadOnly(r.path, res, 'create a file');
      const m = res.mount;
      // A file under a mount is never created complete: Complete persists or pins it (below).
      const { complete: _complete, ...plain } = r;
      const req = {
        ...plain,
        ...(r.blockSize === undefined && m.blockSize > 0 ? { blockSize: m.blockSize } : {}),
        ...(r.replicas === undefined && m.replicas > 0 ? { replicas: m.replicas } : {}),
        ...(r.storageType === undefined && m.storageType !== undefined ? { storageType: m.storageType } : {}),
        ...(r.ttlMs === undefined && m.ttlMs > 0 ? { ttlMs: m.ttlMs, ttlAction: m.ttlAction } : {}),
      };
      this.#d.sync.invalidate(trimPath(r.path));
      const out = await call(M.Create, req, ctx);
      // Queued before the writer can complete: a crash at any point leaves the file queued.
      if (m.writeType === 'async' && !m.readOnly) await this.#d.persist.enqueue(out.status.id, m);
      this.#decorate(out.status, res);
      return out;
    });

    wrap(M.OpenForWrite, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.OpenForWrite, r, ctx);
      this.#refuseReadOnly(r.path, res, 'write');
      await this.#refuseUfsModify(r.path, res, r.caller);
      const out = await call(M.OpenForWrite, r, ctx);
      if (res.mount.writeType === 'async' && !res.mount.readOnly)
        await this.#d.persist.enqueue(out.status.id, res.mount);
      this.#decorate(out.status, res);
      return out;
    });

    wrap(M.SetAttr, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.SetAttr, r, ctx);
      // Replication is how the cache keeps the data, not the data: it may change.
      const { path: _p, replicas: _r, caller: _c, ...changes } = r;
      if (Object.values(changes).some((v) => v !== undefined))
        this.#refuseReadOnly(r.path, res, 'change attributes');
      if (r.length !== undefined) await this.#refuseUfsModify(r.path, res, r.caller);
      return this.#decorate(await call(M.SetAttr, r, ctx), res);
    });

    wrap(M.Complete, async (r, ctx) => {
      // Without mounts no file is under one: spare every Complete the walk up to its path.
      const found =
        this.#d.mounts.table.size === 0 ? undefined : await this.#d.namespace.inodeWithPath(r.fileId);
      const res = found === undefined ? undefined : this.#resolve(found.path);
      let validator: UfsValidatorWire | undefined;
      if (res !== undefined && res.mount.writeType === 'through' && !res.mount.readOnly) {
        const done = this.#through.get(r.fileId);
        this.#through.delete(r.fileId);
        validator =
          done !== undefined && done.leaseId === r.leaseId
            ? done.validator
            : // The writer did not persist first (PersistThrough; the client library leaves it to
              // this call, whose deadline is client.complete_timeout): do it now, before completing.
              await this.#persistThrough(res, r.blocks, r.length);
      }
      const st = await call(M.Complete, r, ctx);
      if (res !== undefined && validator !== undefined) {
        await this.#d.namespace.setUfsState(r.fileId, this.#d.sync.ufsState(res.mount, validator));
      }
      if (res !== undefined && res.mount.writeType === 'async' && !res.mount.readOnly) {
        // Its only copies are in Strata until persisted: pinned (never demoted nor dropped).
        this.#d.blocks.setPinned(
          r.blocks.filter((b) => b.blockId !== 0).map((b) => b.blockId),
          true,
        );
        this.#d.persist.kick();
      }
      return this.#decorate(st, res);
    });

    wrap(M.CompleteAs, async (r, ctx) => {
      const found =
        this.#d.mounts.table.size === 0 ? undefined : await this.#d.namespace.inodeWithPath(r.fileId);
      const a = found === undefined ? undefined : this.#resolve(found.path);
      const b = r.renameTo === undefined ? undefined : this.#resolve(r.renameTo);
      for (const c of r.concat ?? []) {
        // Their blocks would leave a mount's files (a UFS copy's cache, or data queued for it).
        const inMount =
          a !== undefined ? found?.path : this.#resolve(c.path) !== undefined ? c.path : undefined;
        if (inMount !== undefined)
          throw new FsError('EINVAL', `${inMount}: files under a mount cannot take part in a concat`, {
            details: { path: inMount },
          });
      }
      if (a === undefined && b === undefined) return call(M.CompleteAs, r, ctx);
      // Under a mount the steps keep their mount rules (UFS writes, read-only refusals), one by
      // one: not one transaction there. A rename the mounts refuse is refused before anything.
      const src = found?.path ?? `file ${r.fileId}`;
      if (r.renameTo !== undefined) {
        this.#refuseMountPoints(r.renameTo, 'rename onto');
        // Written outside the mounts and completed onto a name under one (the S3 gateway's temp
        // files): a new version of that name, written to the UFS under it.
        if (a === undefined && b !== undefined) return this.#completeInto(r, b, ctx, call);
        if (a?.mount.mountId !== b?.mount.mountId)
          throw new FsError('EXDEV', `${src} → ${r.renameTo}: rename across mounts is not possible`, {
            details: { path: src },
          });
      }
      const { xattrs, renameTo, caller: who, ...complete } = r;
      const completeHandler = wrapped.get(M.Complete.code) as (
        req: typeof complete,
        ctx: CallContext,
      ) => Promise<FileStatus>;
      let st = await completeHandler(complete, ctx);
      let at = 0;
      for (const x of xattrs ?? []) {
        if (a !== undefined) this.#refuseReadOnly(st.path, a, 'set an extended attribute');
        const value = ctx.payload.subarray(at, at + x.length);
        at += x.length;
        await call(
          M.SetXattr,
          { path: st.path, name: x.name, ...(who === undefined ? {} : { caller: who }) },
          withOtherPayload(ctx, value),
        );
      }
      if (renameTo !== undefined) {
        try {
          await this.#rename(
            { src: st.path, dst: renameTo, ...(who === undefined ? {} : { caller: who }) },
            ctx,
            call,
          );
        } catch (err) {
          // The file is complete already: not a refusal the writer may retry after.
          throw new FsError('EIO', `${st.path} was completed but not renamed to ${renameTo}`, {
            cause: err,
          });
        }
        st = await call(M.GetStatus, { path: renameTo, ...(who === undefined ? {} : { caller: who }) }, ctx);
      }
      return st;
    });

    wrap(M.Mkdir, async (r, ctx) => {
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.Mkdir, r, ctx);
      this.#refuseReadOnly(r.path, res, 'create a directory');
      this.#d.sync.invalidate(trimPath(r.path));
      const st = await call(M.Mkdir, r, ctx);
      if (writesReachUfs(res.mount)) {
        try {
          await this.#ufs(res.mount).mkdir(res.ufsPath);
        } catch (err) {
          await call(M.Delete, { path: r.path }, ctx).catch(() => undefined);
          throw err;
        }
      }
      return this.#decorate(st, res);
    });

    wrap(M.Delete, async (r, ctx) => {
      this.#refuseMountPoints(r.path, 'delete');
      const res = this.#resolve(r.path);
      if (res === undefined) return call(M.Delete, r, ctx);
      this.#refuseReadOnly(r.path, res, 'delete');
      // The entry may exist only in the UFS so far.
      await this.#d.sync
        .status(r.path, res, () => this.#d.namespace.getStatus(r.path))
        .catch((err: unknown) => {
          if (!isErr(err, 'ENOENT')) throw err;
        });
      // Strata first (it checks permissions); then the UFS. A UFS failure is reported, and the
      // entry comes back at the next sync, since the UFS still holds it: nothing is lost.
      await call(M.Delete, r, ctx);
      this.#d.sync.invalidate(trimPath(r.path));
      if (writesReachUfs(res.mount)) {
        await this.#ufs(res.mount)
          .delete(res.ufsPath, { recursive: r.recursive === true })
          .catch((err: unknown) => {
            if (!isErr(err, 'ENOENT')) throw err;
          });
      }
      return {};
    });

    wrap(M.Rename, async (r, ctx) => this.#rename(r, ctx, call));

    // Calls mounts change only by refusing them under a read-only mount.
    const refuseUnder = <Req extends { path: string }, Res>(def: UnaryCall<Req, Res>, what: string): void =>
      wrap(def, async (r, ctx) => {
        const res = this.#resolve(r.path);
        if (res !== undefined) this.#refuseReadOnly(r.path, res, what);
        return call(def, r, ctx);
      });
    refuseUnder(M.Symlink, 'create a symbolic link');
    refuseUnder(M.Link, 'create a hard link');
    refuseUnder(M.SetXattr, 'set an extended attribute');
    refuseUnder(M.RemoveXattr, 'remove an extended attribute');

    wrap(U.PersistThrough, async (r) => {
      const found = await this.#d.namespace.inodeWithPath(r.fileId);
      if (found === undefined) throw new FsError('ENOENT', `file ${r.fileId}: no such file`);
      const res = this.#resolve(found.path);
      if (res === undefined || res.mount.writeType !== 'through' || res.mount.readOnly) {
        throw new FsError('EINVAL', `${found.path}: not under a mount with write type through`, {
          details: { path: found.path },
        });
      }
      await this.#d.namespace.leasedFile(r.fileId, r.leaseId);
      const validator = await persistBlocks(() => this.#anyWorker(), this.#d.workers, {
        mountId: res.mount.mountId,
        ufsPath: res.ufsPath,
        blocks: r.blocks,
        length: r.length,
      });
      this.#through.set(r.fileId, { leaseId: r.leaseId, validator });
      if (this.#through.size > MAX_THROUGH_RESULTS) {
        const oldest = this.#through.keys().next();
        if (oldest.done !== true) this.#through.delete(oldest.value);
      }
      return validator;
    });

    wrap(U.Mount, async (r) => mountInfo(await this.#d.mounts.mount(r)));
    wrap(U.Unmount, async (r) => {
      await this.#d.mounts.unmount(r.path, (m) => this.#d.persist.pendingFor(m));
      this.#d.sync.invalidate(trimPath(r.path));
      return {};
    });
    wrap(U.ListMounts, async () => ({ mounts: this.#d.mounts.table.list().map(mountInfo) }));
    wrap(U.GetMountConfig, async (r) => {
      if (this.#d.registry.active(r.workerId) === undefined) {
        throw new FsError('EACCES', 'mount configurations are given to registered workers only');
      }
      const m = this.#d.mounts.table.byId(r.mountId);
      if (m === undefined) throw new FsError('ENOENT', `mount ${r.mountId} does not exist (unmounted?)`);
      return { mountId: m.mountId, uri: m.uri, options: m.options };
    });
    wrap(U.SubmitLoad, async (r) =>
      this.#d.loads.submit(trimPath(r.path), r.replicas === undefined ? {} : { replicas: r.replicas }),
    );
    wrap(U.GetLoad, async (r) => this.#d.loads.get(r.jobId));
    wrap(U.CancelLoad, async (r) => this.#d.loads.cancel(r.jobId));
    wrap(U.ListLoads, async () => ({ jobs: this.#d.loads.list() }));
    wrap(U.Free, async (r) => {
      const p = trimPath(r.path);
      if (this.#resolve(p) === undefined && this.#d.mounts.table.below(p).length === 0) {
        throw new FsError(
          'EINVAL',
          `${p}: needs a UFS mount (this path is not under one; data only in Strata is never dropped)`,
          { details: { path: p } },
        );
      }
      return this.#free(p);
    });
    wrap(U.GetCacheReport, async () => this.#cacheReport());

    const out: Binding<never>[] = base.map((b) => {
      const h = wrapped.get(b.def.code);
      return h === undefined ? b : { def: b.def, handler: h };
    });
    for (const def of U.MOUNT_CALLS) {
      const h = wrapped.get(def.code);
      if (h === undefined) throw new Error(`no handler for ${def.name}`);
      out.push({ def, handler: h } as unknown as Binding<never>);
    }
    return out;
  }

  async #syncForList(path: string, res: Resolved): Promise<void> {
    try {
      await this.#d.sync.syncDir(trimPath(path), res);
    } catch (err) {
      // The UFS is unreachable: the listing shows what Strata holds (that is what a cache is for).
      const known = await this.#d.namespace.getStatus(path).catch(() => undefined);
      if (known === undefined) throw err;
      this.#d.log.warn(
        { path, err: err instanceof Error ? err.message : String(err) },
        'UFS listing failed; listing the cache only',
      );
    }
  }

  /** Block locations of a file under a mount: cached copies, or the worker to read it through. */
  async #locate(
    r: { path: string; offset?: number; length?: number; caller?: Caller },
    res: Resolved,
  ): Promise<{ status: FileStatus; blocks: LocatedBlock[] }> {
    const ns = this.#d.namespace;
    const caller = r.caller ?? ROOT_CALLER;
    await this.#d.sync.status(r.path, res, () => ns.getStatus(r.path, caller));
    let got = await ns.getBlocks(r.path, r.offset ?? 0, r.length, caller);
    const fileRes: Resolved = {
      mount: res.mount,
      ufsPath: ufsPathOf(trimPath(got.status.path), res.mount.path),
    };
    if (res.mount.readVerifyUfs && got.file.ufs?.persisted === true) {
      let st;
      try {
        st = await this.#ufs(res.mount).stat(fileRes.ufsPath);
      } catch (err) {
        if (isErr(err, 'ENOENT')) {
          await ns.delete(r.path).catch(() => undefined);
          this.#d.sync.invalidate(trimPath(r.path));
        }
        throw err;
      }
      const u = got.file.ufs;
      if (!sameUfsVersion(u, { size: st.size, mtimeMs: st.mtimeMs, etag: st.etag ?? '' })) {
        this.#d.metrics.invalidations.inc();
        this.#d.log.info({ path: r.path }, 'UFS object changed: cached copy dropped');
        await this.#d.sync.reload(trimPath(r.path), fileRes);
        got = await ns.getBlocks(r.path, r.offset ?? 0, r.length, caller);
      }
    }
    const file = got.file;
    const ufsBacked = file.ufs?.persisted === true;
    const blocks: LocatedBlock[] = got.blocks.map((b) => {
      const workers: WorkerAddress[] = this.#d.blocks.readableReplicas(b.blockId).map((x) => x.address);
      if (!ufsBacked) return { ...b, workers };
      const source = this.sourceOf(file, fileRes, b);
      if (workers.length > 0) {
        this.#d.metrics.blockReads.inc({ source: 'cache' });
        this.#d.assigner.forget(b.blockId);
        return { ...b, workers, ufs: source };
      }
      this.#d.metrics.blockReads.inc({ source: 'ufs' });
      const fill = this.#d.assigner.assign(b.blockId, {
        storageType: file.storageType,
        blockSizeBytes: b.length,
      });
      return { ...b, workers: [fill], ufs: source, fill: true };
    });
    return { status: this.#decorate(got.status, res), blocks };
  }

  /** Files loaded from the UFS are not modified in place (their UFS copy would disagree). */
  async #refuseUfsModify(path: string, res: Resolved, caller: Caller | undefined): Promise<void> {
    const st = await this.#d.sync.status(path, res, () =>
      this.#d.namespace.getStatus(path, caller ?? ROOT_CALLER),
    );
    const ino = await this.#d.namespace.inodeById(st.id);
    if (ino?.type === 'file' && ino.ufs !== undefined) {
      throw new FsError(
        'EPERM',
        `${path}: a file whose data is in the UFS cannot be modified in place; write a new file (create with overwrite) instead`,
        { details: { path } },
      );
    }
  }

  /** EROFS under a mount mounted read-only. */
  #refuseReadOnly(path: string, res: Resolved, what: string): void {
    const m = res.mount;
    if (m.mountReadOnly !== true) return;
    throw new FsError(
      'EROFS',
      `${trimPath(path)}: cannot ${what}: ${m.uri} is mounted read-only at ${m.path}`,
      { details: { path: trimPath(path) } },
    );
  }

  #refuseMountPoints(path: string, what: string): void {
    const p = trimPath(path);
    const at = this.#d.mounts.table.byPath(p);
    const below = this.#d.mounts.table.below(p);
    const m = at ?? below[0];
    if (m !== undefined) {
      throw new FsError(
        'EBUSY',
        `${p}: cannot ${what}: ${m.uri} is mounted at ${m.path} (unmount it first)`,
        {
          details: { path: p },
        },
      );
    }
  }

  async #rename(
    r: { src: string; dst: string; noReplace?: boolean; caller?: Caller },
    ctx: CallContext,
    call: BaseCall,
  ): Promise<Record<string, never>> {
    this.#refuseMountPoints(r.src, 'rename');
    this.#refuseMountPoints(r.dst, 'rename onto');
    const a = this.#resolve(r.src);
    const b = this.#resolve(r.dst);
    if (a === undefined && b === undefined) return call(M.Rename, r, ctx);
    if (a !== undefined) this.#refuseReadOnly(r.src, a, 'rename');
    if (b !== undefined) this.#refuseReadOnly(r.dst, b, 'rename onto');
    if (a?.mount.mountId !== b?.mount.mountId || a === undefined || b === undefined) {
      throw new FsError('EXDEV', `${r.src} → ${r.dst}: rename across mounts is not possible; copy instead`, {
        details: { path: r.src },
      });
    }
    const ns = this.#d.namespace;
    const st = await this.#d.sync.status(r.src, a, () => ns.getStatus(r.src, r.caller ?? ROOT_CALLER));
    const ino = await ns.inodeById(st.id);
    const ufs = this.#ufs(a.mount);
    if (!writesReachUfs(a.mount)) {
      const ufsData =
        ino?.type === 'file'
          ? ino.ufs !== undefined
          : st.type === 'dir' &&
            (await ufs.stat(a.ufsPath).then(
              () => true,
              () => false,
            ));
      if (ufsData) {
        throw new FsError(
          'EPERM',
          `${r.src}: its data is in ${a.mount.uri}, which a mount with write type ${a.mount.writeType} never changes; mount with --write-type through or async to rename UFS data`,
          { details: { path: r.src } },
        );
      }
      await call(M.Rename, r, ctx);
      this.#d.sync.invalidate(trimPath(r.src));
      this.#d.sync.invalidate(trimPath(r.dst));
      return {};
    }
    const inUfs = await ufs.stat(a.ufsPath).then(
      () => true,
      (err: unknown) => {
        if (isErr(err, 'ENOENT')) return false;
        throw err;
      },
    );
    await call(M.Rename, r, ctx);
    this.#d.sync.invalidate(trimPath(r.src));
    this.#d.sync.invalidate(trimPath(r.dst));
    if (!inUfs) return {}; // only Strata holds it so far (a pending async write follows the new name)
    try {
      await ufs.rename(a.ufsPath, b.ufsPath);
    } catch (err) {
      // Put the namespace back so Strata and the UFS agree again.
      await call(M.Rename, { src: r.dst, dst: r.src }, ctx).catch(() => undefined);
      throw err;
    }
    if (ino?.type === 'file' && ino.ufs !== undefined) {
      const now = await ufs.stat(b.ufsPath).catch(() => undefined);
      if (now !== undefined)
        await ns.setUfsState(ino.id, {
          ...ino.ufs,
          size: now.size,
          mtimeMs: now.mtimeMs,
          etag: now.etag ?? '',
        });
    }
    return {};
  }

  async #persistThrough(
    res: Resolved,
    blocks: readonly { blockId: number; length: number; workers?: readonly string[] }[],
    length: number,
    appended: readonly HeldBlock[] = [],
  ): Promise<UfsValidatorWire> {
    const located = blocks.map((b) => ({
      blockId: b.blockId,
      length: b.length,
      workers: (b.workers ?? [])
        .map((id) => this.#d.registry.get(id)?.address)
        .filter((a): a is WorkerAddress => a !== undefined),
    }));
    return persistBlocks(() => this.#anyWorker(), this.#d.workers, {
      mountId: res.mount.mountId,
      ufsPath: res.ufsPath,
      blocks: [...located, ...appended],
      length: length + appended.reduce((sum, x) => sum + x.length, 0),
    });
  }

  /** The blocks (with their copies) of the files a CompleteAs appends, in order. */
  async #concatBlocks(sources: readonly { path: string; fileId: number }[]): Promise<HeldBlock[]> {
    const out: HeldBlock[] = [];
    for (const c of sources) {
      const ino = await this.#d.namespace.inodeById(c.fileId);
      if (ino?.type !== 'file')
        throw new FsError('ESTALE', `${c.path}: file ${c.fileId} is no longer there`, {
          details: { path: c.path },
        });
      out.push(...locatedBlocks(this.#d.blocks, ino.blocks));
    }
    return out;
  }

  /**
   * CompleteAs of a file written outside every mount onto `r.renameTo` under mount `b`, as if the
   * file had been created there: `through` writes the blocks to the UFS under the final name
   * before the commit (nothing is committed if that fails, and the UFS never sees a temp name);
   * `async` queues the file before the commit, so a crash after it leaves the file queued; the
   * mount's replicas and TTL follow the commit. The commit itself (complete, attributes and the
   * rename) stays one transaction, the request's recorded mutation. A plain rename from outside
   * into a mount is still EXDEV: it would move a file the UFS has never seen.
   */
  async #completeInto(
    r: CompleteAsRequest,
    b: Resolved,
    ctx: CallContext,
    call: BaseCall,
  ): Promise<FileStatus> {
    const target = trimPath(r.renameTo ?? '/');
    this.#refuseReadOnly(target, b, 'write');
    const who = r.caller === undefined ? {} : { caller: r.caller };
    const m = b.mount;
    const reachesUfs = writesReachUfs(m);
    let validator: UfsValidatorWire | undefined;
    if (reachesUfs && m.writeType === 'through') {
      // What the commit would refuse, refused before anything reaches the UFS.
      const existing = await call(M.GetStatus, { path: target, ...who }, ctx).catch((err: unknown) => {
        if (isErr(err, 'ENOENT')) return undefined;
        throw err;
      });
      if (existing?.type === 'dir')
        throw new FsError('EISDIR', `${target}: is a directory`, { details: { path: target } });
      validator = await this.#persistThrough(b, r.blocks, r.length, await this.#concatBlocks(r.concat ?? []));
    }
    if (reachesUfs && m.writeType === 'async') await this.#d.persist.enqueue(r.fileId, m);
    this.#d.sync.invalidate(target);
    let st = await call(M.CompleteAs, r, ctx);
    if (validator !== undefined) {
      await this.#d.namespace.setUfsState(r.fileId, this.#d.sync.ufsState(m, validator));
    }
    if (reachesUfs && m.writeType === 'async') {
      // Its only copies are in Strata until persisted: pinned (never demoted nor dropped), the
      // blocks a concat appended included.
      const f = await this.#d.namespace.inodeById(r.fileId);
      this.#d.blocks.setPinned(f?.type === 'file' ? realBlockIds(f.blocks) : [], true);
      this.#d.persist.kick();
    }
    const attrs = {
      ...(m.replicas > 0 && m.replicas !== st.replicas ? { replicas: m.replicas } : {}),
      ...(m.ttlMs > 0 ? { ttlMs: m.ttlMs, ttlAction: m.ttlAction } : {}),
    };
    if (Object.keys(attrs).length > 0) {
      // A second transaction (the commit above is the request's recorded one); a retry of the
      // request sets them again.
      st = await call(M.SetAttr, { path: st.path, ...attrs, ...who }, ctx);
    }
    return this.#decorate(st, b);
  }

  #anyWorker(): WorkerAddress | undefined {
    return this.#d.registry.all().find((w) => w.state === 'live')?.address;
  }

  /** Drops cached copies of every file under `path` that a UFS holds. */
  async #free(path: string): Promise<{ files: number; blocks: number; bytes: number; skippedFiles: number }> {
    const ns = this.#d.namespace;
    const out = { files: 0, blocks: 0, bytes: 0, skippedFiles: 0 };
    const freeFile = (ino: FileInode): void => {
      if (ino.ufs?.persisted !== true) {
        out.skippedFiles++;
        return;
      }
      const cached = this.#d.blocks.cachedBytes(ino);
      const n = this.#d.blocks.dropCopies(realBlockIds(ino.blocks));
      if (n > 0) {
        out.files++;
        out.blocks += n;
        out.bytes += cached;
      }
    };
    const root = await ns.getStatus(path);
    const stack: FileStatus[] = [root];
    while (stack.length > 0) {
      const st = stack.pop() as FileStatus;
      if (st.type === 'file') {
        const ino = await ns.inodeById(st.id);
        if (ino?.type === 'file') freeFile(ino);
        continue;
      }
      if (st.type !== 'dir') continue;
      let startAfter: string | undefined;
      do {
        const page = await ns.list(st.path, startAfter === undefined ? {} : { startAfter });
        stack.push(...page.entries);
        startAfter = page.nextStartAfter;
      } while (startAfter !== undefined);
    }
    this.#d.log.info({ path, ...out }, 'freed cached copies');
    return out;
  }

  async #cacheReport(): Promise<{
    cachedBytes: number;
    capacityBytes: number;
    ufsTotalBytes: number;
    fileNum: number;
    cacheHitBlocks: number;
    cacheMissBlocks: number;
  }> {
    let ufsTotalBytes = 0;
    let fileNum = 0;
    let cachedBytes = 0;
    for (const m of this.#d.mounts.table.list()) {
      const s = await this.#d.namespace.contentSummary(m.path).catch(() => undefined);
      if (s === undefined) continue;
      ufsTotalBytes += s.length;
      fileNum += s.files;
      cachedBytes += s.cachedBytes;
    }
    let capacityBytes = 0;
    for (const w of this.#d.registry.all()) {
      if (w.state === 'lost' || w.state === 'decommissioned') continue;
      for (const t of w.tiers) capacityBytes += t.capacityBytes;
    }
    const hits = await this.#d.metrics.blockReads.get();
    const count = (source: string): number =>
      hits.values.filter((v) => v.labels.source === source).reduce((a, v) => a + v.value, 0);
    return {
      cachedBytes,
      capacityBytes,
      ufsTotalBytes,
      fileNum,
      cacheHitBlocks: count('cache'),
      cacheMissBlocks: count('ufs'),
    };
  }
}
