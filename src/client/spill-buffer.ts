/**
 * Bounded memory for data a writer must keep: the bytes of the block being written (to replay
 * them on other workers when one fails) and the dirty pages of a random-write handle.
 *
 * A `SpillBuffer` is an append-only byte log. Appends are copied into memory segments (pooled
 * across the process) while the client's `MemoryBudget` allows, and go to an anonymous temp file
 * beyond it (created in the spill directory and unlinked at once, so a crash leaves nothing
 * behind). `reset` empties the log and gives its memory back.
 */
import { open, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export class MemoryBudget {
  readonly limitBytes: number;
  #usedBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  tryAcquire(bytes: number): boolean {
    if (this.#usedBytes + bytes > this.limitBytes) return false;
    this.#usedBytes += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#usedBytes -= bytes;
    if (this.#usedBytes < 0)
      throw new Error(`memory budget released more than acquired (${this.#usedBytes})`);
  }
}

/**
 * Capacity of a full memory segment. Appends are copied into segments of this size taken from a
 * process-wide pool, not into a fresh buffer each: a sequential writer through FUSE copied every
 * 1 MiB request into a new buffer, and V8 ran a mark-compact every 100-200 ms on the external
 * memory that made (~25% of the event loop, docs/fuse.md).
 */
export const SPILL_SEGMENT_BYTES = 1024 * 1024;
/**
 * First segment of a log whose first append is small (a few random writes to a block should not
 * hold a whole segment of the budget). Later segments double up to SPILL_SEGMENT_BYTES, so the
 * log's memory segments past its first MiB start at multiples of SPILL_SEGMENT_BYTES (see `view`).
 */
export const SPILL_FIRST_SEGMENT_BYTES = 64 * 1024;
/**
 * Free segments the pool keeps for reuse: one default block (128 MiB), so a sequential writer
 * refills the next block from the one just uploaded; more are left to the garbage collector.
 */
export const SPILL_POOL_MAX_SEGMENTS = 128;
/** A pool nobody took from for this long gives its free segments to the garbage collector. */
export const SPILL_POOL_IDLE_MS = 10_000;

/** Full-size segments no log holds, for the next appends of any log in this process. */
const freeSegments: Buffer[] = [];
let poolTakenSinceCheck = false;
let poolTrimTimer: NodeJS.Timeout | undefined;

function takeSegment(): Buffer {
  poolTakenSinceCheck = true;
  return freeSegments.pop() ?? Buffer.allocUnsafeSlow(SPILL_SEGMENT_BYTES);
}

function giveSegment(buf: Buffer): void {
  if (freeSegments.length < SPILL_POOL_MAX_SEGMENTS) freeSegments.push(buf);
  poolTrimTimer ??= setInterval(trimIdlePool, SPILL_POOL_IDLE_MS).unref();
}

/** Drops the free segments when no log took one since the last check (the writers went quiet). */
function trimIdlePool(): void {
  if (!poolTakenSinceCheck) {
    freeSegments.length = 0;
    clearInterval(poolTrimTimer);
    poolTrimTimer = undefined;
  }
  poolTakenSinceCheck = false;
}

interface MemSegment {
  logOffset: number;
  buf: Buffer;
  /** Bytes of `buf` holding log data (the rest is room for the next appends). */
  used: number;
  /** From the segment pool: given back when the log is emptied. */
  pooled: boolean;
}

export class SpillBuffer {
  readonly #budget: MemoryBudget;
  readonly #spillDir: string;
  /** Memory segments cover [0, #memBytes) of the log; the spill file holds the rest. */
  #segments: MemSegment[] = [];
  #memBytes = 0;
  /** Capacity of the memory segments: what this log holds of the budget. */
  #heldBytes = 0;
  #size = 0;
  /** Once anything spilled, later appends spill too, so the log stays one memory prefix + one file. */
  #spilling = false;
  #file: FileHandle | undefined;
  #closed = false;

  constructor(budget: MemoryBudget, spillDir: string) {
    this.#budget = budget;
    this.#spillDir = spillDir;
  }

  /** Bytes in the log. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of the log held on disk. */
  get spilledBytes(): number {
    return this.#size - this.#memBytes;
  }

  /** Appends a copy of `data`; returns its offset in the log. */
  async append(data: Uint8Array): Promise<number> {
    if (this.#closed) throw new Error('spill buffer is closed');
    const at = this.#size;
    if (data.length === 0) return at;
    let done = 0;
    while (!this.#spilling && done < data.length) {
      let seg = this.#segments[this.#segments.length - 1];
      if (seg === undefined || seg.used === seg.buf.length) {
        const next = this.#newSegment(data.length - done);
        if (next === undefined) {
          this.#spilling = true;
          break;
        }
        seg = next;
      }
      const n = Math.min(data.length - done, seg.buf.length - seg.used);
      seg.buf.set(n === data.length ? data : data.subarray(done, done + n), seg.used);
      seg.used += n;
      done += n;
      this.#memBytes += n;
      this.#size += n;
    }
    if (done === data.length) return at;
    const f = await this.#spillFile();
    const fileOffset = this.#size - this.#memBytes;
    const rest = data.length - done;
    for (let written = 0; written < rest;) {
      const { bytesWritten } = await f.write(data, done + written, rest - written, fileOffset + written);
      written += bytesWritten;
    }
    this.#size += rest;
    return at;
  }

  /**
   * Appends `data` without copying it when it fits in memory: the caller gives the buffer up and
   * must not change it afterwards.
   */
  async appendOwned(data: Buffer): Promise<number> {
    if (this.#closed) throw new Error('spill buffer is closed');
    const at = this.#size;
    if (data.length === 0) return at;
    if (!this.#spilling && this.#budget.tryAcquire(data.length)) {
      this.#segments.push({ logOffset: at, buf: data, used: data.length, pooled: false });
      this.#memBytes += data.length;
      this.#heldBytes += data.length;
      this.#size += data.length;
      return at;
    }
    return this.append(data);
  }

  /**
   * Log bytes [logOffset, logOffset + length) without a copy, when they lie in one memory
   * segment; undefined otherwise (read them with `readInto`). The view is valid until the log is
   * reset or closed: its bytes never change before (the log is append-only), and after that the
   * memory may hold another log's bytes.
   */
  view(logOffset: number, length: number): Buffer | undefined {
    const v = this.views(logOffset, length);
    return v?.length === 1 ? v[0] : undefined;
  }

  /**
   * Log bytes [logOffset, logOffset + length) as views of the memory segments holding them (one
   * per segment), or undefined when part of the range spilled. Valid as `view`'s are.
   */
  views(logOffset: number, length: number): Buffer[] | undefined {
    if (length <= 0 || logOffset < 0 || logOffset + length > this.#memBytes) return undefined;
    const out: Buffer[] = [];
    let pos = logOffset;
    for (let i = this.#findSegment(pos); pos < logOffset + length; i++) {
      const seg = this.#segments[i] as MemSegment;
      const from = pos - seg.logOffset;
      const n = Math.min(logOffset + length - pos, seg.used - from);
      out.push(seg.buf.subarray(from, from + n));
      pos += n;
    }
    return out;
  }

  /** Copies log bytes [logOffset, logOffset + length) into `target` at `targetOffset`. */
  async readInto(target: Uint8Array, targetOffset: number, logOffset: number, length: number): Promise<void> {
    if (logOffset < 0 || logOffset + length > this.#size) {
      throw new Error(`spill buffer read [${logOffset}, ${logOffset + length}) outside [0, ${this.#size})`);
    }
    let pos = logOffset;
    let out = targetOffset;
    let left = length;
    if (pos < this.#memBytes) {
      let i = this.#findSegment(pos);
      while (left > 0 && i < this.#segments.length) {
        const seg = this.#segments[i] as MemSegment;
        const from = pos - seg.logOffset;
        const n = Math.min(left, seg.used - from);
        seg.buf.copy(target, out, from, from + n);
        pos += n;
        out += n;
        left -= n;
        i++;
      }
    }
    if (left > 0) {
      const f = this.#file;
      if (f === undefined) throw new Error('spill buffer lost its file');
      let fileOffset = pos - this.#memBytes;
      while (left > 0) {
        const { bytesRead } = await f.read(target, out, left, fileOffset);
        if (bytesRead === 0) throw new Error('spill file shorter than recorded');
        fileOffset += bytesRead;
        out += bytesRead;
        left -= bytesRead;
      }
    }
  }

  async read(logOffset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, 0, logOffset, length);
    return buf;
  }

  /** Empties the log and returns its memory to the budget (the spill file is kept for reuse). */
  async reset(): Promise<void> {
    this.#dropSegments(true);
    this.#spilling = false;
    if (this.#file !== undefined) await this.#file.truncate(0);
  }

  /**
   * Empties and closes the log. `recycle: false` leaves its memory to the garbage collector
   * instead of the pool: for a log some of whose `view`s may still be read by someone (a write
   * abandoned with bytes still queued on a socket).
   */
  async close(opts: { recycle?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropSegments(opts.recycle !== false);
    const f = this.#file;
    this.#file = undefined;
    if (f !== undefined) await f.close();
  }

  #dropSegments(recycle: boolean): void {
    this.#budget.release(this.#heldBytes);
    if (recycle) for (const seg of this.#segments) if (seg.pooled) giveSegment(seg.buf);
    this.#segments = [];
    this.#memBytes = 0;
    this.#heldBytes = 0;
    this.#size = 0;
  }

  /**
   * A new memory segment for an append with `need` bytes left, within the budget: a pooled full
   * segment, or while the log's memory is under one segment the next of the doubling ramp (see
   * SPILL_FIRST_SEGMENT_BYTES). When the budget refuses that, a segment of exactly `need` bytes
   * if it allows that; undefined when it allows nothing (the append spills).
   */
  #newSegment(need: number): MemSegment | undefined {
    const held = this.#heldBytes;
    const wanted =
      held >= SPILL_SEGMENT_BYTES || (held === 0 && need >= SPILL_SEGMENT_BYTES / 2)
        ? SPILL_SEGMENT_BYTES
        : Math.max(SPILL_FIRST_SEGMENT_BYTES, held);
    let seg: MemSegment | undefined;
    if (this.#budget.tryAcquire(wanted)) {
      const pooled = wanted === SPILL_SEGMENT_BYTES;
      seg = {
        logOffset: this.#memBytes,
        buf: pooled ? takeSegment() : Buffer.allocUnsafeSlow(wanted),
        used: 0,
        pooled,
      };
    } else if (need < wanted && this.#budget.tryAcquire(need)) {
      seg = { logOffset: this.#memBytes, buf: Buffer.allocUnsafeSlow(need), used: 0, pooled: false };
    }
    if (seg === undefined) return undefined;
    this.#heldBytes += seg.buf.length;
    this.#segments.push(seg);
    return seg;
  }

  #findSegment(pos: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#segments[mid] as MemSegment).logOffset <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async #spillFile(): Promise<FileHandle> {
    if (this.#file !== undefined) return this.#file;
    const path = join(this.#spillDir, `strata-spill-${process.pid}-${randomBytes(6).toString('hex')}`);
    const f = await open(path, 'w+', 0o600);
    await unlink(path);
    this.#file = f;
    return f;
  }
}
