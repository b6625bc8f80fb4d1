/**
 * Reading ranges of one block from its replicas. Replicas are tried local first (short-circuit:
 * the worker names the block file, we read it directly), then the others, with workers that
 * failed recently last. A replica that fails is skipped and the read continues from the same
 * byte on the next one; an unreachable worker is remembered for `client.failed_worker_ttl`.
 *
 * Block files are immutable (a changed block gets a new id), so a file opened once stays right
 * to read even after the worker moves it to another tier or deletes it.
 *
 * Blocks of files under a UFS mount carry their UFS source. One that no worker caches comes with
 * the worker the master assigned to fill it (`fill`): it is read with worker.readThrough, which
 * streams the bytes from the UFS while the worker caches the block (readers of the same block
 * share that one fetch). A cached block whose every copy failed (evicted meanwhile) is read
 * through a worker that answered the same way. An error the UFS gave (unreachable, changed,
 * denied) is the reader's error as it is: another replica cannot do better.
 */
import { close as closeFd, open as openFd } from 'node:fs';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { FileHandle } from 'node:fs/promises';
import { StrataError, toStrataError } from '../common/errors.js';
import type { LocatedBlock, WorkerAddress } from '../protocol/types.js';
import { OpenLocalRead, ReadBlock } from '../protocol/worker-calls.js';
import { FollowFill, ReadThrough } from '../protocol/ufs-worker-calls.js';
import type { FollowFillAnswer } from '../protocol/ufs-worker-calls.js';
import { blockUnreadable, isUnreachable, normaliseError, ufsReadFailed } from './errors.js';
import type { IoContext } from './io-context.js';
import type { InlineReadState } from './local-read-policy.js';
import {
  LocalCopyCorruptError,
  mustVerify,
  preadFull,
  preadFullSync,
  readChecksumTable,
  readChecksumTableFd,
  readVerified,
  readVerifiedSync,
} from './local-verify.js';
import type { VerifiedFile } from './local-verify.js';
import { LOCAL_READS_IN_FLIGHT, MAX_OPEN_LOCAL_FILES } from './settings.js';
import { workerKey } from './worker-pool.js';

const openDescriptor = promisify(openFd);
const closeDescriptor = promisify(closeFd);

interface LocalFile extends InlineReadState {
  fh: FileHandle;
  /** Bytes in the block file (may exceed the block's logical length after a truncate). */
  length: number;
  /** The checksums reads of this file check (local-verify.ts); absent when they need not. */
  verified: VerifiedFile | undefined;
}

export class BlockReader {
  readonly #ctx: IoContext;
  readonly #path: string;
  /** blockId → open block file; insertion order is recency (least recent first). */
  readonly #localFiles = new Map<number, Promise<LocalFile | undefined>>();
  #closed = false;

  constructor(ctx: IoContext, path: string) {
    this.#ctx = ctx;
    this.#path = path;
  }

  /** Replicas in the order to try them. */
  order(block: LocatedBlock): WorkerAddress[] {
    const pool = this.#ctx.workers;
    const live = block.workers.filter((w) => !pool.failed.has(w.workerId));
    const failed = block.workers.filter((w) => pool.failed.has(w.workerId));
    const local = live.filter((w) => pool.isLocal(w));
    const remote = live.filter((w) => !pool.isLocal(w));
    // Spread readers of different blocks over the replicas instead of all asking the first.
    const spread = (list: WorkerAddress[]): WorkerAddress[] => {
      const shift = list.length > 0 ? block.blockId % list.length : 0;
      return [...list.slice(shift), ...list.slice(0, shift)];
    };
    return [...spread(local), ...spread(remote), ...failed];
  }

  /** Reads block bytes [blockOffset, blockOffset + length) into target[targetOffset…]. */
  async readInto(
    block: LocatedBlock,
    blockOffset: number,
    target: Uint8Array,
    targetOffset: number,
    length: number,
  ): Promise<void> {
    if (length === 0) return;
    if (block.fill === true && block.ufs !== undefined) {
      await this.#throughInto(block, blockOffset, target, targetOffset, length, block.workers);
      return;
    }
    let done = 0;
    const tried: string[] = [];
    let last: unknown;
    const answered: WorkerAddress[] = [];
    for (const w of this.order(block)) {
      try {
        done += await this.#readFrom(
          w,
          block,
          blockOffset + done,
          target,
          targetOffset + done,
          length - done,
        );
        if (done >= length) return;
        last = new StrataError('STRATA_SHORT_READ', `block ${block.blockId} ended early on ${workerKey(w)}`);
      } catch (err) {
        last = err;
        // A damaged local copy whose RPC retry failed carries that failure: an unreachable
        // worker is noted as such, not as one that answered.
        const why = err instanceof LocalCopyCorruptError && err.cause !== undefined ? err.cause : err;
        this.#noteFailure(w, why);
        if (!isUnreachable(why)) answered.push(w);
      }
      tried.push(workerKey(w));
    }
    if (block.ufs !== undefined && answered.length > 0) {
      await this.#throughInto(
        block,
        blockOffset + done,
        target,
        targetOffset + done,
        length - done,
        answered,
      );
      return;
    }
    throw blockUnreadable(this.#path, block.blockId, tried, last);
  }

  /**
   * Streams block bytes [blockOffset, blockOffset + length) — chunks as the RPC delivers them,
   * or `localChunkBytes` from a block file — moving to the next replica mid-stream when one fails.
   */
  async *stream(
    block: LocatedBlock,
    blockOffset: number,
    length: number,
    localChunkBytes: number,
  ): AsyncGenerator<Buffer> {
    if (block.fill === true && block.ufs !== undefined) {
      yield* this.#through(block, blockOffset, length, block.workers);
      return;
    }
    let done = 0;
    const tried: string[] = [];
    let last: unknown;
    const answered: WorkerAddress[] = [];
    for (const w of this.order(block)) {
      if (done >= length) return;
      let damage: LocalCopyCorruptError | undefined;
      try {
        const local = this.#ctx.workers.isLocal(w) ? await this.#localFile(w, block.blockId) : undefined;
        if (local !== undefined) {
          try {
            for await (const buf of this.#streamLocal(
              local,
              block.blockId,
              blockOffset + done,
              length - done,
              localChunkBytes,
            )) {
              done += buf.length;
              yield buf;
            }
            this.#ctx.metrics?.blockRead('local');
            return;
          } catch (err) {
            if (!(err instanceof LocalCopyCorruptError)) throw err;
            // The rest over RPC from the same worker, which checks its copy itself (and drops
            // it, reporting it to the master, when it is bad).
            this.#dropLocal(w, block.blockId, err);
            damage = err;
          }
        }
        const call = this.#ctx.workers
          .channel(w)
          .read(ReadBlock, { blockId: block.blockId, offset: blockOffset + done, length: length - done });
        // Read to the stream's end (the worker sends exactly the range asked for), so the call
        // finishes cleanly instead of being cancelled.
        let finished = false;
        try {
          for await (const chunk of call) {
            const take = Math.min(chunk.length, length - done);
            if (take <= 0) continue;
            this.#ctx.metrics?.read('remote', take);
            done += take;
            // Chunks go on as the RPC delivered them (at most its chunk size): slicing them
            // smaller only adds work per byte.
            yield take === chunk.length ? chunk : chunk.subarray(0, take);
          }
          finished = true;
        } finally {
          if (!finished) call.cancel('reader stopped');
        }
        await call.result;
        if (done >= length) {
          this.#ctx.metrics?.blockRead('remote');
          return;
        }
        last = new StrataError('STRATA_SHORT_READ', `block ${block.blockId} ended early on ${workerKey(w)}`);
      } catch (err) {
        // After finding the local copy damaged, the damage is the error to report.
        last =
          damage === undefined ? err : new LocalCopyCorruptError(block.blockId, damage.what, { cause: err });
        this.#noteFailure(w, err);
        if (!isUnreachable(err)) answered.push(w);
      }
      tried.push(workerKey(w));
    }
    if (done >= length) return;
    if (block.ufs !== undefined && answered.length > 0) {
      yield* this.#through(block, blockOffset + done, length - done, answered);
      return;
    }
    throw blockUnreadable(this.#path, block.blockId, tried, last);
  }

  /**
   * Block bytes [blockOffset, blockOffset + length) from a local block file in buffers of
   * `chunkBytes`, read ahead of the consumer LOCAL_READS_IN_FLIGHT at a time: each fills a fresh
   * buffer (faulting in its pages), and several on libuv's pool use more than one core.
   */
  async *#streamLocal(
    local: LocalFile,
    blockId: number,
    blockOffset: number,
    length: number,
    chunkBytes: number,
  ): AsyncGenerator<Buffer> {
    let next = 0;
    const issue = (): Promise<Buffer> => {
      const n = Math.min(chunkBytes, length - next);
      const at = next;
      next += n;
      const p = (async () => {
        const buf = Buffer.allocUnsafe(n);
        const got =
          local.verified === undefined
            ? await preadFull(local.fh, buf, 0, n, blockOffset + at)
            : await readVerified(local.fh, local.verified, buf, 0, blockOffset + at, n);
        if (got < n) throw new StrataError('STRATA_SHORT_READ', `block file of ${blockId} is short`);
        return buf;
      })();
      p.catch(() => undefined);
      return p;
    };
    const pending: Promise<Buffer>[] = [];
    while (pending.length < LOCAL_READS_IN_FLIGHT && next < length) pending.push(issue());
    while (pending.length > 0) {
      const buf = await (pending.shift() as Promise<Buffer>);
      if (next < length) pending.push(issue());
      this.#ctx.metrics?.read('local', buf.length);
      yield buf;
    }
  }

  /** Forgets a local block file that failed its checksums (the next reads go over RPC). */
  #dropLocal(w: WorkerAddress, blockId: number, err: LocalCopyCorruptError): void {
    this.#ctx.log.warn(
      { err, worker: workerKey(w), path: this.#path, blockId },
      'short-circuit read: the local block file failed its checksums; reading it through the worker',
    );
    this.#ctx.metrics?.failover('read');
    const p = this.#localFiles.get(blockId);
    this.#localFiles.delete(blockId);
    void p?.then((f) => f?.fh.close()).catch(() => undefined);
  }

  /**
   * Streams block bytes [blockOffset, blockOffset + length) with worker.readThrough from the
   * first of `workers` that serves them; the worker fetches the block from the UFS (or joins the
   * fetch in progress, or serves its cached copy).
   */
  async *#through(
    block: LocatedBlock,
    blockOffset: number,
    length: number,
    workers: readonly WorkerAddress[],
  ): AsyncGenerator<Buffer> {
    const source = block.ufs;
    if (source === undefined) throw new Error(`block ${block.blockId} has no UFS source`);
    let done = 0;
    const tried: string[] = [];
    let last: unknown;
    for (const w of workers) {
      if (done >= length) return;
      if (source.cache && this.#ctx.workers.isLocal(w)) {
        // Stops early (the rest through the worker below) when the file cannot be read here.
        for await (const buf of this.#followLocal(w, block, blockOffset + done, length - done)) {
          done += buf.length;
          yield buf;
        }
        if (done >= length) return;
      }
      const call = this.#ctx.workers.channel(w).read(ReadThrough, {
        blockId: block.blockId,
        offset: blockOffset + done,
        length: length - done,
        source,
      });
      let got = 0;
      try {
        let finished = false;
        try {
          for await (const chunk of call) {
            const take = Math.min(chunk.length, length - done);
            if (take <= 0) continue;
            done += take;
            got += take;
            yield take === chunk.length ? chunk : chunk.subarray(0, take);
          }
          finished = true;
        } finally {
          if (!finished) call.cancel('reader stopped');
        }
        const r = await call.result;
        const path = r.from === 'cache' ? 'remote' : 'ufs';
        this.#ctx.metrics?.read(path, got);
        this.#ctx.metrics?.blockRead(path);
        if (done >= length) return;
        last = new StrataError('STRATA_SHORT_READ', `block ${block.blockId} ended early on ${workerKey(w)}`);
      } catch (err) {
        if (got > 0) this.#ctx.metrics?.read('ufs', got);
        const e = normaliseError(err);
        // The worker answered with the UFS's own error: no other worker would get another answer.
        if (!e.code.startsWith('STRATA_')) throw ufsReadFailed(this.#path, block.blockId, e);
        last = e;
        this.#noteFailure(w, e);
      }
      tried.push(workerKey(w));
    }
    throw blockUnreadable(this.#path, block.blockId, tried, last);
  }

  /**
   * Read-through on this machine: the worker fills the block into a staging file and says how
   * far it got (worker.followFill); the bytes are read from that file here, so none cross the
   * socket and the worker's fill is not slowed by sending them. Yields chunks of at most
   * FOLLOW_CHUNK_BYTES; ends early when the file cannot be read here, and the caller reads the
   * rest through the worker. The next progress call is asked before the
   * bytes already announced are read, so the worker's wait overlaps our reads.
   */
  async *#followLocal(
    w: WorkerAddress,
    block: LocatedBlock,
    blockOffset: number,
    length: number,
  ): AsyncGenerator<Buffer> {
    const source = block.ufs;
    if (source === undefined) return;
    const ch = this.#ctx.workers.channel(w);
    const end = blockOffset + length;
    let pos = blockOffset;
    let fh: FileHandle | undefined;
    let missing = 0;
    const ask = (from: number): Promise<FollowFillAnswer> => {
      const p = ch.call(FollowFill, {
        blockId: block.blockId,
        waitBytes: Math.min(end, from + FOLLOW_CHUNK_BYTES),
        source,
      });
      p.catch(() => undefined);
      return p;
    };
    try {
      let next = ask(pos);
      while (pos < end) {
        let answer: FollowFillAnswer;
        try {
          answer = await next;
        } catch (err) {
          const e = normaliseError(err);
          // The UFS's own error (the fill failed): another worker would get the same answer.
          if (!e.code.startsWith('STRATA_')) throw ufsReadFailed(this.#path, block.blockId, e);
          this.#noteFailure(w, e);
          return;
        }
        if (answer.state === 'stored') {
          // Published: the rest from the block file, short-circuit as any cached block.
          const local = await this.#localFile(w, block.blockId);
          if (local === undefined) return;
          try {
            for await (const buf of this.#streamLocal(
              local,
              block.blockId,
              pos,
              end - pos,
              FOLLOW_CHUNK_BYTES,
            )) {
              pos += buf.length;
              yield buf;
            }
          } catch (err) {
            if (!(err instanceof LocalCopyCorruptError)) throw err;
            // The rest through the worker, which checks its copy (and fills the block again).
            this.#dropLocal(w, block.blockId, err);
            return;
          }
          this.#ctx.metrics?.blockRead('local');
          return;
        }
        if (fh === undefined) {
          try {
            fh = await open(answer.path, 'r');
          } catch (err) {
            // Published (renamed) or aborted between the answer and the open: ask again.
            if ((err as NodeJS.ErrnoException).code === 'ENOENT' && ++missing < 3) {
              next = ask(pos);
              continue;
            }
            this.#ctx.log.warn(
              { err, worker: workerKey(w), path: answer.path },
              'read-through on this machine: cannot open the fill file; reading through the worker',
            );
            this.#ctx.workers.markNotLocal(w);
            return;
          }
        }
        const upTo = Math.min(end, answer.available);
        // Never behind what we have (a fill started again after a failure starts from 0).
        if (upTo < end) next = ask(Math.max(upTo, pos));
        try {
          for await (const buf of readChunks(fh, pos, upTo, FOLLOW_CHUNK_BYTES)) {
            this.#ctx.metrics?.read('ufs', buf.length);
            pos += buf.length;
            yield buf;
          }
        } catch (err) {
          if (!(err instanceof StrataError && err.code === 'STRATA_SHORT_READ')) throw err;
          // The file held is not the fill's any more (it failed and another reader started the
          // block again under the same name): open the one the worker names now.
          await fh.close().catch(() => undefined);
          fh = undefined;
          if (++missing >= 3) return;
          next = ask(pos);
        }
      }
      this.#ctx.metrics?.blockRead('ufs');
      return;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  async #throughInto(
    block: LocatedBlock,
    blockOffset: number,
    target: Uint8Array,
    targetOffset: number,
    length: number,
    workers: readonly WorkerAddress[],
  ): Promise<void> {
    let at = targetOffset;
    for await (const chunk of this.#through(block, blockOffset, length, workers)) {
      chunk.copy(target, at);
      at += chunk.length;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const files = [...this.#localFiles.values()];
    this.#localFiles.clear();
    await Promise.all(
      files.map(async (p) => {
        const f = await p.catch(() => undefined);
        await f?.fh.close().catch(() => undefined);
      }),
    );
  }

  #noteFailure(w: WorkerAddress, err: unknown): void {
    const e = toStrataError(err);
    if (isUnreachable(e)) this.#ctx.workers.failed.add(w.workerId);
    this.#ctx.metrics?.failover('read');
    this.#ctx.log.debug({ err: e, worker: workerKey(w), path: this.#path }, 'block read failed on a replica');
  }

  /** Reads from one replica; returns the bytes read (fewer only when the block is shorter). */
  async #readFrom(
    w: WorkerAddress,
    block: LocatedBlock,
    blockOffset: number,
    target: Uint8Array,
    targetOffset: number,
    length: number,
  ): Promise<number> {
    if (this.#ctx.workers.isLocal(w)) {
      const local = await this.#localFile(w, block.blockId);
      if (local !== undefined) {
        try {
          const got = await this.#readLocal(local, blockOffset, target, targetOffset, length);
          this.#ctx.metrics?.read('local', got);
          this.#ctx.metrics?.blockRead('local');
          return got;
        } catch (err) {
          if (!(err instanceof LocalCopyCorruptError)) throw err;
          // Over RPC from the same worker: it checks its copy and drops it when it is bad. If
          // that fails too, the damage is the error to report (the worker may have dropped the
          // copy for another reader already and only say it does not have it).
          this.#dropLocal(w, block.blockId, err);
          return this.#readRemote(w, block, blockOffset, target, targetOffset, length).catch((e: unknown) => {
            throw new LocalCopyCorruptError(block.blockId, err.what, { cause: e });
          });
        }
      }
    }
    return this.#readRemote(w, block, blockOffset, target, targetOffset, length);
  }

  /** Reads from one replica over RPC; returns the bytes read (fewer only when the block is shorter). */
  async #readRemote(
    w: WorkerAddress,
    block: LocatedBlock,
    blockOffset: number,
    target: Uint8Array,
    targetOffset: number,
    length: number,
  ): Promise<number> {
    // Each chunk is copied into the target at once, so the stream may reuse its receive buffers.
    const call = this.#ctx.workers
      .channel(w)
      .read(ReadBlock, { blockId: block.blockId, offset: blockOffset, length }, { reuseBuffers: true });
    let got = 0;
    let finished = false;
    try {
      for await (const chunk of call) {
        const take = Math.min(chunk.length, length - got);
        if (take <= 0) continue;
        chunk.copy(target, targetOffset + got, 0, take);
        got += take;
      }
      finished = true;
    } finally {
      if (!finished) call.cancel('read failed');
    }
    await call.result;
    this.#ctx.metrics?.read('remote', got);
    this.#ctx.metrics?.blockRead('remote');
    return got;
  }

  /** Reads from a local block file, checked when it must be, on this thread when the policy says so. */
  async #readLocal(
    local: LocalFile,
    blockOffset: number,
    target: Uint8Array,
    targetOffset: number,
    length: number,
  ): Promise<number> {
    // A handle being closed (evicted) shows fd -1 at once: its number may already belong to
    // another file, so only a live one is read synchronously (the async path fails cleanly).
    const fd = local.fh.fd;
    const policy = this.#ctx.localReads;
    const v = local.verified;
    if (fd >= 0 && policy.inline(local, length, performance.now())) {
      const startedMs = performance.now();
      const got =
        v === undefined
          ? preadFullSync(fd, target, targetOffset, length, blockOffset)
          : readVerifiedSync(fd, v, target, targetOffset, blockOffset, length);
      const nowMs = performance.now();
      policy.observe(local, got, nowMs - startedMs, nowMs);
      return got;
    }
    return v === undefined
      ? preadFull(local.fh, target, targetOffset, length, blockOffset)
      : readVerified(local.fh, v, target, targetOffset, blockOffset, length);
  }

  /**
   * A descriptor of `block`'s file on its first-choice replica when that one is local, for a
   * caller that reads it on its own (the FUSE engine's direct reads): the caller owns and closes
   * it. Undefined when the block is not local, is being filled, or its file cannot be opened or
   * holds fewer bytes than the block (or its checksum table is damaged: it is then read through
   * the worker, which drops it). Block files are immutable, so the descriptor stays right.
   */
  async openLocalDescriptor(block: LocatedBlock): Promise<LocalDescriptor | undefined> {
    if (this.#closed || block.fill === true) return undefined;
    const w = this.order(block)[0];
    if (w === undefined || !this.#ctx.workers.isLocal(w)) return undefined;
    try {
      const body = await this.#ctx.workers.channel(w).call(OpenLocalRead, { blockId: block.blockId });
      if (body.length < block.length) return undefined;
      const fd = await openDescriptor(body.path, 'r');
      if (!mustVerify(this.#ctx.settings.localReadVerify, body.storageType)) return { fd };
      try {
        const table = await readChecksumTableFd(fd, block.blockId, body.length);
        return { fd, checksums: { blockId: block.blockId, lengthBytes: body.length, table } };
      } catch (err) {
        await closeDescriptor(fd).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      this.#ctx.log.debug({ err, worker: workerKey(w), path: this.#path }, 'no local descriptor for a block');
      return undefined;
    }
  }

  /**
   * Opens `block`'s local file ahead of a sequential reader reaching it (the worker's answer and
   * the open then overlap the reads of the block before). Nothing happens when its first replica
   * is not local, it is being filled, or it is open already.
   */
  prefetchLocal(block: LocatedBlock): void {
    if (this.#closed || block.fill === true || this.#localFiles.has(block.blockId)) return;
    const w = this.order(block)[0];
    if (w === undefined || !this.#ctx.workers.isLocal(w)) return;
    void this.#localFile(w, block.blockId);
  }

  /** The open block file on a local worker, or undefined when short-circuit is not possible. */
  #localFile(w: WorkerAddress, blockId: number): Promise<LocalFile | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const hit = this.#localFiles.get(blockId);
    if (hit !== undefined) {
      this.#localFiles.delete(blockId);
      this.#localFiles.set(blockId, hit);
      return hit;
    }
    const p = this.#openLocal(w, blockId);
    this.#localFiles.set(blockId, p);
    // A failed open is not cached: the next read asks again (another replica may be local).
    void p.then(
      (f) => f === undefined && this.#localFiles.get(blockId) === p && this.#localFiles.delete(blockId),
      () => this.#localFiles.get(blockId) === p && this.#localFiles.delete(blockId),
    );
    while (this.#localFiles.size > MAX_OPEN_LOCAL_FILES) {
      const [oldId, oldP] = this.#localFiles.entries().next().value ?? [];
      if (oldId === undefined || oldP === undefined) break;
      this.#localFiles.delete(oldId);
      void oldP.then((f) => f?.fh.close()).catch(() => undefined);
    }
    return p;
  }

  async #openLocal(w: WorkerAddress, blockId: number): Promise<LocalFile | undefined> {
    const ch = this.#ctx.workers.channel(w);
    // Twice: the block may move to another tier between the worker's answer and our open.
    for (let attempt = 0; attempt < 2; attempt++) {
      const body = await ch.call(OpenLocalRead, { blockId });
      let fh: FileHandle;
      try {
        fh = await open(body.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt === 0) continue;
        this.#ctx.log.warn(
          { err, worker: workerKey(w), path: body.path },
          'short-circuit read: cannot open the block file; reading over RPC',
        );
        this.#ctx.workers.markNotLocal(w);
        return undefined;
      }
      let verified: VerifiedFile | undefined;
      if (mustVerify(this.#ctx.settings.localReadVerify, body.storageType)) {
        try {
          verified = {
            blockId,
            lengthBytes: body.length,
            table: await readChecksumTable(fh, blockId, body.length),
          };
        } catch (err) {
          await fh.close().catch(() => undefined);
          // A damaged trailer: read over RPC, where the worker finds it and drops the copy.
          if (err instanceof LocalCopyCorruptError) {
            this.#ctx.log.warn(
              { err, worker: workerKey(w), path: this.#path, blockId },
              'short-circuit read: the local block file failed its checksums; reading it through the worker',
            );
            return undefined;
          }
          throw err;
        }
      }
      return {
        fh,
        length: body.length,
        verified,
        inMemory: body.storageType === 'MEM',
        poolUntilMs: 0,
        slowReads: 0,
      };
    }
    return undefined;
  }
}

/** A block file's descriptor (`openLocalDescriptor`) and the checksums its reads must check. */
export interface LocalDescriptor {
  fd: number;
  checksums?: VerifiedFile;
}

/** Closes descriptors `openLocalDescriptor` gave out (errors ignored: nothing to do about them). */
export async function closeLocalDescriptors(fds: readonly number[]): Promise<void> {
  await Promise.all(fds.map((fd) => closeDescriptor(fd).catch(() => undefined)));
}

/** Largest piece a local read-through follower waits for and reads at a time. */
const FOLLOW_CHUNK_BYTES = 1024 * 1024;

/** Bytes [from, to) of a file in fresh buffers of at most `chunkBytes` (the consumer keeps them). */
async function* readChunks(
  fh: FileHandle,
  from: number,
  to: number,
  chunkBytes: number,
): AsyncGenerator<Buffer> {
  for (let at = from; at < to;) {
    const n = Math.min(chunkBytes, to - at);
    const buf = Buffer.allocUnsafe(n);
    const got = await preadFull(fh, buf, 0, n, at);
    if (got < n) throw new StrataError('STRATA_SHORT_READ', `file is short at ${at + got}`);
    at += n;
    yield buf;
  }
}
