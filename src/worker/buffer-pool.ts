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

/** Bytes read from a block file per system call: large reads keep disks and page cache efficient. */
export const READ_WINDOW_BYTES = 1024 * 1024;
/** Buffers kept per pool: a few per concurrent stream (one being sent, one read ahead). */
export const POOLED_READ_BUFFERS = 64;
