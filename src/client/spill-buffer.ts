/**
 * Bounded memory for data a writer must keep: the bytes of the block being written (to replay
 * them on other workers when one fails) and the dirty pages of a random-write handle.
 *
 * A `SpillBuffer` is an append-only byte log. Appends are copied into memory while the client's
 * `MemoryBudget` allows, and go to an anonymous temp file beyond it (created in the spill
 * directory and unlinked at once, so a crash leaves nothing behind). `reset` empties the log and
 * gives its memory back.
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

interface MemSegment {
  logOffset: number;
  buf: Buffer;
}

export class SpillBuffer {
  readonly #budget: MemoryBudget;
  readonly #spillDir: string;
  /** Memory segments cover [0, #memBytes) of the log; the spill file holds the rest. */
  #segments: MemSegment[] = [];
  #memBytes = 0;
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
    if (!this.#spilling && this.#budget.tryAcquire(data.length)) {
      this.#segments.push({ logOffset: at, buf: Buffer.from(data) });
      this.#memBytes += data.length;
      this.#size += data.length;
      return at;
    }
    this.#spilling = true;
    const f = await this.#spillFile();
    const fileOffset = at - this.#memBytes;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await f.write(data, done, data.length - done, fileOffset + done);
      done += bytesWritten;
    }
    this.#size += data.length;
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
      this.#segments.push({ logOffset: at, buf: data });
      this.#memBytes += data.length;
      this.#size += data.length;
      return at;
    }
    return this.append(data);
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
        const n = Math.min(left, seg.buf.length - from);
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
    this.#budget.release(this.#memBytes);
    this.#segments = [];
    this.#memBytes = 0;
    this.#size = 0;
    this.#spilling = false;
    if (this.#file !== undefined) await this.#file.truncate(0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#budget.release(this.#memBytes);
    this.#segments = [];
    this.#memBytes = 0;
    this.#size = 0;
    const f = this.#file;
    this.#file = undefined;
    if (f !== undefined) await f.close();
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
