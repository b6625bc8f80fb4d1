/**
 * Receive buffers of one read stream opened with `reuseBuffers` (CallOptions): big data frames
 * are read straight into buffers the stream owns, and a buffer goes back to be filled again once
 * the consumer asks for the chunk after the one it holds. Receiving into fresh memory costs a page
 * fault per 4 KiB when the allocator hands back pages it had returned to the kernel (measured on
 * remote block reads: 25-70 k faults per GiB received, and 10-20 % of the receiver's CPU).
 *
 * Bounded: credit keeps at most a window of bytes queued, so a stream needs its window's worth of
 * buffers plus the one the consumer holds and the one being filled; when none is free the frame
 * goes to a fresh buffer as without reuse.
 */

/** Buffers kept beyond a window's worth: the chunk the consumer holds and the one being received. */
const EXTRA_RECEIVE_BUFFERS = 2;

export class ReceiveBuffers {
  readonly #windowBytes: number;
  /** Every buffer of this stream by its memory; lent ones are not in #free. */
  readonly #owned = new Map<ArrayBufferLike, Buffer>();
  readonly #free: Buffer[] = [];
  #bufferBytes = 0;

  constructor(windowBytes: number) {
    this.#windowBytes = windowBytes;
  }

  /** A buffer of exactly `bytes` for a frame body, or undefined (the caller allocates its own). */
  take(bytes: number): Buffer | undefined {
    if (bytes > this.#bufferBytes) {
      // Buffers are as big as the biggest body yet (a stream may start with a short piece);
      // smaller ones are left to the GC, lent ones included (their release is then ignored).
      this.#bufferBytes = bytes;
      this.#owned.clear();
      this.#free.length = 0;
    }
    let buf = this.#free.pop();
    if (buf === undefined) {
      const most = Math.ceil(this.#windowBytes / this.#bufferBytes) + EXTRA_RECEIVE_BUFFERS;
      if (this.#owned.size >= most) return undefined;
      buf = Buffer.allocUnsafeSlow(this.#bufferBytes);
      this.#owned.set(buf.buffer, buf);
    }
    return bytes === buf.length ? buf : buf.subarray(0, bytes);
  }

  /** The consumer is done with `chunk`: its buffer, if it is one of ours, may be filled again. */
  release(chunk: Buffer): void {
    const buf = this.#owned.get(chunk.buffer);
    if (buf !== undefined && !this.#free.includes(buf)) this.#free.push(buf);
  }
}
