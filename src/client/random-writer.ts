/**
 * A file open for random writes (FUSE, the S3 gateway): `pwrite` anywhere, `truncate` down or
 * up, `pread` that sees this handle's own writes, `flush` and `close`.
 *
 * Copy-on-write per block: a block touched by a write becomes dirty; when it is flushed it is
 * written as a new block (old bytes that were not overwritten are read from the old block,
 * zeros where the file had none) and the old block is dropped when the new list is committed.
 * Untouched blocks keep their ids; gaps are holes (block id 0, stored nowhere); a truncate down
 * only shortens the block's logical length. Everything is committed with one Complete at `close`.
 *
 * Memory: the bytes of each dirty block live in its own `SpillBuffer` (memory within the
 * client's budget, a temp file beyond). A block that becomes fully written while the writer moves
 * past it is uploaded in the background (sequential writers stream out block by block); the
 * handle uploads dirty blocks early when their data exceeds a bound.
 */
import { FsError } from '../common/errors.js';
import type { StrataError } from '../common/errors.js';
import { GetBlockLocations, Complete, Create, OpenForWrite } from '../protocol/master-calls.js';
import type { Caller, FileBlock, FileStatus, LocatedBlock, WorkerAddress } from '../protocol/types.js';
import { HOLE_BLOCK_ID } from '../protocol/types.js';
import { BlockReader } from './block-reader.js';
import { closedError, isUnreachable, normaliseError } from './errors.js';
import type { IoContext } from './io-context.js';
import { LeaseKeeper } from './lease.js';
import { BlockPlacer } from './placement.js';
import { SpillBuffer } from './spill-buffer.js';

/** Largest piece produced when streaming a dirty block out. */
const PRODUCE_CHUNK_BYTES = 1024 * 1024;
/** Background uploads of completed blocks at once; a writer waits beyond this. */
const MAX_INFLIGHT_UPLOADS = 2;
/** Dirty bytes kept per handle (across its blocks' logs) before the largest blocks are uploaded early. */
export const MAX_DIRTY_BYTES_PER_HANDLE = 1024 * 1024 * 1024;

export interface OpenForWriteOptions {
  /** Create the file when it does not exist. */
  create?: boolean;
  /** Start from an empty file (like O_TRUNC). */
  truncate?: boolean;
  /** Mode of a file created by `create`. */
  mode?: number;
  /**
   * With `create`: fail with EEXIST when the file exists (O_CREAT|O_EXCL). The master's create
   * decides, so two clients racing for one name cannot both win.
   */
  exclusive?: boolean;
}

interface BlockEntry {
  /** HOLE_BLOCK_ID for a hole. */
  blockId: number;
  /** Logical length in the file. */
  length: number;
  /** Written by this handle: the workers that acknowledged it and where they are. */
  workers?: string[];
  addresses?: WorkerAddress[];
}

/** [start, end) of a block, whose bytes are at `logOffset` in the block's log. */
interface Extent {
  start: number;
  end: number;
  logOffset: number;
}

class DirtyBlock {
  /** The block this one replaces (its bytes below `baseReadable` are still the file's). */
  readonly base: BlockEntry;
  baseReadable: number;
  length: number;
  extents: Extent[] = [];
  readonly log: SpillBuffer;

  constructor(base: BlockEntry, log: SpillBuffer) {
    this.base = base;
    this.baseReadable = base.blockId === HOLE_BLOCK_ID ? 0 : base.length;
    this.length = base.length;
    this.log = log;
  }

  get coveredBytes(): number {
    let n = 0;
    for (const e of this.extents) n += e.end - e.start;
    return n;
  }

  /** Records bytes [start, end) at `logOffset`, replacing what was there. */
  put(start: number, end: number, logOffset: number): void {
    const out: Extent[] = [];
    let inserted = false;
    for (const e of this.extents) {
      if (e.end <= start) {
        out.push(e);
        continue;
      }
      if (e.start >= end) {
        if (!inserted) {
          pushMerged(out, { start, end, logOffset });
          inserted = true;
        }
        out.push(e);
        continue;
      }
      if (e.start < start) out.push({ start: e.start, end: start, logOffset: e.logOffset });
      if (!inserted) {
        pushMerged(out, { start, end, logOffset });
        inserted = true;
      }
      if (e.end > end) out.push({ start: end, end: e.end, logOffset: e.logOffset + (end - e.start) });
    }
    if (!inserted) pushMerged(out, { start, end, logOffset });
    this.extents = out;
    if (end > this.length) this.length = end;
  }

  /**
   * The new bytes [from, to) without a copy, when one write covers them and the log holds them
   * in one memory segment (a sequential writer's blocks, past their first MiB); else undefined.
   */
  view(from: number, to: number): Buffer | undefined {
    for (const e of this.extents) {
      if (e.end <= from) continue;
      if (e.start > from || e.end < to) return undefined;
      return this.log.view(e.logOffset + (from - e.start), to - from);
    }
    return undefined;
  }

  truncate(length: number): void {
    this.length = length;
    this.baseReadable = Math.min(this.baseReadable, length);
    const out: Extent[] = [];
    for (const e of this.extents) {
      if (e.start >= length) continue;
      out.push(e.end > length ? { start: e.start, end: length, logOffset: e.logOffset } : e);
    }
    this.extents = out;
  }
}

function pushMerged(out: Extent[], e: Extent): void {
  const last = out[out.length - 1];
  if (
    last !== undefined &&
    last.end === e.start &&
    last.logOffset + (last.end - last.start) === e.logOffset
  ) {
    last.end = e.end;
    return;
  }
  out.push(e);
}

export class RandomWriteHandle {
  readonly path: string;
  readonly #ctx: IoContext;
  readonly #status: FileStatus;
  readonly #leaseId: string;
  readonly #caller: Caller | undefined;
  readonly #blockSize: number;
  readonly #placer: BlockPlacer;
  readonly #lease: LeaseKeeper;
  readonly #reader: BlockReader;
  readonly #original: FileBlock[];
  readonly #originalLength: number;
  #blocks: BlockEntry[];
  #starts: number[] = [];
  #size: number;
  readonly #dirty = new Map<number, DirtyBlock>();
  /** Blocks being uploaded in the background, by index. */
  readonly #uploading = new Map<number, Promise<void>>();
  /** Blocks this handle wrote and then replaced or dropped: given back to the master. */
  readonly #superseded: number[] = [];
  #locations: Map<number, WorkerAddress[]> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #state: 'open' | 'closed' | 'failed' = 'open';
  #failure: StrataError | undefined;
  #final: FileStatus | undefined;

  private constructor(
    ctx: IoContext,
    path: string,
    status: FileStatus,
    leaseId: string,
    blocks: FileBlock[],
    caller: Caller | undefined,
  ) {
    this.#ctx = ctx;
    this.path = path;
    this.#status = status;
    this.#leaseId = leaseId;
    this.#caller = caller;
    this.#blockSize = status.blockSize > 0 ? status.blockSize : ctx.settings.blockSizeBytes;
    this.#placer = new BlockPlacer(ctx, path, status.id, leaseId, status.storageType);
    this.#lease = new LeaseKeeper(ctx.master, status.id, leaseId, ctx.log);
    this.#reader = new BlockReader(ctx, path);
    this.#original = blocks.map((b) => ({ blockId: b.blockId, length: b.length }));
    this.#blocks = blocks.map((b) => ({ blockId: b.blockId, length: b.length }));
    this.#size = this.#blocks.reduce((n, b) => n + b.length, 0);
    this.#originalLength = this.#size;
    if (this.#size !== status.size) {
      ctx.log.warn(
        { path, blocks: this.#size, size: status.size },
        'block lengths do not add up to the file size',
      );
    }
    this.#reindex();
  }

  static async open(
    ctx: IoContext,
    path: string,
    opts: OpenForWriteOptions = {},
    caller?: Caller,
  ): Promise<RandomWriteHandle> {
    const withCaller = caller === undefined ? {} : { caller };
    let h: RandomWriteHandle | undefined;
    // O_EXCL goes straight to the create below, which refuses an existing name.
    if (!(opts.create === true && opts.exclusive === true)) {
      try {
        const r = await ctx.master.call(OpenForWrite, {
          path,
          clientHost: ctx.settings.clientHost,
          ...withCaller,
        });
        if (r.status.type !== 'file')
          throw new FsError(r.status.type === 'dir' ? 'EISDIR' : 'EINVAL', `${path}: not a regular file`, {
            details: { path },
          });
        h = new RandomWriteHandle(ctx, path, r.status, r.leaseId, r.blocks, caller);
      } catch (err) {
        if (!(opts.create === true && err instanceof FsError && err.code === 'ENOENT')) throw err;
      }
    }
    if (h === undefined) {
      const s = ctx.settings;
      const r = await ctx.master.call(Create, {
        path,
        ...(opts.mode === undefined ? {} : { mode: opts.mode }),
        blockSize: s.blockSizeBytes,
        replicas: s.replicas,
        storageType: s.storageType,
        ttlMs: s.ttlMs,
        ttlAction: s.ttlAction,
        clientHost: s.clientHost,
        ...withCaller,
      });
      h = new RandomWriteHandle(ctx, path, r.status, r.leaseId, [], caller);
    }
    if (opts.truncate === true) await h.truncate(0);
    return h;
  }

  /** The file's length as this handle sees it. */
  get size(): number {
    return this.#size;
  }

  get status(): FileStatus {
    return this.#final ?? this.#status;
  }

  /** Writes `data` at `position` (past the end leaves a hole); resolves with the bytes written. */
  pwrite(data: Uint8Array, position: number): Promise<number> {
    return this.#enqueue(async () => {
      this.#checkOpen();
      if (!Number.isSafeInteger(position) || position < 0) {
        throw new FsError(
          'EINVAL',
          `${this.path}: write position must be a non-negative integer (got ${position})`,
        );
      }
      if (data.length === 0) return 0;
      try {
        const end = position + data.length;
        if (end > this.#size) this.#extendTo(end);
        let at = position;
        while (at < end) {
          const i = this.#indexAt(at);
          const start = this.#starts[i] as number;
          const entry = this.#blocks[i] as BlockEntry;
          const to = Math.min(end, start + entry.length);
          await this.#awaitUpload(i);
          const d = this.#makeDirty(i);
          const piece = data.subarray(at - position, to - position);
          const logOffset = await d.log.append(piece);
          d.put(at - start, to - start, logOffset);
          (this.#blocks[i] as BlockEntry).length = d.length;
          at = to;
        }
        await this.#uploadEagerly(position, end);
        return data.length;
      } catch (err) {
        throw this.#fail(err);
      }
    });
  }

  /** Sets the length: down drops bytes (metadata only for clean blocks), up adds a hole. */
  truncate(length: number): Promise<void> {
    return this.#enqueue(async () => {
      this.#checkOpen();
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new FsError('EINVAL', `${this.path}: length must be a non-negative integer (got ${length})`);
      }
      try {
        if (length > this.#size) this.#extendTo(length);
        else if (length < this.#size) await this.#shrinkTo(length);
      } catch (err) {
        throw this.#fail(err);
      }
    });
  }

  /** Reads what the file holds now, including this handle's unflushed writes. */
  pread(buffer: Uint8Array, position: number, offset = 0, length = buffer.length - offset): Promise<number> {
    return this.#enqueue(async () => {
      this.#checkOpen();
      const n = Math.max(0, Math.min(length, this.#size - position));
      let at = position;
      while (at < position + n) {
        const i = this.#indexAt(at);
        const start = this.#starts[i] as number;
        const entry = this.#blocks[i] as BlockEntry;
        const to = Math.min(position + n, start + entry.length);
        await this.#awaitUpload(i);
        await this.#readBlock(i, at - start, to - start, buffer, offset + (at - position));
        at = to;
      }
      return n;
    });
  }

  /** Writes every dirty block to the workers (not yet visible to others: that is `close`). */
  flush(): Promise<void> {
    return this.#enqueue(async () => {
      this.#checkOpen();
      try {
        await this.#flushAll();
      } catch (err) {
        throw this.#fail(err);
      }
    });
  }

  /** Flushes and commits the new block list and length (one Complete); ends the lease. */
  close(opts: { mtimeMs?: number } = {}): Promise<FileStatus> {
    return this.#enqueue(async () => {
      if (this.#state === 'closed' && this.#final !== undefined) return this.#final;
      this.#checkOpen();
      try {
        await this.#flushAll();
        const lost = this.#lease.lost;
        if (lost !== undefined) throw lost;
        // Blocks this handle wrote and then replaced go back while the lease still covers them.
        await this.#abandonSuperseded();
        this.#final = await this.#ctx.master.call(
          Complete,
          {
            fileId: this.#status.id,
            leaseId: this.#leaseId,
            blocks: this.#blocks.map((b) =>
              b.workers === undefined
                ? { blockId: b.blockId, length: b.length }
                : { blockId: b.blockId, length: b.length, workers: b.workers },
            ),
            length: this.#size,
            // A modification time set while the file was open (utimens on it), in the same commit.
            ...(opts.mtimeMs === undefined ? {} : { mtimeMs: opts.mtimeMs }),
          },
          // Under a `through` mount the master writes the whole file to the UFS before answering.
          this.#status.writeType === 'through'
            ? { deadlineMs: this.#ctx.settings.completeTimeoutMs }
            : undefined,
        );
        this.#state = 'closed';
        return this.#final;
      } catch (err) {
        throw this.#fail(err);
      } finally {
        this.#lease.stop();
        await this.#release();
      }
    });
  }

  /** Drops every change: the file keeps its previous blocks and length; the lease ends. Never throws. */
  async abort(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'failed';
    this.#failure ??= new FsError('EIO', `${this.path}: write handle aborted`);
    await this.#queue.catch(() => undefined);
    await Promise.allSettled(this.#uploading.values());
    if (isUnreachable(this.#failure)) {
      // No master to tell: its lease timeout keeps the file as it was and reclaims new blocks.
      this.#lease.stop();
      await this.#release();
      return;
    }
    for (const b of this.#blocks) if (b.workers !== undefined) this.#superseded.push(b.blockId);
    await this.#abandonSuperseded();
    await this.#ctx.master
      .call(Complete, {
        fileId: this.#status.id,
        leaseId: this.#leaseId,
        blocks: this.#original,
        length: this.#originalLength,
      })
      .catch((err: unknown) =>
        this.#ctx.log.debug({ err, path: this.path }, 'releasing an aborted handle failed'),
      );
    this.#lease.stop();
    await this.#release();
  }

  // ---- internals -----------------------------------------------------------------------------

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(op);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #checkOpen(): void {
    if (this.#state === 'failed') throw this.#failure ?? closedError(`write handle of ${this.path}`);
    if (this.#state !== 'open') throw closedError(`write handle of ${this.path}`);
    const lost = this.#lease.lost;
    if (lost !== undefined) throw this.#fail(lost);
  }

  #fail(err: unknown): StrataError {
    this.#state = 'failed';
    this.#failure ??= normaliseError(err);
    return this.#failure;
  }

  #reindex(): void {
    const starts = new Array<number>(this.#blocks.length);
    let at = 0;
    this.#blocks.forEach((b, i) => {
      starts[i] = at;
      at += b.length;
    });
    this.#starts = starts;
  }

  /** Index of the block holding byte `pos` (< size). */
  #indexAt(pos: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#starts[mid] as number) <= pos) lo = mid;
      else hi = mid - 1;
    }
    // Skip empty blocks that start at pos.
    while (lo < this.#blocks.length - 1 && (this.#blocks[lo] as BlockEntry).length === 0) lo++;
    return lo;
  }

  #makeDirty(i: number): DirtyBlock {
    let d = this.#dirty.get(i);
    if (d === undefined) {
      const entry = this.#blocks[i] as BlockEntry;
      d = new DirtyBlock({ ...entry }, new SpillBuffer(this.#ctx.budget, this.#ctx.settings.spillDir));
      this.#dirty.set(i, d);
    }
    return d;
  }

  /** Grows the file to `length`: the last block up to a full block, then whole holes. */
  #extendTo(length: number): void {
    let grow = length - this.#size;
    const lastIdx = this.#blocks.length - 1;
    const last = this.#blocks[lastIdx];
    if (last !== undefined && last.length < this.#blockSize && grow > 0) {
      const add = Math.min(grow, this.#blockSize - last.length);
      if (last.blockId === HOLE_BLOCK_ID && !this.#dirty.has(lastIdx)) {
        last.length += add;
      } else {
        const d = this.#makeDirty(lastIdx);
        d.length += add;
        last.length = d.length;
      }
      grow -= add;
    }
    while (grow > 0) {
      const add = Math.min(grow, this.#blockSize);
      this.#blocks.push({ blockId: HOLE_BLOCK_ID, length: add });
      grow -= add;
    }
    this.#size = length;
    this.#reindex();
  }

  async #shrinkTo(length: number): Promise<void> {
    // Settle uploads of blocks that change, so nothing lands after it was dropped.
    for (const [i, p] of [...this.#uploading]) {
      if ((this.#starts[i] as number) + (this.#blocks[i] as BlockEntry).length > length) await p;
    }
    const keep: BlockEntry[] = [];
    for (let i = 0; i < this.#blocks.length; i++) {
      const b = this.#blocks[i] as BlockEntry;
      const start = this.#starts[i] as number;
      const d = this.#dirty.get(i);
      if (start >= length) {
        if (d !== undefined) {
          await d.log.close();
          this.#dirty.delete(i);
        }
        if (b.workers !== undefined) this.#superseded.push(b.blockId);
        continue;
      }
      if (start + b.length > length) {
        const cut = length - start;
        if (d !== undefined) d.truncate(cut);
        b.length = cut;
      }
      keep.push(b);
    }
    this.#blocks = keep;
    this.#size = length;
    this.#reindex();
  }

  /** Starts background uploads of blocks that are now fully written and behind the writer. */
  async #uploadEagerly(from: number, to: number): Promise<void> {
    const first = this.#indexAt(from);
    const last = to >= this.#size ? this.#blocks.length - 1 : this.#indexAt(to);
    for (let i = first; i <= last; i++) {
      const d = this.#dirty.get(i);
      const start = this.#starts[i] as number;
      if (d === undefined || d.length !== this.#blockSize || start + d.length > to) continue;
      if (d.coveredBytes !== d.length) continue;
      while (this.#uploading.size >= MAX_INFLIGHT_UPLOADS) await Promise.race(this.#uploading.values());
      this.#startUpload(i);
    }
    let dirtyBytes = 0;
    for (const d of this.#dirty.values()) dirtyBytes += d.log.size;
    if (dirtyBytes > MAX_DIRTY_BYTES_PER_HANDLE) {
      const largest = [...this.#dirty.entries()].sort((a, b) => b[1].log.size - a[1].log.size);
      for (const [i, d] of largest) {
        if (dirtyBytes <= MAX_DIRTY_BYTES_PER_HANDLE / 2) break;
        dirtyBytes -= d.log.size;
        while (this.#uploading.size >= MAX_INFLIGHT_UPLOADS) await Promise.race(this.#uploading.values());
        this.#startUpload(i);
      }
    }
  }

  #startUpload(i: number): void {
    const p = this.#upload(i).finally(() => this.#uploading.delete(i));
    this.#uploading.set(i, p);
    // A failure is reported by whoever waits for it next (a write to the block, flush, close).
    p.catch(() => undefined);
  }

  async #awaitUpload(i: number): Promise<void> {
    const p = this.#uploading.get(i);
    if (p !== undefined) await p;
  }

  async #flushAll(): Promise<void> {
    await Promise.all(this.#uploading.values());
    for (const i of [...this.#dirty.keys()].sort((a, b) => a - b)) await this.#upload(i);
  }

  /** Writes dirty block i as a new block (or keeps it a hole) and records it. */
  async #upload(i: number): Promise<void> {
    const d = this.#dirty.get(i);
    if (d === undefined) return;
    // Detached first: nothing else uploads it, and writers to block i wait for this upload.
    this.#dirty.delete(i);
    const entry = this.#blocks[i] as BlockEntry;
    let uploaded = false;
    try {
      if (d.extents.length === 0 && d.baseReadable === 0) {
        // Nothing but zeros: a hole.
        this.#replaceEntry(i, { blockId: HOLE_BLOCK_ID, length: d.length });
      } else if (d.extents.length === 0 && d.baseReadable === d.length && d.base.blockId !== HOLE_BLOCK_ID) {
        // Only shortened: the old block serves the shorter length.
        this.#replaceEntry(i, { ...d.base, length: d.length });
      } else {
        const placed = await this.#placer.writeWhole(d.length, () => this.#produce(d));
        if (this.#blocks[i] !== entry) {
          // Dropped by a truncate while uploading: give the new block back.
          this.#superseded.push(placed.blockId);
        } else {
          this.#replaceEntry(i, {
            blockId: placed.blockId,
            length: placed.length,
            workers: placed.workers,
            addresses: placed.addresses,
          });
        }
      }
      uploaded = true;
    } finally {
      // The log's memory went out as views (`#produce`). After a finished upload every replica
      // has acknowledged those bytes, so the memory may serve another log; after a failure an
      // abandoned stream may still have some queued on a socket, so it is left to the collector.
      await d.log.close({ recycle: uploaded });
    }
  }

  #replaceEntry(i: number, next: BlockEntry): void {
    const prev = this.#blocks[i] as BlockEntry;
    if (prev.workers !== undefined && prev.blockId !== next.blockId) this.#superseded.push(prev.blockId);
    this.#blocks[i] = next;
  }

  /**
   * The new content of a dirty block, in pieces: views of the block's log where one write covers
   * a piece (the log stays open and unchanged until the upload ends), else assembled copies.
   */
  async *#produce(d: DirtyBlock): AsyncGenerator<Buffer> {
    for (let at = 0; at < d.length; at += PRODUCE_CHUNK_BYTES) {
      const n = Math.min(PRODUCE_CHUNK_BYTES, d.length - at);
      const view = d.view(at, at + n);
      if (view !== undefined) {
        yield view;
        continue;
      }
      const buf = Buffer.allocUnsafe(n);
      await this.#fillDirty(d, at, at + n, buf, 0);
      yield buf;
    }
  }

  /** Block bytes [from, to) of block i as the file holds them now. */
  async #readBlock(
    i: number,
    from: number,
    to: number,
    target: Uint8Array,
    targetOffset: number,
  ): Promise<void> {
    const d = this.#dirty.get(i);
    if (d !== undefined) {
      await this.#fillDirty(d, from, to, target, targetOffset);
      return;
    }
    const entry = this.#blocks[i] as BlockEntry;
    await this.#readBase(entry, from, to, target, targetOffset);
  }

  async #fillDirty(
    d: DirtyBlock,
    from: number,
    to: number,
    target: Uint8Array,
    targetOffset: number,
  ): Promise<void> {
    let at = from;
    for (const e of d.extents) {
      if (e.end <= at) continue;
      if (e.start >= to) break;
      if (e.start > at) {
        await this.#fillBase(d, at, e.start, target, targetOffset + (at - from));
        at = e.start;
      }
      const end = Math.min(e.end, to);
      await d.log.readInto(target, targetOffset + (at - from), e.logOffset + (at - e.start), end - at);
      at = end;
    }
    if (at < to) await this.#fillBase(d, at, to, target, targetOffset + (at - from));
  }

  /** Bytes of a dirty block that were not written: the old block's below baseReadable, else zeros. */
  async #fillBase(
    d: DirtyBlock,
    from: number,
    to: number,
    target: Uint8Array,
    targetOffset: number,
  ): Promise<void> {
    const split = Math.max(from, Math.min(to, d.baseReadable));
    if (split > from) await this.#readBase(d.base, from, split, target, targetOffset);
    if (to > split) target.fill(0, targetOffset + (split - from), targetOffset + (to - from));
  }

  async #readBase(
    entry: BlockEntry,
    from: number,
    to: number,
    target: Uint8Array,
    targetOffset: number,
  ): Promise<void> {
    if (to <= from) return;
    if (entry.blockId === HOLE_BLOCK_ID) {
      target.fill(0, targetOffset, targetOffset + (to - from));
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const workers = entry.addresses ?? (await this.#locationsOf(entry.blockId, attempt > 0));
      const located: LocatedBlock = { blockId: entry.blockId, offset: 0, length: entry.length, workers };
      try {
        await this.#reader.readInto(located, from, target, targetOffset, to - from);
        return;
      } catch (err) {
        if (attempt >= 1 || entry.addresses !== undefined) throw err;
      }
    }
  }

  /** Where an original block's copies are (fetched once, again after a failed read). */
  async #locationsOf(blockId: number, refresh: boolean): Promise<WorkerAddress[]> {
    if (this.#locations === undefined || refresh) {
      const r = await this.#ctx.master.call(GetBlockLocations, {
        path: this.path,
        ...(this.#caller === undefined ? {} : { caller: this.#caller }),
      });
      this.#locations = new Map(r.blocks.map((b) => [b.blockId, b.workers]));
    }
    const w = this.#locations.get(blockId);
    if (w === undefined) {
      throw new FsError(
        'EIO',
        `${this.path}: input/output error (block ${blockId}: no copy is known to the master)`,
        {
          details: { path: this.path, blockId },
        },
      );
    }
    return w;
  }

  async #abandonSuperseded(): Promise<void> {
    const ids = this.#superseded.splice(0);
    await Promise.all(ids.map((id) => this.#placer.abandon(id)));
  }

  async #release(): Promise<void> {
    await Promise.allSettled(this.#uploading.values());
    for (const d of this.#dirty.values()) await d.log.close().catch(() => undefined);
    this.#dirty.clear();
    await this.#reader.close();
  }
}
