/**
 * Direct reads: READ requests the reader thread answers itself, with a pread of a local block
 * file and one write of the reply to /dev/fuse, without handing them to the event loop. A 4 KiB
 * random read is one synchronous round trip for the application, and two thread hand-overs and
 * the client's per-call work were most of its time.
 *
 * The event loop grants a file handle a table (its size and which local file holds each byte
 * range) once the handle was read through the operations and the operations produced a plan:
 * read-only, every block local, no writer on the file. It revokes the grant before anything
 * changes the file's bytes through the mount, and acknowledges every RELEASE it processed.
 * Grants, revocations and acknowledgements travel over a MessagePort the reader drains
 * synchronously (receiveMessageOnPort) before each request, so one posted before a reply was
 * written is seen before any request that reply made possible.
 *
 * Handle numbers are reused once released. The reader drops a handle's table as soon as it
 * reads the RELEASE (before handing it on), and ignores grants for that number until the event
 * loop acknowledges the release: a grant computed for the old handle that was posted late is
 * then never applied to a new handle with the same number.
 *
 * The reader owns every descriptor of a grant from the moment it is posted and closes them when
 * the grant ends (release, revocation, ignored grant, end of session). Block files are never
 * changed once published, and Linux keeps an unlinked file readable through an open
 * descriptor, so a grant stays right even when the worker evicts or moves the block.
 *
 * Extents whose block files must be checked (`client.local_read_verify`) come with their
 * checksum tables: their reads cover whole 64 KiB chunks and check them before a byte goes out,
 * on this thread. A chunk that does not match ends the handle's grant, and the read goes to the
 * event loop, whose client reads the block through the worker (which drops the bad copy).
 *
 * Anything a grant cannot answer (unknown handle, a range beyond the reply buffer, a read
 * error, a short block file) is handed to the event loop as before.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { receiveMessageOnPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { LocalCopyCorruptError, readVerifiedSync } from '../../client/local-verify.js';
import type { VerifiedFile } from '../../client/local-verify.js';
import type { DirectReadPlan } from '../binding.js';
import { IN_HEADER_BYTES, OUT_HEADER_BYTES, Op } from './protocol.js';

/** Event loop → reader thread. */
export type DirectReadMessage =
  | { kind: 'grant'; fh: number; plan: DirectReadPlan }
  | { kind: 'revoke'; fh: number }
  | { kind: 'released'; fh: number };

/** Slots of the shared statistics (Float64Array; only the reader thread writes them). */
export const DIRECT_STAT_REQUESTS = 0;
export const DIRECT_STAT_BYTES = 1;
export const DIRECT_STAT_SLOTS = 2;

/** fuse_read_in after the header: fh u64, offset u64, size u32, ... (40 bytes). */
const READ_IN_BYTES = 40;
/** fuse_release_in: fh u64 first. */
const RELEASE_IN_MIN_BYTES = 8;
const TWO_POW_32 = 2 ** 32;

interface Grant {
  sizeBytes: number;
  starts: Float64Array;
  ends: Float64Array;
  fds: Int32Array;
  /** Per extent: the checksums its reads check, or undefined. */
  checksums: (VerifiedFile | undefined)[];
}

function u64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * TWO_POW_32;
}

function closeAll(fds: ArrayLike<number>): void {
  for (let i = 0; i < fds.length; i++) {
    try {
      closeSync(fds[i] as number);
    } catch {
      // Nothing to do about a descriptor that will not close.
    }
  }
}

/** The reader thread's side: the grants it holds and the READs it answers from them. */
export class DirectReadTable {
  readonly #devFd: number;
  readonly #port: MessagePort;
  readonly #stats: Float64Array;
  readonly #grants = new Map<number, Grant>();
  /** Handles whose RELEASE was read and not yet acknowledged: grants for them are stale. */
  readonly #releasing = new Set<number>();
  /** One reply at a time: header plus the largest READ the kernel sends. */
  readonly #reply: Buffer;

  constructor(devFd: number, port: MessagePort, stats: SharedArrayBuffer, maxReadBytes: number) {
    this.#devFd = devFd;
    this.#port = port;
    this.#stats = new Float64Array(stats);
    this.#reply = Buffer.allocUnsafeSlow(OUT_HEADER_BYTES + maxReadBytes);
  }

  get size(): number {
    return this.#grants.size;
  }

  /**
   * Looks at one request read from /dev/fuse (`req[0…length)`): a READ of a granted
   * handle is answered here (true); a RELEASE ends its handle's grant; anything else, and any
   * READ this cannot answer, is left to the event loop (false).
   */
  offer(req: Buffer, length: number): boolean {
    this.#drain();
    if (length < IN_HEADER_BYTES || req.readUInt32LE(0) !== length) return false;
    const opcode = req.readUInt32LE(4);
    if (opcode === Op.READ) return this.#grants.size > 0 && this.#read(req, length);
    if (opcode === Op.RELEASE && length >= IN_HEADER_BYTES + RELEASE_IN_MIN_BYTES) {
      const fh = u64(req, IN_HEADER_BYTES);
      this.#releasing.add(fh);
      this.#drop(fh);
    }
    return false;
  }

  /** The session is over: every descriptor still held is closed. */
  close(): void {
    this.#drain();
    for (const fh of [...this.#grants.keys()]) this.#drop(fh);
  }

  #drain(): void {
    for (;;) {
      const m = receiveMessageOnPort(this.#port);
      if (m === undefined) return;
      this.#apply(m.message as DirectReadMessage);
    }
  }

  #apply(m: DirectReadMessage): void {
    if (m.kind === 'released') {
      this.#releasing.delete(m.fh);
      return;
    }
    if (m.kind === 'revoke') {
      this.#drop(m.fh);
      return;
    }
    const { plan } = m;
    const fds = plan.extents.map((e) => e.fd);
    if (this.#releasing.has(m.fh) || this.#grants.has(m.fh)) {
      closeAll(fds);
      return;
    }
    this.#grants.set(m.fh, {
      sizeBytes: plan.sizeBytes,
      starts: Float64Array.from(plan.extents, (e) => e.offset),
      ends: Float64Array.from(plan.extents, (e) => e.offset + e.length),
      fds: Int32Array.from(fds),
      // A Buffer arrives as a plain Uint8Array through postMessage.
      checksums: plan.extents.map((e) =>
        e.checksums === undefined
          ? undefined
          : {
              ...e.checksums,
              table: Buffer.from(
                e.checksums.table.buffer,
                e.checksums.table.byteOffset,
                e.checksums.table.byteLength,
              ),
            },
      ),
    });
  }

  #drop(fh: number): void {
    const g = this.#grants.get(fh);
    if (g === undefined) return;
    this.#grants.delete(fh);
    closeAll(g.fds);
  }

  /** Answers a READ from its handle's grant; false leaves it to the event loop. */
  #read(req: Buffer, length: number): boolean {
    if (length < IN_HEADER_BYTES + READ_IN_BYTES) return false;
    const g = this.#grants.get(u64(req, IN_HEADER_BYTES));
    if (g === undefined) return false;
    const offset = u64(req, IN_HEADER_BYTES + 8);
    const size = req.readUInt32LE(IN_HEADER_BYTES + 16);
    const reply = this.#reply;
    if (OUT_HEADER_BYTES + size > reply.length) return false;
    const end = Math.min(offset + size, g.sizeBytes);
    const n = Math.max(0, end - offset);
    try {
      if (!this.#fill(g, offset, offset + n)) return false;
    } catch (err) {
      // A damaged block file: no more reads of this handle here.
      if (err instanceof LocalCopyCorruptError) this.#drop(u64(req, IN_HEADER_BYTES));
      return false;
    }
    reply.writeUInt32LE(OUT_HEADER_BYTES + n, 0);
    reply.writeInt32LE(0, 4);
    req.copy(reply, 8, 8, 16); // unique
    // Counted before the reply is written: the reply wakes the reader, which may read /metrics
    // at once and must find its read counted (a count after the write raced with it).
    const stats = this.#stats;
    stats[DIRECT_STAT_REQUESTS] = (stats[DIRECT_STAT_REQUESTS] as number) + 1;
    stats[DIRECT_STAT_BYTES] = (stats[DIRECT_STAT_BYTES] as number) + n;
    try {
      writeSync(this.#devFd, reply, 0, OUT_HEADER_BYTES + n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: interrupted, nobody waits for the answer; ENODEV: the session is over.
      if (code !== 'ENOENT' && code !== 'ENODEV') {
        // Not answered here after all: the event loop answers (and counts) it.
        stats[DIRECT_STAT_REQUESTS] = stats[DIRECT_STAT_REQUESTS] - 1;
        stats[DIRECT_STAT_BYTES] = stats[DIRECT_STAT_BYTES] - n;
        return false;
      }
    }
    return true;
  }

  /**
   * Copies file bytes [from, to) into the reply after its header; false on a short file. Throws
   * LocalCopyCorruptError when a checked extent's chunk does not match.
   */
  #fill(g: Grant, from: number, to: number): boolean {
    const reply = this.#reply;
    const count = g.starts.length;
    // The first extent ending after `from` (extents are sorted and do not overlap).
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((g.ends[mid] as number) <= from) lo = mid + 1;
      else hi = mid;
    }
    let i = lo;
    let pos = from;
    while (pos < to) {
      const at = OUT_HEADER_BYTES + (pos - from);
      const start = i < count ? (g.starts[i] as number) : Infinity;
      if (pos < start) {
        // A hole up to the next extent: zeros.
        const holeEnd = Math.min(to, start);
        reply.fill(0, at, at + (holeEnd - pos));
        pos = holeEnd;
        continue;
      }
      const take = Math.min(to, g.ends[i] as number) - pos;
      const fd = g.fds[i] as number;
      const checked = g.checksums[i];
      if (checked !== undefined) {
        if (readVerifiedSync(fd, checked, reply, at, pos - start, take) < take) return false;
        pos += take;
        i++;
        continue;
      }
      let got = 0;
      while (got < take) {
        const k = readSync(fd, reply, at + got, take - got, pos - start + got);
        if (k === 0) return false;
        got += k;
      }
      pos += take;
      i++;
    }
    return true;
  }
}
