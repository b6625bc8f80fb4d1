/**
 * Reading a request body ahead of its consumer, up to a byte bound: an upload receives its first
 * bytes while its temp file is still being created (a master round trip), instead of leaving
 * them in the socket until then.
 */
import type { WriteGather } from './write-gather.js';

/**
 * Bytes of a body read ahead while nothing consumes them. A whole 1 MiB object (the common small
 * PUT) arrives during the create; larger bodies wait for the writer beyond this, so memory stays
 * bounded at this per upload.
 */
export const READ_AHEAD_BYTES = 2 * 1024 * 1024;

/**
 * Pulls `source` from construction on and yields its chunks in order; the pull pauses while
 * `limitBytes` or more wait unread. Each chunk goes through `onChunk` as it arrives (the upload
 * hashes there, so hashing overlaps the wait for the temp file too). An error of the source or of
 * `onChunk` is thrown by the next read. `stop` (or ending the iteration early) stops the pulling;
 * the source ends at its next chunk or when its connection closes.
 *
 * With a `gather`, each chunk is copied into the gather's pooled pieces as it arrives and the
 * pieces are what come out (full ones, then the short last one): the socket's chunks then die
 * young. Held in the queue instead, they outlived the garbage collector's young generation and
 * their backing stores counted against the old one (measured: 34 full mark-compacts of an
 * unchanged 31 MB heap during 16 uploads of 100 MiB, a fifth of the gateway's CPU).
 */
export class ReadAhead implements AsyncIterable<Buffer> {
  readonly #limitBytes: number;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #ended = false;
  #failure: { err: unknown } | undefined;
  #stopped = false;
  /** Wakes the consumer (a chunk, the end or an error arrived). */
  #wakeConsumer: (() => void) | undefined;
  /** Wakes the producer (room was made, or the consumer stopped). */
  #wakeProducer: (() => void) | undefined;

  readonly #gather: WriteGather | undefined;

  constructor(
    source: AsyncIterable<Buffer>,
    onChunk?: (chunk: Buffer) => Promise<void> | void,
    limitBytes: number = READ_AHEAD_BYTES,
    gather?: WriteGather,
  ) {
    this.#limitBytes = limitBytes;
    this.#gather = gather;
    // Failures are kept for the consumer; nothing is left unhandled.
    void this.#pump(source, onChunk);
  }

  stop(): void {
    this.#stopped = true;
    this.#wakeProducer?.();
  }

  async #pump(
    source: AsyncIterable<Buffer>,
    onChunk: ((chunk: Buffer) => Promise<void> | void) | undefined,
  ): Promise<void> {
    try {
      for await (const chunk of source) {
        if (this.#stopped) return;
        await onChunk?.(chunk);
        if (this.#gather === undefined) this.#push(chunk);
        else for (const piece of this.#gather.add(chunk)) this.#push(piece);
        while (this.#queuedBytes >= this.#limitBytes && !this.#stopped) {
          await new Promise<void>((resolve) => (this.#wakeProducer = resolve));
        }
        if (this.#stopped) return;
      }
      const last = this.#gather?.end();
      if (last !== undefined) this.#push(last);
      this.#ended = true;
    } catch (err) {
      this.#failure = { err };
    }
    this.#wakeConsumer?.();
  }

  #push(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    this.#wakeConsumer?.();
  }

  /** The next chunk, or undefined at the end of the body. */
  async next(): Promise<Buffer | undefined> {
    for (;;) {
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        this.#queuedBytes -= chunk.length;
        this.#wakeProducer?.();
        return chunk;
      }
      if (this.#failure !== undefined) throw this.#failure.err;
      if (this.#ended || this.#stopped) return undefined;
      await new Promise<void>((resolve) => (this.#wakeConsumer = resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (let chunk = await this.next(); chunk !== undefined; chunk = await this.next()) yield chunk;
    } finally {
      this.stop();
    }
  }
}
