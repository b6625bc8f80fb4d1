/**
 * Credit-based flow control for streams, like HTTP/2 windows. The receiver grants a window of
 * bytes; the sender never has more than that in flight; the receiver grants more as its consumer
 * takes chunks. So a stream whose consumer is slow stops only itself (other calls on the same
 * connection keep moving), and the bytes queued for a stream never exceed its window.
 *
 * The receiver grants credit back each time half the window has been consumed, so half a window
 * stays in flight while the grant travels, and a credit frame costs one small write per half
 * window (not per chunk: on loopback each small write costs as much as copying a large chunk).
 * A chunk is at most half the window: a sender waiting for credit for one then always gets it
 * (credit + consumed-but-not-granted = window when nothing is queued, and the receiver grants once
 * the second reaches half).
 */
import type { StrataError } from '../common/errors.js';
import type { StreamInput } from './api.js';
import { ProtocolError } from './errors.js';
import { FrameType } from './frame.js';
import type { FrameWriter } from './frame-writer.js';

const RESOLVED = Promise.resolve();

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

/** The receiving end of one stream: an async iterable of the chunks, in order. */
export class InboundStream implements StreamInput {
  readonly #windowBytes: number;
  readonly #grant: (bytes: number) => void;
  readonly #onAbandon: () => void;
  #queue: Buffer[] = [];
  #queueHead = 0;
  #queuedBytes = 0;
  /** Bytes the sender may still send before it runs out of credit. */
  #senderCredit: number;
  #consumedUngranted = 0;
  #ended = false;
  #error: StrataError | undefined;
  #waiter: Waiter<IteratorResult<Buffer>> | undefined;
  #iterated = false;
  readonly #onRelease: ((chunk: Buffer) => void) | undefined;
  /** With onRelease: the chunk the consumer holds, released when it asks for the next. */
  #lent: Buffer | undefined;

  /**
   * @param windowBytes the window granted up front (already known to the sender)
   * @param grant sends a credit update of that many bytes to the sender
   * @param onAbandon called when the consumer stops iterating early (break, return)
   * @param onRelease when given, called with each chunk once the consumer is done with it: when it
   *   asks for the next one, ends or abandons the iteration (chunks are valid until then only)
   */
  constructor(
    windowBytes: number,
    grant: (bytes: number) => void,
    onAbandon: () => void,
    onRelease?: (chunk: Buffer) => void,
  ) {
    this.#windowBytes = windowBytes;
    this.#senderCredit = windowBytes;
    this.#grant = grant;
    this.#onAbandon = onAbandon;
    this.#onRelease = onRelease;
  }

  /** Bytes received and not yet taken by the consumer. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get finished(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  /** A data frame arrived. Throws ProtocolError when the sender overran its credit. */
  push(chunk: Buffer): void {
    if (this.finished) return;
    if (chunk.length > this.#senderCredit) {
      throw new ProtocolError(
        'flow_control',
        `stream data of ${chunk.length} bytes exceeds the ${this.#senderCredit} bytes of credit granted`,
      );
    }
    this.#senderCredit -= chunk.length;
    const waiter = this.#waiter;
    if (waiter !== undefined) {
      this.#waiter = undefined;
      this.#consumed(chunk.length);
      this.#lend(chunk);
      waiter.resolve({ value: chunk, done: false });
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
  }

  /** The sender finished; the consumer sees the end after the queued chunks. */
  end(): void {
    if (this.finished) return;
    this.#ended = true;
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#queueHead >= this.#queue.length) {
      this.#waiter = undefined;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The stream failed; the consumer gets `err` after the chunks already queued. */
  fail(err: StrataError): void {
    if (this.finished) return;
    this.#error = err;
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#queueHead >= this.#queue.length) {
      this.#waiter = undefined;
      waiter.reject(err);
    }
  }

  /** Drops whatever is queued (the consumer is gone). */
  discard(): void {
    this.#queue = [];
    this.#queueHead = 0;
    this.#queuedBytes = 0;
  }

  next(): Promise<IteratorResult<Buffer>> {
    const chunk = this.takeQueued();
    if (chunk !== undefined) return Promise.resolve({ value: chunk, done: false });
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) {
      return Promise.reject(new Error('stream chunks must be read one at a time'));
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  takeQueued(): Buffer | undefined {
    this.#giveBack();
    if (this.#queueHead >= this.#queue.length) return undefined;
    const chunk = this.#queue[this.#queueHead] as Buffer;
    this.#queue[this.#queueHead] = undefined as unknown as Buffer;
    this.#queueHead++;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    }
    this.#queuedBytes -= chunk.length;
    this.#consumed(chunk.length);
    this.#lend(chunk);
    return chunk;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.#iterated) throw new Error('a stream can be iterated only once');
    this.#iterated = true;
    return {
      next: () => this.next(),
      return: () => {
        this.#giveBack();
        if (!this.finished) {
          this.discard();
          this.#onAbandon();
        }
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  #lend(chunk: Buffer): void {
    if (this.#onRelease !== undefined) this.#lent = chunk;
  }

  #giveBack(): void {
    const lent = this.#lent;
    if (lent === undefined) return;
    this.#lent = undefined;
    this.#onRelease?.(lent);
  }

  #consumed(bytes: number): void {
    this.#consumedUngranted += bytes;
    if (this.#consumedUngranted >= this.#windowBytes / 2) this.#sendGrant();
  }

  #sendGrant(): void {
    if (this.finished) return;
    const bytes = this.#consumedUngranted;
    this.#consumedUngranted = 0;
    this.#senderCredit += bytes;
    this.#grant(bytes);
  }
}

/** The sending end of one stream: splits writes into chunks and waits for credit. */
export class StreamSender {
  readonly #writer: FrameWriter;
  readonly #callId: number;
  #chunkBytes: number;
  #credit: number;
  #error: StrataError | undefined;
  #closed = false;
  /** Writes are serialised: each waits for the one before. */
  #tail: Promise<void> = RESOLVED;
  #pending = 0;
  #creditWaiter: (Waiter<void> & { bytes: number }) | undefined;

  constructor(writer: FrameWriter, callId: number, chunkBytes: number, initialCredit: number) {
    this.#writer = writer;
    this.#callId = callId;
    this.#chunkBytes = chunkBytes;
    this.#credit = initialCredit;
  }

  get creditBytes(): number {
    return this.#credit;
  }

  /** Limits chunks to half the receiver's window (see the file comment: no chunk can then stall). */
  limitChunkBytes(windowBytes: number): void {
    this.#chunkBytes = Math.max(1, Math.min(this.#chunkBytes, Math.floor(windowBytes / 2)));
  }

  addCredit(bytes: number): void {
    this.#credit += bytes;
    const waiter = this.#creditWaiter;
    if (waiter !== undefined && this.#credit >= waiter.bytes) {
      this.#creditWaiter = undefined;
      waiter.resolve();
    }
  }

  /** Fails pending and future writes with `err` (the stream is over). */
  fail(err: StrataError): void {
    if (this.#error !== undefined) return;
    this.#error = err;
    const waiter = this.#creditWaiter;
    if (waiter !== undefined) {
      this.#creditWaiter = undefined;
      waiter.reject(err);
    }
  }

  /** No more writes: the stream ended normally. Writes after this fail with `err`. */
  close(err: StrataError): void {
    this.#closed = true;
    this.fail(err);
  }

  get closed(): boolean {
    return this.#closed || this.#error !== undefined;
  }

  /**
   * Sends `chunk` (split into chunks as needed). Resolves when it has been handed to the socket;
   * the caller must not modify `chunk` afterwards (it is not copied).
   */
  write(chunk: Buffer): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (chunk.length === 0) return this.#tail;
    if (
      this.#pending === 0 &&
      chunk.length <= this.#chunkBytes &&
      chunk.length <= this.#credit &&
      !this.#writer.congested
    ) {
      this.#credit -= chunk.length;
      this.#writer.bareFrame(FrameType.Data, this.#callId, chunk);
      return RESOLVED;
    }
    this.#pending++;
    const done = this.#tail.then(() => this.#writeSlow(chunk));
    // A failed write fails the stream; the next write must still run (and fail) in order.
    this.#tail = done.then(
      () => {
        this.#pending--;
      },
      () => {
        this.#pending--;
      },
    );
    return done;
  }

  async #writeSlow(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length; off += this.#chunkBytes) {
      const piece = chunk.subarray(off, Math.min(chunk.length, off + this.#chunkBytes));
      this.#throwIfFailed();
      if (this.#credit < piece.length) {
        await new Promise<void>((resolve, reject) => {
          this.#creditWaiter = { resolve, reject, bytes: piece.length };
        });
      }
      if (this.#writer.congested) await this.#writer.drained();
      this.#throwIfFailed();
      this.#credit -= piece.length;
      this.#writer.bareFrame(FrameType.Data, this.#callId, piece);
    }
  }

  /** Checked after every wait: the stream may have failed meanwhile. */
  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  /** Resolves once every write issued so far has been handed to the socket. */
  settled(): Promise<void> {
    return this.#tail;
  }
}
