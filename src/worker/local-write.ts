/**
 * Short-circuit writes: a client on this machine fills a staging file directly, then commits
 * (the worker checks the length, checksums the file, appends the trailer, syncs and publishes it)
 * or aborts. Space is reserved at open from the length hint and grown at commit if needed; an
 * abandoned session expires and its file is removed.
 */
import { open, stat } from 'node:fs/promises';
import type { StorageType } from '../common/config/index.js';
import { FsError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { LOCAL_WRITE_CHECKSUM_CHUNK_BYTES } from '../protocol/worker-calls.js';
import {
  CHUNK_SIZE_BYTES,
  CRC_SIZE_BYTES,
  ChunkChecksummer,
  chunkCount,
  chunkMatches,
  encodeTrailer,
  fileSizeFor,
} from '../protocol/block-format.js';
import type { BlockInfo, BlockStore, WriteClaim } from './block-store.js';
import { RESERVE_STEP_BYTES } from './block-writer.js';
import { badRequest, WriteCancelledError } from './errors.js';
import { unlinkIfExists } from './fs-util.js';
import type { Tier } from './tiers.js';
import type { TierDir } from './tier-dir.js';

/** A session neither committed nor aborted within this time is aborted. */
export const LOCAL_WRITE_TIMEOUT_MS = 10 * 60_000;
/**
 * Reserved at open when the client gives no length hint; the commit grows the reservation to
 * the real size (or fails with ENOSPC). Clients should pass the hint.
 */
export const LOCAL_WRITE_DEFAULT_RESERVE_BYTES = RESERVE_STEP_BYTES;

class Session implements WriteClaim {
  readonly blockId: number;
  readonly tier: Tier;
  readonly dir: TierDir;
  readonly path: string;
  reservedBytes: number;
  timer: NodeJS.Timeout | undefined;
  cancelled: string | undefined;
  busy = false;

  constructor(blockId: number, tier: Tier, dir: TierDir, path: string, reservedBytes: number) {
    this.blockId = blockId;
    this.tier = tier;
    this.dir = dir;
    this.path = path;
    this.reservedBytes = reservedBytes;
  }

  cancel(reason: string): void {
    this.cancelled ??= reason;
  }
}

export interface LocalWriteOptions {
  store: BlockStore;
  log: Logger;
  timeoutMs?: number;
}

export class LocalWrites {
  readonly #store: BlockStore;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #sessions = new Map<number, Session>();

  constructor(opts: LocalWriteOptions) {
    this.#store = opts.store;
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs ?? LOCAL_WRITE_TIMEOUT_MS;
  }

  get active(): number {
    return this.#sessions.size;
  }

  async open(
    blockId: number,
    type: StorageType,
    lengthHint: number | undefined,
    signal?: AbortSignal,
  ): Promise<{ path: string; storageType: StorageType }> {
    const reserve = fileSizeFor(lengthHint ?? LOCAL_WRITE_DEFAULT_RESERVE_BYTES);
    const holder = { cancel: (): void => undefined };
    this.#store.claimWriter(blockId, holder);
    let session: Session | undefined;
    try {
      const { tier, dir } = await this.#store.reserve(type, reserve, signal);
      session = new Session(blockId, tier, dir, this.#store.stagingPath(dir, blockId, 'local'), reserve);
      try {
        const fh = await open(session.path, 'wx', 0o644);
        await fh.close();
      } catch (err) {
        dir.release(reserve);
        throw err;
      }
    } finally {
      this.#store.releaseWriter(blockId, holder);
    }
    this.#store.claimWriter(blockId, session);
    this.#sessions.set(blockId, session);
    const s = session;
    s.timer = setTimeout(() => {
      this.#log.warn({ blockId, path: s.path }, 'short-circuit write expired: aborted');
      void this.abort(blockId);
    }, this.#timeoutMs);
    s.timer.unref();
    return { path: s.path, storageType: s.tier.storageType };
  }

  /**
   * Checks the staged file is `length` bytes, checksums it and publishes it. `table` is the
   * writer's own checksum table (see CommitLocalWrite): then the file is not read back, only
   * its first and last chunks are checked against the table.
   */
  async commit(blockId: number, length: number, signal?: AbortSignal, table?: Buffer): Promise<BlockInfo> {
    const s = this.#take(blockId);
    try {
      if (s.cancelled !== undefined) throw new WriteCancelledError(blockId, s.cancelled);
      const st = await stat(s.path);
      if (st.size !== length) {
        throw badRequest(
          `block ${blockId}: the staged file holds ${st.size} bytes but the commit says ${length}`,
          { blockId },
        );
      }
      const need = fileSizeFor(length);
      if (need > s.reservedBytes) {
        await this.#store.grow(s.dir, need - s.reservedBytes, signal);
        s.reservedBytes = need;
      }
      if (table === undefined) await appendChecksums(s.path, length, this.#store, signal);
      else await appendGivenChecksums(s.path, length, table);
      if (s.cancelled !== undefined) throw new WriteCancelledError(blockId, s.cancelled);
      return await this.#store.publishStaged({
        blockId,
        lengthBytes: length,
        fileBytes: need,
        stagingPath: s.path,
        dir: s.dir,
        tier: s.tier,
        synced: true,
        reservedBytes: s.reservedBytes,
      });
    } catch (err) {
      await this.#discard(s);
      throw err;
    } finally {
      this.#store.releaseWriter(blockId, s);
    }
  }

  async abort(blockId: number): Promise<boolean> {
    const s = this.#sessions.get(blockId);
    if (s === undefined || s.busy) return false;
    this.#sessions.delete(blockId);
    clearTimeout(s.timer);
    await this.#discard(s);
    this.#store.releaseWriter(blockId, s);
    return true;
  }

  /** Aborts every session (the worker is stopping). */
  async close(): Promise<void> {
    for (const id of [...this.#sessions.keys()]) await this.abort(id);
  }

  #take(blockId: number): Session {
    const s = this.#sessions.get(blockId);
    if (s === undefined || s.busy) {
      throw new FsError(
        'ENOENT',
        `block ${blockId}: no short-circuit write is open (expired, aborted or committed)`,
        {
          details: { blockId },
        },
      );
    }
    s.busy = true;
    this.#sessions.delete(blockId);
    clearTimeout(s.timer);
    return s;
  }

  async #discard(s: Session): Promise<void> {
    await unlinkIfExists(s.path).catch(() => undefined);
    s.dir.release(s.reservedBytes);
    this.#store.notifySpaceFreed();
  }
}

if (LOCAL_WRITE_CHECKSUM_CHUNK_BYTES !== CHUNK_SIZE_BYTES) {
  throw new Error('the short-circuit checksum chunk must be the block format chunk');
}

/**
 * Appends the trailer built from the writer's table, after checking the table has one entry per
 * chunk and matches the file's first and last chunks (a table of other bytes, or a file written
 * short, is refused instead of publishing a block that fails every read), then syncs.
 */
async function appendGivenChecksums(path: string, length: number, table: Buffer): Promise<void> {
  const chunks = chunkCount(length);
  if (table.length !== chunks * CRC_SIZE_BYTES) {
    throw badRequest(
      `the checksum table holds ${table.length} bytes; ${chunks * CRC_SIZE_BYTES} expected for ${length} bytes`,
    );
  }
  const fh = await open(path, 'r+');
  try {
    const probe = Buffer.allocUnsafe(CHUNK_SIZE_BYTES);
    const probes = chunks === 0 ? [] : [...new Set([0, chunks - 1])];
    for (const index of probes) {
      const at = index * CHUNK_SIZE_BYTES;
      const want = Math.min(CHUNK_SIZE_BYTES, length - at);
      const { bytesRead } = await fh.read(probe, 0, want, at);
      if (bytesRead !== want || !chunkMatches(table, index, probe.subarray(0, want))) {
        throw badRequest(`the checksum table does not match chunk ${index} of the staged file ${path}`);
      }
    }
    const trailer = encodeTrailer(length, table);
    await fh.write(trailer, 0, trailer.length, length);
    await fh.truncate(length + trailer.length);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * Reads the staged data once (1 MiB windows, the next one read while the current one is
 * checksummed), then appends the checksum trailer and syncs.
 */
async function appendChecksums(
  path: string,
  length: number,
  store: BlockStore,
  signal?: AbortSignal,
): Promise<void> {
  const fh = await open(path, 'r+');
  const bufs = [store.pool.acquire(), store.pool.acquire()] as const;
  const readAt = async (pos: number, buf: Buffer): Promise<number> => {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, length - pos), pos);
    if (bytesRead === 0) throw badRequest(`staged file ${path} shrank while being committed`);
    return bytesRead;
  };
  let next: Promise<number> | undefined;
  try {
    const sum = new ChunkChecksummer(length);
    let pos = 0;
    let turn = 0;
    next = length > 0 ? readAt(0, bufs[0]) : undefined;
    while (next !== undefined) {
      signal?.throwIfAborted();
      const cur = bufs[turn % 2] as Buffer;
      const n = await next;
      next = undefined;
      pos += n;
      if (pos < length) next = readAt(pos, bufs[(turn + 1) % 2] as Buffer);
      sum.update(cur.subarray(0, n));
      turn++;
    }
    const trailer = encodeTrailer(length, sum.finish());
    await fh.write(trailer, 0, trailer.length, length);
    await fh.truncate(length + trailer.length);
    await fh.datasync();
  } finally {
    await next?.catch(() => undefined);
    for (const b of bufs) store.pool.release(b);
    await fh.close();
  }
}
