/**
 * Framing: how bytes on a TCP connection become frames and back.
 *
 *   offset  size  field
 *   0       4     length L of everything after this field (u32, big-endian)
 *   4       1     frame type (FrameType)
 *   5       4     call id (u32; 0 for connection-level frames such as ping)
 *   9       4     header length H (u32)
 *   13      H     msgpack header (absent when H = 0)
 *   13+H    L-9-H raw payload bytes
 *
 * The decoder hands out views into the bytes it was given (no copy) whenever a frame lies inside
 * one read, and assembles a frame only when it spans reads. On the client side (net `onread`) it
 * also chooses where the kernel writes the next read: into a large slab, or, while a big frame is
 * being assembled, straight into that frame's own buffer, so bulk payloads are never copied in
 * user space.
 */
import { ProtocolError } from './errors.js';
import { BODY_SLAB_BYTES, MIN_READ_BYTES, READ_SLAB_BYTES } from './limits.js';

export const FrameType = {
  Request: 1,
  Response: 2,
  Data: 3,
  End: 4,
  Cancel: 5,
  Credit: 6,
  Ping: 7,
  Pong: 8,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const FRAME_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'request',
  2: 'response',
  3: 'data',
  4: 'end',
  5: 'cancel',
  6: 'credit',
  7: 'ping',
  8: 'pong',
};

export function frameTypeName(type: number): string {
  return FRAME_TYPE_NAMES[type] ?? `unknown(${type})`;
}

/** Shared empty payload (an empty view would still pin its whole read buffer). */
export const EMPTY: Buffer = Buffer.alloc(0);

/** Bytes before the header: length, type, call id, header length. */
export const FRAME_PREFIX_BYTES = 13;
/** Bytes counted by the length field that are not header or payload: type, call id, header length. */
const FIXED_AFTER_LENGTH_BYTES = 9;
const MAX_FRAME_TYPE = 8;
/** Payloads smaller than this are copied out of the read buffer so a kept payload never pins a slab. */
const SMALL_PAYLOAD_COPY_BYTES = 64 * 1024;
/** Stream data pieces below this are copied (see ownPiece). */
const SMALL_PIECE_COPY_BYTES = 4 * 1024;
/** A frame spanning reads whose remaining body is at least this big is read straight into its own buffer. */
const DIRECT_READ_MIN_BYTES = 64 * 1024;

/** The largest value the length field may hold for a frame limit (the limit covers header and payload). */
export function maxLengthField(maxFrameBytes: number): number {
  return maxFrameBytes + FIXED_AFTER_LENGTH_BYTES;
}

/**
 * Writes the 13-byte prefix at the start of `head`, whose bytes after the prefix are the header.
 * The payload (possibly empty) follows in a separate buffer.
 */
export function writePrefix(head: Buffer, type: FrameType, callId: number, payloadBytes: number): void {
  const headerBytes = head.length - FRAME_PREFIX_BYTES;
  head.writeUInt32BE(FIXED_AFTER_LENGTH_BYTES + headerBytes + payloadBytes, 0);
  head[4] = type;
  head.writeUInt32BE(callId, 5);
  head.writeUInt32BE(headerBytes, 9);
}

/** A prefix-only head for a frame without a header (data, end, ping, pong). */
export function bareHead(type: FrameType, callId: number, payloadBytes: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES);
  writePrefix(head, type, callId, payloadBytes);
  return head;
}

export type FrameHandler = (type: FrameType, callId: number, header: Buffer, payload: Buffer) => void;

/** Offers a buffer of exactly `bytes` for the body of a big data frame of `callId` (see #startAssembly). */
export type DataBodySource = (callId: number, bytes: number) => Buffer | undefined;

/**
 * Incremental frame parser. `push` takes bytes in any split; every complete frame goes to the
 * handler synchronously, in order. `header` is valid only during the call (decode it at once);
 * `payload` may be kept. A framing violation throws ProtocolError; the decoder then stays failed.
 */
export class FrameDecoder {
  readonly #maxLength: number;
  readonly #onFrame: FrameHandler;
  /** Prefix bytes of a frame whose prefix itself spans reads. */
  readonly #prefix = Buffer.allocUnsafe(FRAME_PREFIX_BYTES);
  #prefixFilled = 0;
  /** The frame being assembled across reads (its prefix already parsed). */
  #type: FrameType = FrameType.Data;
  #callId = 0;
  #headerBytes = 0;
  #bodyBytes = 0;
  #bodyNeeded = 0;
  #parts: Buffer[] = [];
  /** Set when the rest of the body is read straight into its own buffer (onread mode). */
  #direct: Buffer | undefined;
  #directFilled = 0;
  #failed = false;
  /** onread mode: the slab reads land in, and what the last read target was. */
  #slab: Buffer | undefined;
  #slabOffset = 0;
  #lastTarget: Buffer | undefined;
  #lastTargetDirect = false;
  #directEnabled = false;
  /** After a big frame, the next read takes only a prefix, so a following big body is read directly too. */
  #expectBig = false;
  readonly #prefixTarget = Buffer.allocUnsafeSlow(FRAME_PREFIX_BYTES);
  #bodySlab: Buffer = EMPTY;
  #bodySlabOffset = 0;

  /** Data frames that span reads are handed on piece by piece (push mode), never reassembled. */
  readonly #splitData: boolean;
  /** The frame being assembled is a data frame handed on in pieces. */
  #piecewise = false;
  readonly #dataBodies: DataBodySource | undefined;

  /**
   * @param splitData hand on data frames that span reads as several data frames, one per read,
   *   without copying them together (stream bytes need no boundaries; a server receiving a write
   *   stream through 64 KiB socket reads would otherwise copy every chunk once more)
   * @param dataBodies onread mode: where a big data frame's body may be read to instead of a
   *   fresh buffer (a stream that reuses its receive buffers)
   */
  constructor(maxFrameBytes: number, onFrame: FrameHandler, splitData = false, dataBodies?: DataBodySource) {
    this.#maxLength = maxLengthField(maxFrameBytes);
    this.#onFrame = onFrame;
    this.#splitData = splitData;
    this.#dataBodies = dataBodies;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** Feeds bytes that the decoder may keep views of (they are never reused by the caller). */
  push(chunk: Buffer): void {
    if (this.#failed) return;
    try {
      this.#push(chunk);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  /**
   * onread mode: the buffer the next socket read should fill. A big frame in progress gets its own
   * buffer (see #carve) so the kernel writes its bytes where they will stay; otherwise reads fill
   * a slab from which complete frames are handed out as views.
   */
  readTarget(): Buffer {
    this.#directEnabled = true;
    let target: Buffer;
    if (this.#direct !== undefined) {
      target = this.#direct.subarray(this.#directFilled);
    } else if (this.#expectBig && this.#prefixFilled === 0 && this.#bodyNeeded === 0) {
      // Bulk streams: read the next prefix alone (one small extra read per frame), then its body
      // straight into its own buffer. Reading it into the slab instead would copy most of every
      // body once more.
      target = this.#prefixTarget;
    } else {
      if (this.#slab === undefined || this.#slab.length - this.#slabOffset < MIN_READ_BYTES) {
        // The old slab stays alive only while views of it do; a fresh one is never shared with them.
        this.#slab = Buffer.allocUnsafeSlow(READ_SLAB_BYTES);
        this.#slabOffset = 0;
      }
      target = this.#slab.subarray(this.#slabOffset);
    }
    this.#lastTarget = target;
    this.#lastTargetDirect = this.#direct !== undefined;
    return target;
  }

  /** onread mode: `n` bytes were read into the buffer last returned by readTarget(). */
  readDone(n: number): void {
    if (this.#failed) return;
    const target = this.#lastTarget;
    this.#lastTarget = undefined;
    if (target === undefined) throw new Error('FrameDecoder.readDone without readTarget');
    try {
      if (this.#direct !== undefined && this.#lastTargetDirect) {
        this.#directFilled += n;
        this.#bodyNeeded -= n;
        if (this.#bodyNeeded === 0) this.#emitAssembled();
        return;
      }
      if (target === this.#prefixTarget) {
        // Never more than a prefix: #push copies it, so the buffer can be reused.
        this.#push(target.subarray(0, n));
        return;
      }
      const slab = this.#slab;
      if (slab === undefined) throw new Error('FrameDecoder.readDone without a slab');
      const chunk = slab.subarray(this.#slabOffset, this.#slabOffset + n);
      this.#slabOffset += n;
      this.#push(chunk);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  #push(chunk: Buffer): void {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.#bodyNeeded > 0) {
        const take = Math.min(this.#bodyNeeded, end - off);
        if (this.#piecewise) {
          const piece = chunk.subarray(off, off + take);
          off += take;
          this.#bodyNeeded -= take;
          if (this.#bodyNeeded === 0) this.#piecewise = false;
          this.#onFrame(FrameType.Data, this.#callId, EMPTY, ownPiece(piece));
          continue;
        }
        if (this.#direct !== undefined) {
          chunk.copy(this.#direct, this.#directFilled, off, off + take);
          this.#directFilled += take;
        } else {
          this.#parts.push(chunk.subarray(off, off + take));
        }
        off += take;
        this.#bodyNeeded -= take;
        if (this.#bodyNeeded === 0) this.#emitAssembled();
        continue;
      }
      if (this.#prefixFilled > 0 || end - off < FRAME_PREFIX_BYTES) {
        const take = Math.min(FRAME_PREFIX_BYTES - this.#prefixFilled, end - off);
        chunk.copy(this.#prefix, this.#prefixFilled, off, off + take);
        this.#prefixFilled += take;
        off += take;
        if (this.#prefixFilled < FRAME_PREFIX_BYTES) return;
        this.#prefixFilled = 0;
        this.#startAssembly(this.#prefix, 0);
        if (this.#bodyNeeded === 0) this.#emitAssembled();
        continue;
      }
      const length = this.#checkPrefix(chunk, off);
      const frameEnd = off + 4 + length;
      if (frameEnd <= end) {
        const headerStart = off + FRAME_PREFIX_BYTES;
        const payloadStart = headerStart + chunk.readUInt32BE(off + 9);
        const type = chunk[off + 4] as FrameType;
        const callId = chunk.readUInt32BE(off + 5);
        this.#expectBig = length >= DIRECT_READ_MIN_BYTES;
        off = frameEnd;
        this.#onFrame(
          type,
          callId,
          chunk.subarray(headerStart, payloadStart),
          ownPayload(chunk.subarray(payloadStart, frameEnd)),
        );
        continue;
      }
      this.#startAssembly(chunk, off);
      off += FRAME_PREFIX_BYTES;
    }
  }

  /** Validates the prefix at `off` and returns the length field. */
  #checkPrefix(buf: Buffer, off: number): number {
    const length = buf.readUInt32BE(off);
    if (length > this.#maxLength) {
      throw new ProtocolError(
        'oversized_frame',
        `frame of ${length - FIXED_AFTER_LENGTH_BYTES} bytes exceeds the limit of ${this.#maxLength - FIXED_AFTER_LENGTH_BYTES} bytes`,
      );
    }
    if (length < FIXED_AFTER_LENGTH_BYTES) {
      throw new ProtocolError('malformed_frame', `frame length ${length} is shorter than the fixed fields`);
    }
    const type = buf[off + 4] ?? 0;
    if (type < 1 || type > MAX_FRAME_TYPE) {
      throw new ProtocolError('unknown_frame_type', `unknown frame type ${type}`);
    }
    const headerBytes = buf.readUInt32BE(off + 9);
    if (headerBytes > length - FIXED_AFTER_LENGTH_BYTES) {
      throw new ProtocolError(
        'malformed_frame',
        `header length ${headerBytes} exceeds the frame's ${length - FIXED_AFTER_LENGTH_BYTES} bytes`,
      );
    }
    return length;
  }

  /** Starts assembling the frame whose prefix is at `off` in `buf`; its body follows in later bytes. */
  #startAssembly(buf: Buffer, off: number): void {
    const length = this.#checkPrefix(buf, off);
    this.#type = buf[off + 4] as FrameType;
    this.#callId = buf.readUInt32BE(off + 5);
    this.#headerBytes = buf.readUInt32BE(off + 9);
    this.#bodyBytes = length - FIXED_AFTER_LENGTH_BYTES;
    this.#bodyNeeded = this.#bodyBytes;
    this.#parts = [];
    if (this.#splitData && this.#type === FrameType.Data && this.#headerBytes === 0 && this.#bodyBytes > 0) {
      this.#piecewise = true;
      return;
    }
    if (this.#directEnabled && this.#bodyBytes >= DIRECT_READ_MIN_BYTES) {
      const own =
        this.#type === FrameType.Data && this.#headerBytes === 0
          ? this.#dataBodies?.(this.#callId, this.#bodyBytes)
          : undefined;
      if (own !== undefined && own.length !== this.#bodyBytes) {
        throw new Error(`receive buffer of ${own.length} bytes for a ${this.#bodyBytes}-byte body`);
      }
      this.#direct = own ?? this.#carve(this.#bodyBytes);
      this.#directFilled = 0;
    }
  }

  /**
   * A buffer for a big frame body, cut from a shared multi-MiB slab. One malloc per frame would
   * come back from the allocator as fresh pages (a page fault per 4 KiB: measured, it doubled the
   * CPU cost of receiving); slabs of a few MiB are reused by the allocator instead. A kept chunk
   * pins its slab, hence the slab stays small and bodies over half a slab get their own buffer.
   */
  #carve(bytes: number): Buffer {
    if (bytes > BODY_SLAB_BYTES / 2) return Buffer.allocUnsafeSlow(bytes);
    if (this.#bodySlab.length - this.#bodySlabOffset < bytes) {
      this.#bodySlab = Buffer.allocUnsafeSlow(BODY_SLAB_BYTES);
      this.#bodySlabOffset = 0;
    }
    const out = this.#bodySlab.subarray(this.#bodySlabOffset, this.#bodySlabOffset + bytes);
    // Keep the next body 8-byte aligned (faster copies by whoever reads it).
    this.#bodySlabOffset += (bytes + 7) & ~7;
    return out;
  }

  #emitAssembled(): void {
    let body: Buffer;
    if (this.#direct !== undefined) {
      body = this.#direct;
      this.#direct = undefined;
    } else if (this.#parts.length === 1) {
      body = this.#parts[0] as Buffer;
    } else {
      body = Buffer.concat(this.#parts, this.#bodyBytes);
    }
    this.#parts = [];
    this.#expectBig = this.#bodyBytes >= DIRECT_READ_MIN_BYTES;
    const header = body.subarray(0, this.#headerBytes);
    const payload = body.subarray(this.#headerBytes);
    this.#onFrame(this.#type, this.#callId, header, ownPayload(payload));
  }
}

/** Pieces of stream data are views unless tiny (a tiny view kept long would pin a whole read buffer). */
function ownPiece(piece: Buffer): Buffer {
  return piece.length < SMALL_PIECE_COPY_BYTES ? Buffer.from(piece) : piece;
}

/** Copies a small payload out of a shared read buffer; big ones are handed out as they are. */
function ownPayload(payload: Buffer): Buffer {
  if (payload.length === 0) return EMPTY;
  if (payload.length >= SMALL_PAYLOAD_COPY_BYTES) return payload;
  return Buffer.from(payload);
}
