/**
 * A bounded pool of equal-sized buffers for the block read and copy paths, so streaming a block
 * allocates nothing per window once warm. Buffers beyond the pool's bound are left to the GC.
 */
export class BufferPool {
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
