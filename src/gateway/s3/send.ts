/**
 * Sending an object's bytes into a GET response: positional reads into pooled buffers, ahead of
 * the socket, each buffer reused once the socket has taken its bytes. For blocks on this machine
 * the client reads the block file straight into the buffer, so a byte is copied twice (file →
 * buffer → socket) and no buffer is allocated (and page-faulted in) per read; the response waits
 * for the socket to drain when the client reads slowly, so at most SEND_DEPTH buffers per
 * response are in use. Reads run one at a time, in order (a FileReader's read-ahead window for
 * remote blocks serves one sequential reader), each overlapping the socket writes before it.
 */
import type { ServerResponse } from 'node:http';
import { StrataError } from '../../common/errors.js';

/**
 * Bytes of one read and one socket write. 1 MiB: large enough that the per-call cost
 * (a thread-pool hop, a write call) is small beside the copy, small enough that a 1 MiB object
 * is one read and that the buffers in use stay few.
 */
export const SEND_CHUNK_BYTES = 1024 * 1024;
/** Buffers per response: being read into, or waiting for the socket to take them. */
export const SEND_DEPTH = 3;
/** Free buffers kept for reuse across responses (beyond, they go to the garbage collector). */
export const SEND_POOL_MAX_FREE = 64;

/** What bytes are sent from: a FileReader (its positional read). */
export interface PositionalSource {
  readonly path: string;
  /** Reads up to `length` bytes at `position` into `buffer[offset…]`; 0 at the end. */
  read(buffer: Uint8Array, position: number, offset: number, length: number): Promise<number>;
}

/** Buffers of SEND_CHUNK_BYTES reused across responses. */
export class SendBufferPool {
  readonly #free: Buffer[] = [];

  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK_BYTES);
  }

  give(buf: Buffer): void {
    if (this.#free.length < SEND_POOL_MAX_FREE) this.#free.push(buf);
  }

  get freeCount(): number {
    return this.#free.length;
  }
}

/**
 * Writes bytes [start, end] (inclusive) of `reader` into `res` and ends it, telling `onSent`
 * the bytes of each write. A read failure or the client going away rejects (the caller cuts
 * the connection).
 */
export async function sendRange(
  res: ServerResponse,
  reader: PositionalSource,
  range: { start: number; end: number },
  pool: SendBufferPool,
  onSent: (bytes: number) => void,
): Promise<void> {
  const { start, end } = range;
  const stop = end + 1;
  let next = start;
  const reads: { buf: Buffer; done: Promise<number> }[] = [];
  let previous: Promise<unknown> = Promise.resolve();
  const issue = (): void => {
    const n = Math.min(SEND_CHUNK_BYTES, stop - next);
    const at = next;
    const buf = pool.take();
    // After the previous read (a failed one fails this one too: it is never sent).
    const done = previous.then(() => readFully(reader, buf, at, n));
    previous = done;
    // Awaited in order below; a failure after the response is gone must not be unhandled.
    done.catch(() => undefined);
    reads.push({ buf, done });
    next += n;
  };
  try {
    while (next < stop && reads.length < SEND_DEPTH) issue();
    while (reads.length > 0) {
      const head = reads[0] as { buf: Buffer; done: Promise<number> };
      const n = await head.done;
      reads.shift();
      if (res.destroyed) {
        pool.give(head.buf);
        throw new StrataError('STRATA_CANCELLED', 'the client closed the connection');
      }
      const buf = head.buf;
      const data = n === buf.length ? buf : buf.subarray(0, n);
      if (reads.length === 0 && next >= stop) {
        // The last piece goes out with the end of the response (a 1 MiB object: one write).
        res.end(data, () => pool.give(buf));
        onSent(n);
        return;
      }
      // The buffer goes back to the pool once the socket has taken its bytes (or failed).
      const fits = res.write(data, () => pool.give(buf));
      onSent(n);
      // A full socket first drains: the buffers in use stay at SEND_DEPTH.
      if (!fits) await drained(res);
      if (next < stop) issue();
    }
  } catch (err) {
    // Reads still running keep their buffers until they finish; then the buffers are free.
    for (const r of reads) void r.done.finally(() => pool.give(r.buf)).catch(() => undefined);
    throw err;
  }
  res.end(); // an empty range (the callers send those without a body)
}

/** Reads exactly `n` bytes at `position` into the front of `buf`. */
async function readFully(
  reader: PositionalSource,
  buf: Buffer,
  position: number,
  n: number,
): Promise<number> {
  let done = 0;
  while (done < n) {
    const got = await reader.read(buf, position + done, done, n - done);
    if (got === 0) {
      throw new StrataError(
        'STRATA_SHORT_READ',
        `${reader.path}: ended at ${position + done}, ${n - done} bytes short`,
      );
    }
    done += got;
  }
  return n;
}

/** Resolves when `res` can take more, or rejects when it closed first. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      res.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      res.off('drain', onDrain);
      reject(new StrataError('STRATA_CANCELLED', 'the client closed the connection'));
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}
