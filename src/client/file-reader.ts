/**
 * An open file for reading: positional reads (`read(buffer, position)`, what FUSE and the S3
 * gateway's ranges need) and sequential streams (`createReadStream`, what `cat`/`get` need).
 *
 * The block list comes from GetBlockLocations when the file is opened. Ranges not covered by a
 * located block are holes and read as zeros. When no replica of a block can be read, the
 * locations are fetched again (the master may know new copies) and the read is retried with
 * backoff, a bounded number of times.
 *
 * Read-ahead: a stream keeps up to `client.read_ahead` bytes buffered ahead of its consumer
 * (the Readable's high-water mark). Positional reads that continue where the previous one ended
 * are served from a read-ahead window that streams ahead the same way; a jump cancels it.
 */
import { Readable } from 'node:stream';
import { FsError, fsError, toStrataError } from '../common/errors.js';
import type { Caller, FileStatus, LocatedBlock } from '../protocol/types.js';
import { GetBlockLocations } from '../protocol/master-calls.js';
import { LoadBlock } from '../protocol/ufs-worker-calls.js';
import { BlockReader, closeLocalDescriptors } from './block-reader.js';
import type { LocalDescriptor } from './block-reader.js';
import type { VerifiedFile } from './local-verify.js';
import { closedError } from './errors.js';
import { backoffMs, sleep } from './io-context.js';
import type { IoContext } from './io-context.js';
import {
  LOCAL_READ_CHUNK_BYTES,
  MAX_READ_ATTEMPTS,
  RETRY_BACKOFF_FIRST_MS,
  RETRY_BACKOFF_MAX_MS,
} from './settings.js';

/** Zeros served for holes, shared (never written to). */
const ZERO_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Buffer | undefined;
function zeros(n: number): Buffer {
  zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
  return n <= ZERO_CHUNK_BYTES ? zeroChunk.subarray(0, n) : Buffer.alloc(n);
}

/** Sequential positional reads in a row before a read-ahead window starts. */
const SEQUENTIAL_READS_TO_PREFETCH = 2;

export interface ReadStreamOptions {
  /** First byte (default 0). */
  start?: number;
  /** Last byte, inclusive like fs.createReadStream (default: end of file). */
  end?: number;
  /** Bytes buffered ahead of the consumer (default `client.read_ahead`, at least one chunk). */
  readAheadBytes?: number;
}

/** A block of the file whose bytes lie in a local block file (see `FileReader.openLocalBlocks`). */
export interface LocalBlockFile {
  /** Where the block starts in the file, and its bytes. */
  offset: number;
  length: number;
  /** Descriptor of the block file (the block's byte 0 is the file's byte 0); the caller closes it. */
  fd: number;
  /** The block file's checksums, when reads of it must check them (local-verify.ts). */
  checksums?: VerifiedFile;
}

export class FileReader {
  readonly path: string;
  #status: FileStatus;
  #blocks: LocatedBlock[];
  readonly #ctx: IoContext;
  readonly #caller: Caller | undefined;
  readonly #reader: BlockReader;
  #closed = false;
  /** Sequential-read detection for positional reads. */
  #lastEnd = -1;
  #sequentialRun = 0;
  #window: ReadAheadWindow | undefined;
  /** Blocks this reader asked a worker to fill ahead of it (see #fillAhead). */
  readonly #filledAhead = new Set<number>();

  private constructor(
    ctx: IoContext,
    path: string,
    status: FileStatus,
    blocks: LocatedBlock[],
    caller?: Caller,
  ) {
    this.#ctx = ctx;
    this.path = path;
    this.#status = status;
    this.#blocks = sortBlocks(blocks);
    this.#caller = caller;
    this.#reader = new BlockReader(ctx, path);
  }

  /** `located`: the file's status and blocks when the caller has them already (one call less). */
  static async open(
    ctx: IoContext,
    path: string,
    caller?: Caller,
    located?: { status: FileStatus; blocks: LocatedBlock[] },
  ): Promise<FileReader> {
    const r =
      located ??
      (await ctx.master.call(GetBlockLocations, caller === undefined ? { path } : { path, caller }));
    if (r.status.type === 'dir') throw fsError('EISDIR', path);
    return new FileReader(ctx, path, r.status, r.blocks, caller);
  }

  get status(): FileStatus {
    return this.#status;
  }

  get size(): number {
    return this.#status.size;
  }

  /** The located blocks as last fetched (holes are the gaps between them). */
  get blocks(): readonly LocatedBlock[] {
    return this.#blocks;
  }

  /**
   * Reads up to `length` bytes (default: what fits in `buffer` after `offset`) at `position` into
   * `buffer[offset…]`; resolves with the bytes read, 0 at end of file.
   */
  async read(
    buffer: Uint8Array,
    position: number,
    offset = 0,
    length = buffer.length - offset,
  ): Promise<number> {
    this.#checkOpen();
    if (!Number.isSafeInteger(position) || position < 0) {
      throw new FsError(
        'EINVAL',
        `${this.path}: read position must be a non-negative integer (got ${position})`,
      );
    }
    if (offset < 0 || length < 0 || offset + length > buffer.length) {
      throw new FsError('EINVAL', `${this.path}: read range outside the buffer`);
    }
    const n = Math.max(0, Math.min(length, this.size - position));
    if (n === 0) return 0;
    const sequential = position === this.#lastEnd;
    this.#sequentialRun = sequential ? this.#sequentialRun + 1 : 0;
    this.#lastEnd = position + n;
    const readAhead = this.#ctx.settings.readAheadBytes;
    // Short-circuit ranges go straight from the block file into the caller's buffer: the kernel
    // reads ahead in the file, and a window would only add a buffer and a copy per byte.
    const direct = this.#allLocal(position, position + n);
    if (readAhead > 0 && !direct && this.#sequentialRun >= SEQUENTIAL_READS_TO_PREFETCH) {
      if (this.#window === undefined || this.#window.position !== position) {
        this.#window?.cancel();
        this.#window = new ReadAheadWindow(
          this.#chunks(position, this.size, this.#chunkBytes()),
          position,
          readAhead,
        );
      }
      await this.#window.take(buffer, offset, n);
      return n;
    }
    if (this.#window !== undefined) {
      this.#window.cancel();
      this.#window = undefined;
    }
    if (direct && sequential) this.#prefetchAfter(position + n);
    await this.#readRange(position, buffer, offset, n);
    return n;
  }

  /** A Readable of bytes [start, end] with read-ahead (the reader stays open). */
  createReadStream(opts: ReadStreamOptions = {}): Readable {
    const chunks = this.chunks(opts);
    const readAhead = Math.max(opts.readAheadBytes ?? this.#ctx.settings.readAheadBytes, this.#chunkBytes());
    return new Readable({
      highWaterMark: readAhead,
      read(): void {
        chunks.next().then(
          (r) => this.push(r.done === true ? null : r.value),
          (err: unknown) => this.destroy(err as Error),
        );
      },
      destroy(err, cb): void {
        chunks.return(undefined).then(
          () => cb(err),
          () => cb(err),
        );
      },
    });
  }

  /** Bytes [start, end] as chunks of at most `client.read_chunk_size` (short-circuit: larger). */
  chunks(opts: ReadStreamOptions = {}): AsyncGenerator<Buffer> {
    this.#checkOpen();
    const start = opts.start ?? 0;
    const endExclusive = Math.min(this.size, opts.end === undefined ? this.size : opts.end + 1);
    return this.#chunks(start, Math.max(start, endExclusive), this.#chunkBytes());
  }

  /**
   * Every block of the file as a local block file the caller may read directly (pread), when
   * all of them are short-circuit readable and there are at most `maxBlocks`; undefined
   * otherwise (nothing is then left open). Ranges between the blocks are holes (zeros). The
   * caller owns the descriptors. The view is the block list this reader has now: as with
   * `read`, a later commit elsewhere is seen only by a new reader.
   */
  async openLocalBlocks(maxBlocks: number): Promise<LocalBlockFile[] | undefined> {
    this.#checkOpen();
    if (this.#blocks.length > maxBlocks) return undefined;
    // Nothing is opened unless every block may be: a file partly remote or being filled costs
    // no worker calls each time it is asked.
    if (!this.#allLocal(0, this.size)) return undefined;
    const blocks = this.#blocks;
    const files = await Promise.all(blocks.map((b) => this.#reader.openLocalDescriptor(b)));
    const opened = files.filter((f) => f !== undefined);
    if (opened.length < blocks.length || this.#closed) {
      await closeLocalDescriptors(opened.map((f) => f.fd));
      return undefined;
    }
    return blocks.map((b, i) => ({ offset: b.offset, length: b.length, ...(files[i] as LocalDescriptor) }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#window?.cancel();
    this.#window = undefined;
    await this.#reader.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError(`reader of ${this.path}`);
  }

  #chunkBytes(): number {
    return this.#ctx.settings.readChunkBytes;
  }

  /** Whether every block of [start, end) would be read short-circuit (holes count as local). */
  #allLocal(start: number, end: number): boolean {
    if (!this.#ctx.settings.shortCircuit) return false;
    for (let pos = start; pos < end;) {
      const seg = this.#segmentAt(pos, end);
      const b = seg.block;
      if (b !== undefined) {
        if (b.fill === true) return false;
        const first = this.#reader.order(b)[0];
        if (first === undefined || !this.#ctx.workers.isLocal(first)) return false;
      }
      pos += seg.length;
    }
    return true;
  }

  /** Fetches the block locations again (after every replica of a block failed). */
  async #refresh(): Promise<void> {
    const caller = this.#caller;
    const r = await this.#ctx.master.call(
      GetBlockLocations,
      caller === undefined ? { path: this.path } : { path: this.path, caller },
    );
    if (r.status.id !== this.#status.id) {
      throw new FsError('ESTALE', `${this.path}: stale file handle (the file was replaced while open)`, {
        details: { path: this.path },
      });
    }
    this.#blocks = sortBlocks(r.blocks);
  }

  /** Reads file bytes [position, position + n) (within the file) into buffer[offset…]. */
  async #readRange(position: number, buffer: Uint8Array, offset: number, n: number): Promise<void> {
    let pos = position;
    const end = position + n;
    let attempt = 0;
    while (pos < end) {
      const seg = this.#segmentAt(pos, end);
      const into = offset + (pos - position);
      if (seg.block === undefined) {
        buffer.fill(0, into, into + seg.length);
        pos += seg.length;
        continue;
      }
      try {
        await this.#reader.readInto(seg.block, pos - seg.block.offset, buffer, into, seg.length);
        pos += seg.length;
        attempt = 0;
      } catch (err) {
        attempt = await this.#retryOrThrow(err, attempt);
      }
    }
  }

  /** After a failed block read: refresh locations and back off, or give up. Returns the next attempt number. */
  async #retryOrThrow(err: unknown, attempt: number): Promise<number> {
    if (!(err instanceof FsError) || err.code !== 'EIO' || attempt + 1 >= MAX_READ_ATTEMPTS) throw err;
    await sleep(backoffMs(attempt, RETRY_BACKOFF_FIRST_MS, RETRY_BACKOFF_MAX_MS));
    await this.#refresh();
    return attempt + 1;
  }

  /** Opens the local file of the block after the one that ends at or beyond `pos` (sequential reads). */
  #prefetchAfter(pos: number): void {
    const next = this.#blocks[this.#lastBlockAt(pos - 1) + 1];
    if (next !== undefined) this.#reader.prefetchLocal(next);
  }

  /** Index of the last block starting at or before `pos` (-1: none). */
  #lastBlockAt(pos: number): number {
    const blocks = this.#blocks;
    let lo = 0;
    let hi = blocks.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((blocks[mid] as LocatedBlock).offset <= pos) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The block (or hole) covering `pos`, and how many bytes of it to take before `end`. */
  #segmentAt(pos: number, end: number): { block: LocatedBlock | undefined; length: number } {
    const blocks = this.#blocks;
    const found = this.#lastBlockAt(pos);
    const cur = found >= 0 ? blocks[found] : undefined;
    if (cur !== undefined && pos < cur.offset + cur.length) {
      return { block: cur, length: Math.min(end, cur.offset + cur.length) - pos };
    }
    const next = blocks[found + 1];
    const holeEnd = next === undefined ? end : Math.min(end, next.offset);
    return { block: undefined, length: holeEnd - pos };
  }

  /** File bytes [start, end) as chunks, across blocks and holes, with failover and refresh. */
  async *#chunks(start: number, end: number, chunkBytes: number): AsyncGenerator<Buffer> {
    let pos = start;
    let attempt = 0;
    const localChunk = Math.max(chunkBytes, LOCAL_READ_CHUNK_BYTES);
    while (pos < end) {
      if (this.#closed) throw closedError(`reader of ${this.path}`);
      const seg = this.#segmentAt(pos, end);
      if (seg.block === undefined) {
        let left = seg.length;
        while (left > 0) {
          const n = Math.min(left, ZERO_CHUNK_BYTES);
          yield Buffer.from(zeros(n));
          left -= n;
          pos += n;
        }
        continue;
      }
      try {
        const b = seg.block;
        if (b.fill === true) this.#fillAhead(b, end);
        for await (const chunk of this.#reader.stream(b, pos - b.offset, seg.length, localChunk)) {
          pos += chunk.length;
          attempt = 0;
          yield chunk;
        }
      } catch (err) {
        attempt = await this.#retryOrThrow(err, attempt);
      }
    }
  }

  /**
   * A sequential reader starting to read block `b` through from the UFS: the next block's fill
   * starts now too (worker.loadBlock on the worker assigned to it), so its fetch overlaps this
   * one's; reaching it, the reader joins that fill where it is (the worker streams the bytes
   * received so far from its staging file, then the rest live). One block ahead, within the
   * range read; best effort (a failure only means the reader starts that fill itself).
   */
  #fillAhead(b: LocatedBlock, end: number): void {
    const i = this.#blocks.indexOf(b);
    const next = i >= 0 ? this.#blocks[i + 1] : undefined;
    if (next === undefined || next.offset >= end || next.fill !== true || next.ufs === undefined) return;
    if (!next.ufs.cache || this.#filledAhead.has(next.blockId)) return;
    const w = next.workers[0];
    if (w === undefined) return;
    this.#filledAhead.add(next.blockId);
    this.#ctx.workers
      .channel(w)
      .call(LoadBlock, { blockId: next.blockId, source: next.ufs })
      .catch((err: unknown) =>
        this.#ctx.log.debug(
          { err, blockId: next.blockId, path: this.path },
          'filling the next block ahead failed',
        ),
      );
  }
}

function sortBlocks(blocks: LocatedBlock[]): LocatedBlock[] {
  return [...blocks].sort((a, b) => a.offset - b.offset);
}

/**
 * Bytes streamed ahead of a sequential positional reader, at most `limitBytes` buffered.
 * `take` copies from the front; the producer refills in the background.
 */
class ReadAheadWindow {
  /** File position of the next byte `take` returns. */
  position: number;
  readonly #source: AsyncGenerator<Buffer>;
  readonly #limitBytes: number;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #error: Error | undefined;
  #done = false;
  #cancelled = false;
  #producing = false;
  #wake: (() => void) | undefined;

  constructor(source: AsyncGenerator<Buffer>, position: number, limitBytes: number) {
    this.#source = source;
    this.position = position;
    this.#limitBytes = limitBytes;
    this.#produce();
  }

  async take(target: Uint8Array, offset: number, n: number): Promise<void> {
    let got = 0;
    while (got < n) {
      const head = this.#queue[0];
      if (head !== undefined) {
        const k = Math.min(head.length, n - got);
        head.copy(target, offset + got, 0, k);
        got += k;
        this.position += k;
        this.#queuedBytes -= k;
        if (k === head.length) this.#queue.shift();
        else this.#queue[0] = head.subarray(k);
        this.#produce();
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#done) throw new FsError('EIO', 'read-ahead ended before the end of the file');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  cancel(): void {
    this.#cancelled = true;
    this.#queue.length = 0;
    void this.#source.return(undefined).catch(() => undefined);
  }

  #produce(): void {
    if (this.#producing || this.#done || this.#cancelled || this.#queuedBytes >= this.#limitBytes) return;
    this.#producing = true;
    void (async () => {
      try {
        while (!this.#cancelled && this.#queuedBytes < this.#limitBytes) {
          const r = await this.#source.next();
          if (r.done === true) {
            this.#done = true;
            break;
          }
          this.#queue.push(r.value);
          this.#queuedBytes += r.value.length;
          this.#notify();
        }
      } catch (err) {
        this.#error = toStrataError(err);
      } finally {
        this.#producing = false;
        this.#notify();
      }
    })();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
