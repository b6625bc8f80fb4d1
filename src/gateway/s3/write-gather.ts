/**
 * Gathering an upload's socket chunks (64 KiB each) into pooled pieces of UPLOAD_PIECE_BYTES
 * as they arrive (in the body's read-ahead), before they go to the file writer. The writer takes
 * a piece that large as it is; smaller writes it copies into a fresh gathering buffer of its
 * own, one allocation per MiB of every upload. And the socket's chunks, copied at once, die
 * young instead of waiting in the read-ahead long enough to be promoted (their backing stores
 * then drove full mark-compacts of an unchanged heap). Here the copy is the same one, into
 * buffers reused across uploads, and the writer is called once per MiB instead of per chunk.
 */

/**
 * Bytes of one piece: the client's gathering size (WRITE_GATHER_BYTES in src/client), so a full
 * piece is written without another copy.
 */
export const UPLOAD_PIECE_BYTES = 1024 * 1024;
/** Free pieces kept for reuse across uploads (beyond, they go to the garbage collector). */
export const UPLOAD_POOL_MAX_FREE = 64;

/** Buffers of UPLOAD_PIECE_BYTES reused across uploads. */
export class PiecePool {
  readonly #free: Buffer[] = [];

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(UPLOAD_PIECE_BYTES);
  }

  give(buf: Buffer): void {
    if (buf.buffer.byteLength === UPLOAD_PIECE_BYTES && this.#free.length < UPLOAD_POOL_MAX_FREE) {
      this.#free.push(Buffer.from(buf.buffer, 0, UPLOAD_PIECE_BYTES));
    }
  }

  get freeCount(): number {
    return this.#free.length;
  }
}

/**
 * Gathers chunks into pieces. `add` and `end` hand out the pieces that are ready, in order;
 * the caller gives each back to the pool once the writer has taken its bytes (the writer's
 * `write` resolves when it no longer needs the caller's buffer). A gather that is abandoned
 * (a failed upload) just drops its piece: a pool only ever gets back buffers nobody uses.
 */
export class WriteGather {
  readonly #pool: PiecePool;
  #piece: Buffer | undefined;
  #filled = 0;

  constructor(pool: PiecePool) {
    this.#pool = pool;
  }

  /** Copies `chunk` in; returns the pieces it filled (full ones, UPLOAD_PIECE_BYTES each). */
  add(chunk: Buffer): Buffer[] {
    const ready: Buffer[] = [];
    let off = 0;
    while (off < chunk.length) {
      const piece = (this.#piece ??= this.#pool.take());
      const n = chunk.copy(piece, this.#filled, off);
      off += n;
      this.#filled += n;
      if (this.#filled === UPLOAD_PIECE_BYTES) {
        ready.push(piece);
        this.#piece = undefined;
        this.#filled = 0;
      }
    }
    return ready;
  }

  /** The last, partial piece (a view of a pooled buffer), or undefined when nothing is left. */
  end(): Buffer | undefined {
    const piece = this.#piece;
    const filled = this.#filled;
    this.#piece = undefined;
    this.#filled = 0;
    if (piece === undefined || filled === 0) {
      if (piece !== undefined) this.#pool.give(piece);
      return undefined;
    }
    return piece.subarray(0, filled);
  }
}
