/**
 * A bounded pool of equal-sized buffers for the block read and copy paths, so streaming a block
 * allocates nothing per window once warm. Buffers beyond the pool's bound are left to the GC.
 */
/** Where a reader gets its window buffers and gives them back. */
export interface BufferSource {
  readonly bufferSizeBytes: number;
  acquire(): Buffer;
  release(buf: Buffer): void;
}

/**
 * Fresh buffers that are never reused: for sinks that may still hold a slice after their
 * write resolved (the RPC hands buffers to the socket without copying). One allocation per
 * 1 MiB window, none per chunk.
 */
export class FreshBuffers implements BufferSource {
  readonly bufferSizeBytes: number;
  constructor(bufferSizeBytes: number) {
    this.bufferSizeBytes = bufferSizeBytes;
  }
  acquire(): Buffer {
    return Buffer.allocUnsafeSlow(this.bufferSizeBytes);
  }
  release(): void {
    // Left to the GC: the consumer may still reference it.
  }
}

export class BufferPool implements BufferSource {
  readonly bufferSizeBytes: number;
  readonly #maxPooled: number;
  readonly #free: Buffer[] = [];

  constructor(bufferSizeBytes: number, maxPooled: number) {
    this.bufferSizeBytes = bufferSizeBytes;
    this.#maxPooled = maxPooled;
  }

  acquire(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.bufferSizeBytes);
  }

  /** Returns a buffer; the caller must not touch it afterwards. */
  release(buf: Buffer): void {
    if (buf.length !== this.bufferSizeBytes) throw new Error('released a buffer of the wrong size');
    if (this.#free.length < this.#maxPooled) this.#free.push(buf);
  }

  get pooled(): number {
    return this.#free.length;
  }
}

/**
 * Lends a shared pool's buffers to a consumer that may still reference a buffer for a while
 * after its write resolved — the RPC hands chunks to the socket without copying. A returned
 * buffer is held back until `holdCount` later buffers of the same stream were returned too, and
 * only then goes back to the shared pool; what is held when the stream ends is left to the GC.
 *
 * Why that is safe for RPC sinks: the RPC queues a chunk only while its connection has at most
 * SOCKET_WRITE_HIGH_WATER_BYTES buffered (FIFO), so once `holdCount` windows (more than that
 * many bytes) were queued after a buffer, that buffer has left for the kernel.
 */
export class DeferredReleasePool implements BufferSource {
  readonly bufferSizeBytes: number;
  readonly #shared: BufferPool;
  readonly #holdCount: number;
  readonly #held: Buffer[] = [];

  constructor(shared: BufferPool, holdCount: number) {
    this.bufferSizeBytes = shared.bufferSizeBytes;
    this.#shared = shared;
    this.#holdCount = holdCount;
  }

  acquire(): Buffer {
    return this.#shared.acquire();
  }

  release(buf: Buffer): void {
    this.#held.push(buf);
    while (this.#held.length > this.#holdCount) this.#shared.release(this.#held.shift() as Buffer);
  }
}

/** Bytes read from a block file per system call: large reads keep disks and page cache efficient. */
export const READ_WINDOW_BYTES = 1024 * 1024;
/** Buffers kept in the shared pool (64 MiB): enough for a few streams' windows in flight. */
export const POOLED_READ_BUFFERS = 64;
