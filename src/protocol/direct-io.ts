/**
 * Direct (O_DIRECT) appends for block files: how the SDK fills a short-circuit staging file (the
 * bench of the worker's short-circuit writes too). Why: a buffered write of a fresh file copies
 * every byte into newly allocated page-cache pages, and on this class of machine that copy (kernel
 * time in libuv's threads, perf: copy_folio_from_iter_atomic, plus reclaim) cost the writing
 * client 1.2–3.1 s of CPU per GiB; a direct write hands the pages to the device (~0.1 s per GiB).
 * The worker still syncs the file (fdatasync) at commit: O_DIRECT alone flushes neither the
 * device's cache nor the file's allocation metadata. (The worker's own writes stay buffered:
 * direct, they measured no faster, docs/worker.md.)
 *
 * O_DIRECT needs the memory address, the file position and the length aligned to the device's
 * logical block. Node cannot allocate aligned Buffers, but a WebAssembly.Memory is mapped by V8 at
 * a page boundary, so slots cut from one at multiples of DIRECT_SLOT_BYTES are aligned. Bytes are
 * copied into a slot (a user-space copy of warm memory, ~10× cheaper than the page-cache copy),
 * a full slot is written while the next one fills (one write in flight), and the unaligned end is
 * written through a second, ordinary descriptor of the same file.
 *
 * Trade-off: bytes written this way are not left in the page cache, so the first read of a fresh
 * block comes from the device. Where O_DIRECT is refused (EINVAL: a filesystem without it) or no
 * slot is free, `DirectAppender.open` returns only the ordinary handle and the caller writes through the page
 * cache as before.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

/** Alignment of direct writes: positions and lengths (4 KiB covers 512-byte and 4K devices). */
export const DIRECT_IO_ALIGN_BYTES = 4096;
/** One slot: the size of each direct write. */
export const DIRECT_SLOT_BYTES = 1024 * 1024;
/** Slots an appender holds: one being written, one filling. */
const SLOTS_PER_APPENDER = 2;
/** Slots cut from one WebAssembly.Memory (a mapping of 16 MiB). */
const SLOTS_PER_REGION = 16;
/** Default cap on slots in a process (64 MiB): 32 direct writes at once, others go buffered. */
export const DEFAULT_MAX_DIRECT_SLOTS = 64;
const WASM_PAGE_BYTES = 64 * 1024;

interface WasmMemoryCtor {
  new (descriptor: { initial: number; maximum?: number }): { readonly buffer: ArrayBuffer };
}
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: WasmMemoryCtor } }).WebAssembly.Memory;

/** Page-aligned buffers of DIRECT_SLOT_BYTES, allocated in regions on demand, never freed. */
export class AlignedSlotPool {
  readonly #maxSlots: number;
  readonly #free: Buffer[] = [];
  #allocated = 0;

  constructor(maxSlots = DEFAULT_MAX_DIRECT_SLOTS) {
    this.#maxSlots = maxSlots;
  }

  /** Slots allocated so far (in use or free). */
  get allocatedSlots(): number {
    return this.#allocated;
  }

  /** `count` slots, or undefined when the cap leaves fewer than that. */
  acquire(count: number): Buffer[] | undefined {
    while (this.#free.length < count && this.#allocated < this.#maxSlots) {
      const n = Math.min(SLOTS_PER_REGION, this.#maxSlots - this.#allocated);
      const bytes = n * DIRECT_SLOT_BYTES;
      const mem = new WasmMemory({ initial: bytes / WASM_PAGE_BYTES, maximum: bytes / WASM_PAGE_BYTES });
      for (let i = 0; i < n; i++) {
        this.#free.push(Buffer.from(mem.buffer, i * DIRECT_SLOT_BYTES, DIRECT_SLOT_BYTES));
      }
      this.#allocated += n;
    }
    if (this.#free.length < count) return undefined;
    return this.#free.splice(this.#free.length - count, count);
  }

  release(slots: readonly Buffer[]): void {
    this.#free.push(...slots);
  }
}

function isEinval(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EINVAL';
}

/** pwrite until every byte is written (a short write resumes where it stopped). */
async function writeAllAt(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  for (let done = 0; done < length;) {
    const { bytesWritten } = await fh.write(buf, done, length - done, position + done);
    if (bytesWritten === 0) throw new Error(`write at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

/**
 * Appends bytes to a file from position 0 through aligned slots and O_DIRECT. Not safe for
 * concurrent use: one `append` or `flush` at a time (callers await each).
 */
export class DirectAppender {
  readonly #pool: AlignedSlotPool;
  readonly #slots: Buffer[];
  /** Opened with O_DIRECT: full slots go here. */
  readonly #direct: FileHandle;
  /** An ordinary descriptor of the same file: the unaligned end, reads, fdatasync. */
  readonly plain: FileHandle;
  #slot: Buffer;
  #spare: Buffer;
  /** Bytes in `#slot` not yet final in the file. */
  #fill = 0;
  /** Bytes before `#slot`'s first byte: written or being written. */
  #filePos = 0;
  #inflight: Promise<void> = Promise.resolve();
  #error: Error | undefined;
  #useDirect = true;
  #closed = false;

  private constructor(pool: AlignedSlotPool, slots: Buffer[], direct: FileHandle, plain: FileHandle) {
    this.#pool = pool;
    this.#slots = slots;
    this.#slot = slots[0] as Buffer;
    this.#spare = slots[1] as Buffer;
    this.#direct = direct;
    this.plain = plain;
  }

  /**
   * Opens `path` twice (ordinary, with `plainFlags`, then O_DIRECT for writing). Returns undefined
   * when no slots are free or the filesystem refuses O_DIRECT; the ordinary handle is then
   * closed and, when `plainFlags` created the file, the file is left for the caller (it exists).
   */
  static async open(
    path: string,
    plainFlags: string,
    pool: AlignedSlotPool,
    mode = 0o644,
  ): Promise<{ appender: DirectAppender } | { plain: FileHandle }> {
    const plain = await open(path, plainFlags, mode);
    const slots = pool.acquire(SLOTS_PER_APPENDER);
    if (slots === undefined) return { plain };
    let direct: FileHandle;
    try {
      direct = await open(path, constants.O_WRONLY | constants.O_DIRECT);
    } catch (err) {
      pool.release(slots);
      if (isEinval(err)) return { plain };
      await plain.close().catch(() => undefined);
      throw err;
    }
    return { appender: new DirectAppender(pool, slots, direct, plain) };
  }

  /** Bytes appended so far. */
  get appendedBytes(): number {
    return this.#filePos + this.#fill;
  }

  /** Bytes certainly in the file (readable through `plain`). */
  get inFileBytes(): number {
    return this.#filePos;
  }

  /** Copies `data` into the slots; a full slot is written while the next fills. */
  async append(data: Buffer): Promise<void> {
    this.#throwIfFailed();
    let off = 0;
    while (off < data.length) {
      const n = data.copy(this.#slot, this.#fill, off);
      this.#fill += n;
      off += n;
      if (this.#fill === DIRECT_SLOT_BYTES) await this.#submitSlot();
    }
  }

  /** Waits for the slot in flight, then starts writing the full current one and swaps. */
  async #submitSlot(): Promise<void> {
    await this.#inflight;
    this.#throwIfFailed();
    const slot = this.#slot;
    const bytes = this.#fill;
    const position = this.#filePos;
    this.#filePos += bytes;
    this.#slot = this.#spare;
    this.#spare = slot;
    this.#fill = 0;
    this.#inflight = this.#writeSlot(slot, bytes, position).catch((err: unknown) => {
      this.#error ??= err instanceof Error ? err : new Error(String(err));
    });
  }

  async #writeSlot(slot: Buffer, bytes: number, position: number): Promise<void> {
    if (this.#useDirect) {
      try {
        await writeAllAt(this.#direct, slot, bytes, position);
        return;
      } catch (err) {
        if (!isEinval(err)) throw err;
        // Refused after all (an odd device alignment): everything from here goes buffered.
        this.#useDirect = false;
      }
    }
    await writeAllAt(this.plain, slot, bytes, position);
  }

  /**
   * Puts every appended byte into the file: the aligned part directly, the rest (under 4 KiB)
   * through the ordinary descriptor. Those last bytes stay in the slot and are written again,
   * directly, once more bytes complete their block.
   */
  async flush(): Promise<void> {
    await this.#inflight;
    this.#throwIfFailed();
    if (this.#fill === 0) return;
    // Tracked as the write in flight, so `close` returns the slots only once it is done.
    const done = this.#flushSlot();
    this.#inflight = done.catch((err: unknown) => {
      this.#error ??= err instanceof Error ? err : new Error(String(err));
    });
    await done;
  }

  async #flushSlot(): Promise<void> {
    const aligned = this.#fill - (this.#fill % DIRECT_IO_ALIGN_BYTES);
    if (aligned > 0) {
      await this.#writeSlot(this.#slot, aligned, this.#filePos);
      this.#slot.copy(this.#slot, 0, aligned, this.#fill);
      this.#filePos += aligned;
      this.#fill -= aligned;
    }
    if (this.#fill > 0) {
      // Kept in the slot: `#filePos` stays aligned for the next direct write.
      await writeAllAt(this.plain, this.#slot, this.#fill, this.#filePos);
    }
  }

  /** Waits for the write in flight, closes both descriptors and returns the slots (idempotent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#inflight;
    this.#pool.release(this.#slots);
    await Promise.all([this.#direct.close(), this.plain.close()].map((p) => p.catch(() => undefined)));
  }

  #throwIfFailed(): void {
    if (this.#closed) throw new Error('the direct appender is closed');
    if (this.#error !== undefined) throw this.#error;
  }
}
