/**
 * Verified short-circuit reads. A worker verifies every chunk it serves over RPC, but a client on
 * the worker's machine reads the block file itself; without a check here, a flipped bit on the
 * disk would reach the application until the worker's scrubber found it (a day, by default).
 * So the client reads the block file's checksum table once per open, and every read covers whole
 * 64 KiB chunks and checks their CRC32s before any byte of them is handed out, as the worker does.
 *
 * Reads that start or end inside a chunk read that whole chunk into a scratch buffer (at most
 * 64 KiB more per end); whole chunks are read into the caller's buffer and checked in place.
 *
 * Blocks on the memory tier are not checked by default (`client.local_read_verify = "disk"`):
 * their files live in RAM (tmpfs), were checked when they were written or moved there, and have
 * no medium under them to rot — HDFS's short-circuit reads make the same exception for replicas
 * it holds locked in memory. See docs/client.md, *Verified short-circuit reads*.
 */
import { read as readFd, readSync } from 'node:fs';
import { promisify } from 'node:util';
import type { FileHandle } from 'node:fs/promises';
import { StrataError } from '../common/errors.js';
import type { LocalReadVerify, StorageType } from '../common/config/index.js';
import { CHUNK_SIZE_BYTES, checkTrailer, chunkMatches, trailerSizeFor } from '../protocol/block-format.js';

const preadFd = promisify(readFd);

/** Whether a short-circuit read of a block on `storageType` checks checksums. */
export function mustVerify(mode: LocalReadVerify, storageType: StorageType): boolean {
  return mode === 'all' || (mode === 'disk' && storageType !== 'MEM');
}

/** A block file whose checksums a local read must check. */
export interface VerifiedFile {
  readonly blockId: number;
  /** Data bytes in the file (the trailer follows them). */
  readonly lengthBytes: number;
  /** One CRC32 per 64 KiB chunk, little endian. */
  readonly table: Buffer;
}

/** The local copy failed its checks: the reader drops it and reads the block another way. */
export class LocalCopyCorruptError extends StrataError {
  /** What is wrong with the file. */
  readonly what: string;

  constructor(blockId: number, what: string, options: { cause?: unknown } = {}) {
    super('STRATA_BLOCK_CORRUPT', `block ${blockId}: the local copy is corrupt (${what})`, {
      ...options,
      details: { blockId },
    });
    this.name = 'LocalCopyCorruptError';
    this.what = what;
  }
}

/** Reads and checks the trailer of a block file of `lengthBytes` data bytes; returns its table. */
export function readChecksumTable(fh: FileHandle, blockId: number, lengthBytes: number): Promise<Buffer> {
  return readTable((b, o, n, p) => fh.read(b, o, n, p), blockId, lengthBytes);
}

/** `readChecksumTable` of a descriptor (the FUSE engine's direct reads). */
export function readChecksumTableFd(fd: number, blockId: number, lengthBytes: number): Promise<Buffer> {
  return readTable((b, o, n, p) => preadFd(fd, b, o, n, p), blockId, lengthBytes);
}

async function readTable(
  pread: (target: Buffer, offset: number, length: number, position: number) => Promise<{ bytesRead: number }>,
  blockId: number,
  lengthBytes: number,
): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(trailerSizeFor(lengthBytes));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await pread(buf, got, buf.length - got, lengthBytes + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  const table = checkTrailer(buf.subarray(0, got), lengthBytes);
  if (typeof table === 'string') throw new LocalCopyCorruptError(blockId, table);
  return table;
}

/** Reads `length` bytes at `position` into target[offset…]; fewer only at the end of the file. */
type Pread = (
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
) => number | Promise<number>;

/**
 * Reads block bytes [blockOffset, blockOffset + length) into target[targetOffset…], checked
 * chunk by chunk; stops at the file's data end. Returns the bytes read. Throws
 * LocalCopyCorruptError before handing out a byte of a chunk that does not match.
 */
export async function readVerified(
  fh: FileHandle,
  file: VerifiedFile,
  target: Uint8Array,
  targetOffset: number,
  blockOffset: number,
  length: number,
): Promise<number> {
  const pread: Pread = (t, o, n, p) => preadFull(fh, t, o, n, p);
  let done = 0;
  for (const step of plan(file, blockOffset, length)) {
    done += await runStep(step, pread, file, target, targetOffset + done, undefined);
  }
  return done;
}

/** `readVerified` on the calling thread (inline reads, the FUSE reader thread). */
export function readVerifiedSync(
  fd: number,
  file: VerifiedFile,
  target: Uint8Array,
  targetOffset: number,
  blockOffset: number,
  length: number,
): number {
  const pread = (t: Uint8Array, o: number, n: number, p: number): number => preadFullSync(fd, t, o, n, p);
  let done = 0;
  for (const step of plan(file, blockOffset, length)) {
    const r = runStep(step, pread, file, target, targetOffset + done, syncScratch);
    if (typeof r !== 'number') throw new Error('a synchronous read returned a promise');
    done += r;
  }
  return done;
}

/** One read of whole chunks [chunkStart, chunkEnd) handing out [from, to) of them. */
interface Step {
  chunkStart: number;
  chunkEnd: number;
  from: number;
  to: number;
}

function* plan(file: VerifiedFile, blockOffset: number, length: number): Generator<Step> {
  const end = Math.min(blockOffset + length, file.lengthBytes);
  let pos = blockOffset;
  while (pos < end) {
    const chunkStart = Math.floor(pos / CHUNK_SIZE_BYTES) * CHUNK_SIZE_BYTES;
    const firstEnd = Math.min(chunkStart + CHUNK_SIZE_BYTES, file.lengthBytes);
    if (pos === chunkStart && end >= firstEnd) {
      // A run of whole chunks, read straight into the caller's buffer.
      const runEnd =
        end >= file.lengthBytes ? file.lengthBytes : Math.floor(end / CHUNK_SIZE_BYTES) * CHUNK_SIZE_BYTES;
      yield { chunkStart, chunkEnd: runEnd, from: pos, to: runEnd };
      pos = runEnd;
    } else {
      const to = Math.min(end, firstEnd);
      yield { chunkStart, chunkEnd: firstEnd, from: pos, to };
      pos = to;
    }
  }
}

/** The partial chunk of a synchronous read (one at a time per thread): no allocation per read. */
const syncScratch = Buffer.allocUnsafeSlow(CHUNK_SIZE_BYTES);

/** Reads one step; a partial chunk goes through `scratch` (a fresh buffer when absent). */
function runStep(
  step: Step,
  pread: Pread,
  file: VerifiedFile,
  target: Uint8Array,
  targetOffset: number,
  scratch: Buffer | undefined,
): number | Promise<number> {
  const whole = step.from === step.chunkStart && step.to === step.chunkEnd;
  const span = step.chunkEnd - step.chunkStart;
  const buf = whole
    ? target.subarray(targetOffset, targetOffset + span)
    : (scratch?.subarray(0, span) ?? Buffer.allocUnsafe(span));
  const finish = (got: number): number => {
    if (got < span) {
      throw new LocalCopyCorruptError(
        file.blockId,
        `file ends at ${step.chunkStart + got}, expected ${file.lengthBytes} data bytes`,
      );
    }
    checkChunks(file, step.chunkStart, buf.subarray(0, span));
    if (!whole)
      target.set(buf.subarray(step.from - step.chunkStart, step.to - step.chunkStart), targetOffset);
    return step.to - step.from;
  };
  const got = pread(buf, 0, span, step.chunkStart);
  return typeof got === 'number' ? finish(got) : got.then(finish);
}

/** Checks `data`, the chunks of `file` from `start` (a chunk boundary) on, against the table. */
function checkChunks(file: VerifiedFile, start: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; off += CHUNK_SIZE_BYTES) {
    const index = (start + off) / CHUNK_SIZE_BYTES;
    if (!chunkMatches(file.table, index, data.subarray(off, Math.min(off + CHUNK_SIZE_BYTES, data.length)))) {
      throw new LocalCopyCorruptError(file.blockId, `checksum mismatch in chunk ${index}`);
    }
  }
}

/** Reads `length` bytes at `position` into target[offset…]; fewer only at the end of the file. */
export async function preadFull(
  fh: FileHandle,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(target, offset + got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** `preadFull` on the calling thread. */
export function preadFullSync(
  fd: number,
  target: Uint8Array,
  offset: number,
  length: number,
  position: number,
): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, target, offset + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
