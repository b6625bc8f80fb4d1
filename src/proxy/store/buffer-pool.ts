/**
 * Reusable read buffers for disk hits. Serving a 100 MiB body read into a fresh 1 MiB buffer per
 * step allocates about 1 GB/s of external memory, which keeps V8 in major garbage collections
 * and faults fresh pages in on every read (a quarter of the process's CPU in profiles). Disk
 * readers take their buffers from a pool instead; the one consumer that knows when the bytes
 * are no longer referenced — the response pump, once the socket reports the write done — hands
 * them back.
 *
 * The contract is opt-in and safe by default: a buffer that is never recycled is simply
 * garbage-collected, and `recycle` ignores buffers the pool did not lease. So only a consumer
 * that has given up every view of a chunk may recycle it.
 */

/** Size of each pooled buffer: one read step of a disk hit. */
export const READ_BUFFER_BYTES = 1024 * 1024;
/** Idle buffers kept for reuse (the rest go to the garbage collector): 32 MiB at most. */
export const READ_POOL_MAX_IDLE = 32;

export class BufferPool {
  readonly bufferBytes: number;
  readonly #maxIdle: number;
  readonly #idle: ArrayBuffer[] = [];
  /** Backing stores handed out and not yet returned. */
  readonly #leased = new WeakSet<ArrayBufferLike>();

  constructor(bufferBytes: number, maxIdle: number) {
    this.bufferBytes = bufferBytes;
    this.#maxIdle = maxIdle;
  }

  /** A buffer of `bufferBytes` bytes with unspecified contents, owned by the caller. */
  take(): Buffer {
    const ab = this.#idle.pop() ?? new ArrayBuffer(this.bufferBytes);
    this.#leased.add(ab);
    return Buffer.from(ab, 0, this.bufferBytes);
  }

  /**
   * Returns the buffer behind `chunk` (any view of a leased buffer) to the pool. The caller
   * must hold no other view of it, and nothing else may still read it. Buffers not leased by
   * this pool, or already returned, are ignored.
   */
  recycle(chunk: Uint8Array): void {
    const ab = chunk.buffer;
    if (!this.#leased.has(ab)) return;
    this.#leased.delete(ab);
    if (this.#idle.length < this.#maxIdle && ab instanceof ArrayBuffer) this.#idle.push(ab);
  }

  /** Whether `chunk` is a view of a buffer this pool leased and has not had back. */
  owns(chunk: Uint8Array): boolean {
    return this.#leased.has(chunk.buffer);
  }

  /** Idle buffers held (for tests). */
  get idleCount(): number {
    return this.#idle.length;
  }
}

/** The process-wide pool disk readers draw from and the response pump recycles into. */
export const readBuffers = new BufferPool(READ_BUFFER_BYTES, READ_POOL_MAX_IDLE);
