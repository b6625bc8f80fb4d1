/**
 * A new file being written sequentially (`create`): bytes are cut into `block_size` blocks, each
 * placed by the master and written to its replicas in parallel while the bytes arrive; the file
 * becomes visible with its block list at `close` (one Complete). The lease is renewed meanwhile.
 *
 * Small writes are gathered into chunks before they go out. When a replica fails mid-block, the
 * block is abandoned, placed again without that worker and the bytes written so far are replayed:
 * from the short-circuit replica's file when the block has one, else from a copy the writer keeps
 * of the current block (memory within the client's budget, a temp file beyond).
 */
import { Writable } from 'node:stream';
import type { StorageType, TtlAction } from '../common/config/index.js';
import { FsError, StrataError } from '../common/errors.js';
import type { Caller, FileStatus, WorkerAddress } from '../protocol/types.js';
import { Complete, CompleteAs, Create, Delete, MAX_COMPLETE_XATTRS } from '../protocol/master-calls.js';
import { MAX_XATTR_VALUE_BYTES } from '../protocol/types.js';
import { BlockWriteError } from './block-writer.js';
import type { BlockWriteSession } from './block-writer.js';
import { closedError, isUnreachable, normaliseError } from './errors.js';
import type { IoContext } from './io-context.js';
import { LeaseKeeper } from './lease.js';
import { BlockPlacer } from './placement.js';
import type { PlacedBlock } from './placement.js';
import { MAX_BLOCK_PLACEMENTS } from './settings.js';
import { SpillBuffer } from './spill-buffer.js';

/**
 * Blocks finishing in the background while the next is written. Each may hold a kept copy (when
 * no replica is short-circuit), so this bounds the writer's memory at (1 + this) blocks.
 */
export const MAX_FINISHING_BLOCKS = 2;
/** Size of the gathering buffer for small writes (and of the replay copy's pieces). */
export const WRITE_GATHER_BYTES = 1024 * 1024;

export interface CreateOptions {
  /** Replace an existing file. */
  overwrite?: boolean;
  /** Create missing parent directories. */
  parents?: boolean;
  mode?: number;
  blockSizeBytes?: number;
  replicas?: number;
  storageType?: StorageType;
  ttlMs?: number;
  ttlAction?: TtlAction;
  /** Expected length, if known: lets workers reserve space. */
  sizeHintBytes?: number;
  /**
   * The master places the first block with the create (one round trip less before the first
   * byte goes out). For writers that will write: an unused block is given back at close.
   */
  placeFirstBlock?: boolean;
}

/**
 * How `close` commits the file. With either field the file is completed, given its attributes and
 * renamed in one master transaction (CompleteAs): it appears under `renameTo` whole, with its
 * attributes, or not at all.
 */
export interface CloseOptions {
  /** Extended attributes set on the file as it completes (at most MAX_COMPLETE_XATTRS). */
  xattrs?: Readonly<Record<string, Uint8Array>>;
  /**
   * Path the completed file is renamed to, replacing a file there. When the master refuses the
   * rename (a missing parent: ENOENT/ENOTDIR, a directory there: EISDIR) nothing is committed and
   * the writer stays open for another `close` (no more writes) or `abort`.
   */
  renameTo?: string;
  /**
   * Closed files appended after what was written, in order, by moving their blocks (no byte is
   * copied); their names go in the same commit. Each names the file id the caller expects at its
   * path (ESTALE when it changed). At most MAX_CONCAT_FILES; not under a mount.
   */
  concat?: readonly { path: string; fileId: number }[];
  /** The file's mtime (default: the master's clock at the commit). */
  mtimeMs?: number;
}

/** Refusals of a close's rename that leave the writer ready for another close. */
const RENAME_REFUSALS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

/**
 * The block being written, or one being finished: its write session and, when no replica is
 * short-circuit, the copy of its bytes kept for replay.
 */
interface OpenBlock {
  session: BlockWriteSession;
  retained: SpillBuffer | undefined;
}

export class FileWriter {
  readonly path: string;
  readonly #ctx: IoContext;
  readonly #status: FileStatus;
  readonly #leaseId: string;
  readonly #blockSize: number;
  readonly #placer: BlockPlacer;
  readonly #lease: LeaseKeeper;
  readonly #sizeHint: number | undefined;
  /** The first block as the master placed it with the create, until the first write uses it. */
  #preplaced: { blockId: number; workers: WorkerAddress[] } | undefined;
  /** Who the writer acts as (CompleteAs checks the rename and attributes against it). */
  readonly #caller: Caller | undefined;
  /** Committed-to-be block list; a slot is filled when its block is finished. */
  readonly #blocks: (PlacedBlock | undefined)[] = [];
  #current: OpenBlock | undefined;
  /**
   * Previous blocks, finishing (the worker checksums, syncs and publishes them) while the next one
   * is written, oldest first: the sync of one block overlaps the bytes of the next.
   */
  readonly #finishing: { block: OpenBlock; done: Promise<void> }[] = [];
  #gather: Buffer | undefined;
  #gathered = 0;
  #bytes = 0;
  /** `sealed`: every block is finished, the commit was refused and may be asked again (close). */
  #state: 'open' | 'closing' | 'sealed' | 'closed' | 'failed' = 'open';
  #failure: StrataError | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #final: FileStatus | undefined;

  private constructor(
    ctx: IoContext,
    path: string,
    status: FileStatus,
    leaseId: string,
    sizeHint?: number,
    caller?: Caller,
  ) {
    this.#ctx = ctx;
    this.path = path;
    this.#status = status;
    this.#leaseId = leaseId;
    this.#blockSize = status.blockSize > 0 ? status.blockSize : ctx.settings.blockSizeBytes;
    this.#placer = new BlockPlacer(ctx, path, status.id, leaseId, status.storageType);
    this.#lease = new LeaseKeeper(ctx.master, status.id, leaseId, ctx.log);
    this.#sizeHint = sizeHint;
    this.#caller = caller;
  }

  static async create(
    ctx: IoContext,
    path: string,
    opts: CreateOptions = {},
    caller?: Caller,
  ): Promise<FileWriter> {
    const s = ctx.settings;
    const r = await ctx.master.call(Create, {
      path,
      ...(opts.overwrite === undefined ? {} : { overwrite: opts.overwrite }),
      ...(opts.parents === undefined ? {} : { parents: opts.parents }),
      ...(opts.mode === undefined ? {} : { mode: opts.mode }),
      blockSize: opts.blockSizeBytes ?? s.blockSizeBytes,
      replicas: opts.replicas ?? s.replicas,
      storageType: opts.storageType ?? s.storageType,
      ttlMs: opts.ttlMs ?? s.ttlMs,
      ttlAction: opts.ttlAction ?? s.ttlAction,
      clientHost: s.clientHost,
      ...(opts.placeFirstBlock === true
        ? {
            firstBlock: {
              clientHostId: s.hostId,
              ...(opts.sizeHintBytes === undefined
                ? {}
                : { lengthHint: Math.min(opts.sizeHintBytes, opts.blockSizeBytes ?? s.blockSizeBytes) }),
            },
          }
        : {}),
      ...(caller === undefined ? {} : { caller }),
    });
    const w = new FileWriter(ctx, path, r.status, r.leaseId, opts.sizeHintBytes, caller);
    w.#preplaced = r.firstBlock;
    return w;
  }

  /** The file as created (state "writing"); `close` returns the final status. */
  get status(): FileStatus {
    return this.#final ?? this.#status;
  }

  /** Bytes accepted so far. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /** Appends `data`; resolves when the bytes are with the workers (or gathered for the next chunk). */
  write(data: Uint8Array): Promise<void> {
    return this.#enqueue(() => this.#write(data));
  }

  /**
   * Ends the file: the last block is finished and the block list committed (with `opts`, also
   * its attributes and a rename, in the same commit: see CloseOptions).
   */
  close(opts: CloseOptions = {}): Promise<FileStatus> {
    return this.#enqueue(async () => {
      if (this.#state === 'closed' && this.#final !== undefined) return this.#final;
      if (this.#state !== 'sealed') {
        this.#checkWritable();
        this.#state = 'closing';
        try {
          await this.#flushGather();
          if (this.#current !== undefined) await this.#finishBlock(false);
          await this.#settleFinishing();
        } catch (err) {
          throw this.#fail(err);
        }
      }
      try {
        const lost = this.#lease.lost;
        if (lost !== undefined) throw lost;
        const blocks = this.#blocks.map((b) => {
          if (b === undefined)
            throw new StrataError('STRATA_INTERNAL', `${this.path}: a block was never finished`);
          return { blockId: b.blockId, length: b.length, workers: b.workers };
        });
        const base = {
          fileId: this.#status.id,
          leaseId: this.#leaseId,
          blocks,
          length: this.#bytes,
          ...(opts.mtimeMs === undefined ? {} : { mtimeMs: opts.mtimeMs }),
        };
        this.#final =
          opts.xattrs === undefined && opts.renameTo === undefined && opts.concat === undefined
            ? await this.#ctx.master.call(Complete, base, this.#completeDeadline(opts))
            : await this.#completeAs(base, opts);
        this.#state = 'closed';
        this.#lease.stop();
        return this.#final;
      } catch (err) {
        if (opts.renameTo !== undefined && err instanceof FsError && RENAME_REFUSALS.has(err.code)) {
          // Nothing was committed and the lease is still held: the caller may close again.
          this.#state = 'sealed';
          throw err;
        }
        this.#lease.stop();
        throw this.#fail(err);
      }
    });
  }

  /**
   * A complete under a `through` mount answers once the master has written the whole file to the
   * UFS, which takes as long as the file is big; one completed onto another name may land under
   * such a mount. Those get `complete_timeout` instead of the metadata call deadline.
   */
  #completeDeadline(opts: CloseOptions): { deadlineMs: number } | undefined {
    const mayPersist = this.#status.writeType === 'through' || opts.renameTo !== undefined;
    return mayPersist ? { deadlineMs: this.#ctx.settings.completeTimeoutMs } : undefined;
  }

  /** The CompleteAs call: attribute values travel concatenated as the raw payload. */
  async #completeAs(
    base: {
      fileId: number;
      leaseId: string;
      blocks: { blockId: number; length: number; workers: string[] }[];
      length: number;
      mtimeMs?: number;
    },
    opts: CloseOptions,
  ): Promise<FileStatus> {
    const entries = Object.entries(opts.xattrs ?? {});
    if (entries.length > MAX_COMPLETE_XATTRS)
      throw new FsError('E2BIG', `${this.path}: at most ${MAX_COMPLETE_XATTRS} attributes on close`);
    for (const [name, value] of entries) {
      if (value.length > MAX_XATTR_VALUE_BYTES)
        throw new FsError(
          'E2BIG',
          `${this.path}: attribute ${name} of ${value.length} bytes exceeds ${MAX_XATTR_VALUE_BYTES}`,
        );
    }
    return this.#ctx.master.call(
      CompleteAs,
      {
        ...base,
        ...(entries.length === 0
          ? {}
          : { xattrs: entries.map(([name, value]) => ({ name, length: value.length })) }),
        ...(opts.renameTo === undefined ? {} : { renameTo: opts.renameTo }),
        ...(opts.concat === undefined ? {} : { concat: [...opts.concat] }),
        ...(this.#caller === undefined ? {} : { caller: this.#caller }),
      },
      { payload: Buffer.concat(entries.map(([, value]) => value)), ...this.#completeDeadline(opts) },
    );
  }

  /**
   * Gives up the file: blocks in flight are abandoned and the file is removed (a half-written
   * file is worse than none). Safe to call after a failure; never throws.
   */
  async abort(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'failed';
    this.#failure ??= new FsError('EIO', `${this.path}: write aborted`);
    await this.#queue.catch(() => undefined);
    this.#lease.stop();
    const open = [this.#current, ...this.#finishing.map((f) => f.block)];
    await Promise.allSettled(this.#finishing.map((f) => f.done));
    this.#current = undefined;
    this.#finishing.length = 0;
    for (const b of open) if (b !== undefined) await b.session.abort();
    for (const b of open) await b?.retained?.close({ recycle: false }).catch(() => undefined);
    // Without a master there is nobody to tell: its lease timeout ends the file and reclaims the
    // blocks. Asking anyway would only wait out a deadline per call.
    if (isUnreachable(this.#failure)) return;
    const ids = [...open.map((b) => b?.session.blockId), ...this.#blocks.map((b) => b?.blockId)];
    for (const id of ids) if (id !== undefined) await this.#placer.abandon(id);
    await this.#ctx.master.call(Delete, { path: this.path }).catch((err: unknown) => {
      this.#ctx.log.debug({ err, path: this.path }, 'removing an aborted file failed');
    });
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(op);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #checkWritable(): void {
    if (this.#state === 'failed') throw this.#failure ?? closedError(`writer of ${this.path}`);
    if (this.#state !== 'open') throw closedError(`writer of ${this.path}`);
    const lost = this.#lease.lost;
    if (lost !== undefined) throw this.#fail(lost);
  }

  #fail(err: unknown): StrataError {
    this.#state = 'failed';
    this.#failure ??= normaliseError(err);
    this.#lease.stop();
    return this.#failure;
  }

  async #write(data: Uint8Array): Promise<void> {
    this.#checkWritable();
    try {
      let at = 0;
      while (at < data.length) {
        const blockLeft = this.#blockSize - ((this.#bytes + this.#gathered) % this.#blockSize);
        const room = Math.min(blockLeft, data.length - at);
        if (this.#gathered === 0 && room >= WRITE_GATHER_BYTES) {
          // Large write: send it as is, no gathering copy.
          await this.#send(Buffer.from(data.buffer, data.byteOffset + at, room), false);
          at += room;
          continue;
        }
        this.#gather ??= Buffer.allocUnsafe(WRITE_GATHER_BYTES);
        const n = Math.min(room, WRITE_GATHER_BYTES - this.#gathered);
        this.#gather.set(data.subarray(at, at + n), this.#gathered);
        this.#gathered += n;
        at += n;
        if (this.#gathered === WRITE_GATHER_BYTES || n === blockLeft) await this.#flushGather();
      }
    } catch (err) {
      throw this.#fail(err);
    }
  }

  async #flushGather(): Promise<void> {
    if (this.#gathered === 0 || this.#gather === undefined) return;
    const piece = this.#gather.subarray(0, this.#gathered);
    this.#gather = undefined;
    this.#gathered = 0;
    await this.#send(piece, true);
  }

  /**
   * Sends bytes that fit in the current block; finishes the block when it is full. A piece the
   * caller still owns is copied once when it must outlive this call (an RPC replica sends it
   * later, or it is kept for replay).
   */
  async #send(input: Buffer, owned: boolean): Promise<void> {
    this.#current ??= await this.#openBlock();
    let piece = input;
    let mine = owned;
    /** The piece is in the current block's kept copy already (appended before it was sent). */
    let kept: boolean;
    for (let attempt = 0; ; attempt++) {
      const cur: OpenBlock = this.#current;
      kept = false;
      let pieces: Buffer[] | undefined;
      if (!mine && cur.retained !== undefined) {
        // Copied once, into the kept copy's pooled segments, and sent as views of them: no fresh
        // buffer per write. The segments stay unchanged until the block is finished (or dropped).
        const at = await this.#keep(cur.retained, input, false);
        kept = true;
        pieces = cur.retained.views(at, input.length);
      }
      if (pieces === undefined && !mine && (cur.session.hasRemoteTarget || cur.retained !== undefined)) {
        piece = Buffer.from(input);
        mine = true;
      }
      try {
        if (pieces === undefined) await cur.session.write(piece);
        else await cur.session.writeAll(pieces);
        break;
      } catch (err) {
        if (!(err instanceof BlockWriteError) || attempt + 1 >= MAX_BLOCK_PLACEMENTS) {
          throw err instanceof BlockWriteError ? this.#placer.gaveUp(err) : err;
        }
        this.#current = await this.#replace(cur, err);
      }
    }
    const retained = this.#current.retained;
    if (retained !== undefined && !kept) await this.#keep(retained, piece, true);
    this.#bytes += piece.length;
    if (this.#bytes % this.#blockSize === 0) await this.#finishBlock(true);
  }

  /** Appends to a block's kept copy (copied unless `owned`), counting what spilled to disk. */
  async #keep(retained: SpillBuffer, data: Buffer, owned: boolean): Promise<number> {
    const before = retained.spilledBytes;
    const at = owned ? await retained.appendOwned(data) : await retained.append(data);
    const spilled = retained.spilledBytes - before;
    if (spilled > 0) this.#ctx.metrics?.spilled(spilled);
    return at;
  }

  async #openBlock(): Promise<OpenBlock> {
    const preplaced = this.#preplaced;
    this.#preplaced = undefined;
    const session = await this.#placer.open(this.#lengthHint(), preplaced);
    return {
      session,
      retained: session.hasLocalTarget
        ? undefined
        : new SpillBuffer(this.#ctx.budget, this.#ctx.settings.spillDir),
    };
  }

  /**
   * Ends the current block. In the background (a full block mid-file) it finishes while the next
   * block is written; at most MAX_FINISHING_BLOCKS finish at a time.
   */
  async #finishBlock(background: boolean): Promise<void> {
    const block = this.#current;
    if (block === undefined) return;
    this.#current = undefined;
    while (this.#finishing.length >= (background ? MAX_FINISHING_BLOCKS : Number.POSITIVE_INFINITY)) {
      await (this.#finishing.shift() as { done: Promise<void> }).done;
    }
    const slot = this.#blocks.length;
    this.#blocks.push(undefined);
    const done = this.#complete(block, slot);
    if (!background) {
      await done;
      return;
    }
    // Awaited by the next finish or by close; the catch only keeps an early failure from being unhandled.
    done.catch(() => undefined);
    this.#finishing.push({ block, done });
  }

  async #settleFinishing(): Promise<void> {
    while (this.#finishing.length > 0) await (this.#finishing.shift() as { done: Promise<void> }).done;
  }

  /** Finishes one block (re-placing it when a replica fails) and records it in its slot. */
  async #complete(first: OpenBlock, slot: number): Promise<void> {
    let block = first;
    for (let attempt = 0; ; attempt++) {
      try {
        const workers = await block.session.finish();
        await block.session.close();
        this.#blocks[slot] = {
          blockId: block.session.blockId,
          length: block.session.length,
          workers,
          addresses: [...block.session.workers],
        };
        await block.retained?.close();
        return;
      } catch (err) {
        if (!(err instanceof BlockWriteError) || attempt + 1 >= MAX_BLOCK_PLACEMENTS) {
          await this.#dropBlock(block);
          throw err instanceof BlockWriteError ? this.#placer.gaveUp(err) : err;
        }
        block = await this.#replace(block, err);
      }
    }
  }

  /** Abandons a block that will not be used (best effort). */
  async #dropBlock(block: OpenBlock): Promise<void> {
    await block.session.abort();
    await this.#placer.abandon(block.session.blockId);
    // Not recycled: the abandoned streams may still have views of it queued on a socket.
    await block.retained?.close({ recycle: false }).catch(() => undefined);
  }

  /**
   * A block failed on some replicas: place it again without them and replay the bytes written so
   * far into the new placement (from the short-circuit replica's file, else from the kept copy);
   * then let the old placement go.
   */
  async #replace(old: OpenBlock, err: BlockWriteError): Promise<OpenBlock> {
    this.#placer.exclude(err);
    this.#ctx.metrics?.replacement();
    this.#ctx.metrics?.failover('write');
    this.#ctx.log.warn(
      { err, path: this.path, blockId: old.session.blockId },
      'block write failed; placing it again',
    );
    const length = old.session.length;
    for (let attempt = 0; ; attempt++) {
      const next = await this.#openBlock();
      try {
        for (let at = 0; at < length; at += WRITE_GATHER_BYTES) {
          const n = Math.min(WRITE_GATHER_BYTES, length - at);
          const piece =
            old.retained !== undefined ? await old.retained.read(at, n) : await old.session.readBack(at, n);
          await next.session.write(piece);
          await next.retained?.appendOwned(piece);
        }
      } catch (e) {
        await this.#dropBlock(next);
        if (!(e instanceof BlockWriteError) || attempt + 1 >= MAX_BLOCK_PLACEMENTS) {
          await this.#dropBlock(old);
          throw e instanceof BlockWriteError ? this.#placer.gaveUp(e) : e;
        }
        this.#placer.exclude(e);
        continue;
      }
      await this.#dropBlock(old);
      return next;
    }
  }

  #lengthHint(): number | undefined {
    if (this.#sizeHint === undefined) return undefined;
    const left = this.#sizeHint - this.#bytes;
    return Math.max(0, Math.min(this.#blockSize, left));
  }
}

/** A Node Writable over a FileWriter; `status` holds the committed file after 'finish'. */
export class FileWriteStream extends Writable {
  readonly path: string;
  status: FileStatus | undefined;
  readonly #open: () => Promise<FileWriter>;
  #writer: FileWriter | undefined;

  constructor(path: string, open: () => Promise<FileWriter>, highWaterMarkBytes = WRITE_GATHER_BYTES * 4) {
    super({ highWaterMark: highWaterMarkBytes, decodeStrings: true });
    this.path = path;
    this.#open = open;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.#open().then(
      (w) => {
        this.#writer = w;
        callback();
      },
      (err: unknown) => callback(normaliseError(err)),
    );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    const w = this.#writer;
    if (w === undefined) {
      callback(closedError(`writer of ${this.path}`));
      return;
    }
    w.write(chunk).then(
      () => callback(),
      (err: unknown) => callback(normaliseError(err)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const w = this.#writer;
    if (w === undefined) {
      callback(closedError(`writer of ${this.path}`));
      return;
    }
    w.close().then(
      (st) => {
        this.status = st;
        callback();
      },
      (err: unknown) => callback(normaliseError(err)),
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const w = this.#writer;
    if (err === null || w === undefined || this.status !== undefined) {
      callback(err);
      return;
    }
    w.abort().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
