/**
 * Outgoing frames of one connection. Frames queued during one turn of the event loop leave
 * together at the end of it: small frames are copied into one buffer (one write instead of
 * hundreds), big payloads are handed to the socket as they are, and everything goes out through
 * one corked writev. Nothing is copied for bulk data.
 */
import type { Socket } from 'node:net';
import { StrataError } from '../common/errors.js';
import { packHead } from './codec.js';
import { EMPTY, FRAME_PREFIX_BYTES, bareHead, writePrefix } from './frame.js';
import type { FrameType } from './frame.js';
import { COALESCE_MAX_BYTES, SOCKET_WRITE_HIGH_WATER_BYTES } from './limits.js';

/** A frame would exceed the frame limit: the sender learns it at once, nothing is sent. */
export class FrameTooLargeError extends StrataError {
  constructor(what: string, bytes: number, maxFrameBytes: number) {
    super(
      'STRATA_TOO_LARGE',
      `${what} of ${bytes} bytes exceeds the frame limit of ${maxFrameBytes} bytes (send bulk data as a stream)`,
      { details: { bytes, maxFrameBytes } },
    );
    this.name = 'FrameTooLargeError';
  }
}

export class FrameWriter {
  readonly #socket: Socket;
  readonly #maxFrameBytes: number;
  readonly #onSent: (bytes: number) => void;
  #pieces: Buffer[] = [];
  #queuedBytes = 0;
  #scheduled = false;
  #drainWaiters: (() => void)[] = [];

  constructor(socket: Socket, maxFrameBytes: number, onSent: (bytes: number) => void = () => {}) {
    this.#socket = socket;
    this.#maxFrameBytes = maxFrameBytes;
    this.#onSent = onSent;
    socket.on('drain', () => this.#wakeDrainWaiters());
    socket.once('close', () => this.#wakeDrainWaiters());
  }

  /**
   * Queues a frame with a msgpack header. Throws FrameTooLargeError over the limit and whatever
   * msgpack throws for a value it cannot encode; nothing is queued then.
   */
  headerFrame(
    type: FrameType,
    callId: number,
    header: object,
    payload: Buffer = EMPTY,
    what = 'frame',
  ): void {
    const head = packHead(header);
    const bytes = head.length - FRAME_PREFIX_BYTES + payload.length;
    if (bytes > this.#maxFrameBytes) throw new FrameTooLargeError(what, bytes, this.#maxFrameBytes);
    writePrefix(head, type, callId, payload.length);
    this.#enqueue(head, payload);
  }

  /** Queues a frame without a header (data, end, ping, pong). The payload must fit one frame. */
  bareFrame(type: FrameType, callId: number, payload: Buffer = EMPTY): void {
    if (payload.length > this.#maxFrameBytes) {
      throw new FrameTooLargeError('payload', payload.length, this.#maxFrameBytes);
    }
    this.#enqueue(bareHead(type, callId, payload.length), payload);
  }

  /** Bytes queued here or in the socket, not yet taken by the kernel. */
  get bufferedBytes(): number {
    return this.#queuedBytes + this.#socket.writableLength;
  }

  /** True while the peer is not reading fast enough; senders should wait for `drained()`. */
  get congested(): boolean {
    return this.bufferedBytes > SOCKET_WRITE_HIGH_WATER_BYTES;
  }

  /** Resolves once the socket has drained (or closed). */
  drained(): Promise<void> {
    if (!this.congested || this.#socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Sends everything queued now rather than at the end of this turn. */
  flush(): void {
    this.#scheduled = false;
    const pieces = this.#pieces;
    if (pieces.length === 0) return;
    const bytes = this.#queuedBytes;
    this.#pieces = [];
    this.#queuedBytes = 0;
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return;
    this.#onSent(bytes);
    if (pieces.length === 1) {
      socket.write(pieces[0] as Buffer);
      this.#wakeDrainWaiters();
      return;
    }
    socket.cork();
    let run: Buffer[] = [];
    let runBytes = 0;
    for (const piece of pieces) {
      if (piece.length <= COALESCE_MAX_BYTES) {
        run.push(piece);
        runBytes += piece.length;
        continue;
      }
      if (run.length > 0) {
        socket.write(run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, runBytes));
        run = [];
        runBytes = 0;
      }
      socket.write(piece);
    }
    if (run.length > 0) socket.write(run.length === 1 ? (run[0] as Buffer) : Buffer.concat(run, runBytes));
    socket.uncork();
    // The kernel may have taken everything at once, in which case no 'drain' will follow.
    this.#wakeDrainWaiters();
  }

  #enqueue(head: Buffer, payload: Buffer): void {
    this.#pieces.push(head);
    this.#queuedBytes += head.length;
    if (payload.length > 0) {
      this.#pieces.push(payload);
      this.#queuedBytes += payload.length;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  #wakeDrainWaiters(): void {
    if (this.#drainWaiters.length === 0) return;
    if (this.congested && !this.#socket.destroyed) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const wake of waiters) wake();
  }
}
