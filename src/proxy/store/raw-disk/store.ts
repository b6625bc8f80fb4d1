/**
 * L2 `raw_disk`: every entry lives in one preallocated file (or block device) managed by our own
 * block allocator, with an index that survives restarts.
 *
 * An entry is a stream laid over one or more extents of blocks: a metadata area (msgpack of the
 * entry's headers and policy, room reserved so a 304 can rewrite it in place), then the body in
 * 64 KiB frames, each optionally deflated and each with a CRC-32. The in-memory index maps a key
 * to its extents, frame table and checksums.
 *
 * Crash safety, in order: body frames and metadata are written into blocks no durable record
 * references; the file is synced; only then is a `put` record appended to the journal (and
 * synced). Blocks given up by a delete or a replacement return to the free map only once the
 * record that gave them up is durable and no reader holds them. So after a SIGKILL or power
 * loss, replay (last checkpoint + journal of its epoch) yields only entries whose bytes were
 * completely written, and every read is still checked against its CRCs.
 */
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  deflateRaw as deflateRawCb,
  inflateRaw as inflateRawCb,
  constants as zlibConstants,
} from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import type { Logger } from '../../../common/logging.js';
import { familyOf } from '../../cache-key.js';
import { CorruptEntryError, StoreFullError } from '../../errors.js';
import { FRAME_BYTES, VERIFIED_TTL_MS, crcOf } from '../frames.js';
import { S3FifoPolicy } from '../s3fifo.js';
import type {
  EntryMeta,
  ProxyStore,
  PutOptions,
  RawDiskStats,
  StoreHit,
  StoreStats,
  StoreWriter,
} from '../types.js';
import { ExtentAllocator } from './allocator.js';
import type { Extent } from './allocator.js';
import { JournalRegion, encodeRecord, scanRecords } from './journal.js';
import type { JournalRecord, PutRecord } from './journal.js';
import {
  MAX_CHECKPOINT_EXTENTS,
  MAX_EXTENTS_PER_ENTRY,
  SUPERBLOCK_SLOT_BYTES,
  computeGeometry,
  decodeSuperblock,
  encodeSuperblock,
  sameGeometry,
} from './layout.js';
import type { Geometry, Superblock } from './layout.js';

const deflateRaw = promisify(deflateRawCb);
const inflateRaw = promisify(inflateRawCb);

/** Room kept after an entry's metadata so a refreshed (304) header set can be rewritten in place. */
export const META_SLACK_BYTES = 512;
/** First reservation of a writer whose length the origin did not announce. */
export const INITIAL_RESERVATION_BYTES = 256 * 1024;
/** A writer grows its reservation by doubling, up to this much per step. */
export const MAX_GROWTH_BYTES = 64 * 1024 * 1024;
/** Bytes read per step of a hit (whole frames). */
export const RAW_READ_STEP_BYTES = 16 * FRAME_BYTES;
/** Background defragmentation starts above this fragmentation rate (the seed alerts at 0.4). */
export const DEFRAG_TRIGGER_RATE = 0.3;
/** Bytes moved per defragmentation pass, so it never hogs the disk. */
export const DEFRAG_BUDGET_BYTES = 64 * 1024 * 1024;
export const DEFRAG_INTERVAL_MS = 30_000;
/** How many victims one allocation may evict before giving up (the entry is then not cached). */
export const MAX_EVICTIONS_PER_ALLOCATION = 256;
/** Evict-and-wait rounds one allocation may take before the entry is simply not cached. */
const ALLOCATION_ROUNDS = 8;
/** Compression must save at least this share of a frame to be kept. */
const MIN_COMPRESSION_GAIN = 0.05;
/** Per-entry bytes of a checkpoint record besides key and frame table (estimate for the reserve). */
const RECORD_OVERHEAD_BYTES = 96;

interface Entry {
  key: string;
  ext: number[];
  metaBytes: number;
  metaReserve: number;
  metaCrc: number;
  rawBytes: number;
  storedBytes: number;
  frames: Buffer;
  at: number;
  blocks: number;
  /** Stream offsets of each frame relative to the body start (computed on first read). */
  frameOffsets: Float64Array | undefined;
  pins: number;
  dead: boolean;
  /** Sequence of the record that removed this entry; its blocks are reusable once that is durable. */
  deadSeq: number;
  freed: boolean;
  metaWrite: Promise<void> | undefined;
  /** Frames whose CRC passed recently (see VerifiedFrames); reset with the entry. */
  verified: { frames: Uint8Array; atMs: number } | undefined;
}

interface PendingFree {
  ext: number[];
  seq: number;
  entry: Entry | undefined;
}

interface Pending {
  seq: number;
  rec: JournalRecord;
  onDurable: (() => void) | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface RawDiskOptions {
  devicePath: string;
  totalBytes: number;
  blockSizeBytes: number;
  compression: boolean;
  prefetch: boolean;
  directIo: boolean;
  log: Logger;
  /** Run background defragmentation (tests call `defragment` directly). */
  autoDefrag?: boolean;
}

function flatToExtents(flat: readonly number[]): Extent[] {
  const out: Extent[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i] as number, flat[i + 1] as number]);
  return out;
}

function extentsToFlat(ext: readonly Extent[]): number[] {
  const out: number[] = [];
  for (const [s, c] of ext) out.push(s, c);
  return out;
}

function blocksOf(flat: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < flat.length; i += 2) n += flat[i] as number;
  return n;
}

export class RawDiskStore implements ProxyStore {
  readonly kind = 'raw_disk';
  readonly #opts: RawDiskOptions;
  readonly #log: Logger;
  #fh!: FileHandle;
  #geo!: Geometry;
  #sb!: Superblock;
  #journal!: JournalRegion;
  #alloc!: ExtentAllocator;
  readonly #index = new Map<string, Entry>();
  readonly #families = new Map<string, Set<string>>();
  #policy!: S3FifoPolicy<string>;
  #recordBytesTotal = 0;
  #seq = 0;
  #durableSeq = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #pendingFree: PendingFree[] = [];
  #ready: Promise<void>;
  /** The index is loaded (`#ready` resolved): `knownAbsent` may answer from it. */
  #opened = false;
  #closed = false;
  #defragTimer: NodeJS.Timeout | undefined;
  #defragging = false;

  constructor(opts: RawDiskOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#ready = this.#open();
    this.#ready.then(
      () => (this.#opened = true),
      () => undefined,
    );
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  // ---- opening, formatting, recovery -------------------------------------------------------

  async #open(): Promise<void> {
    const { devicePath, totalBytes, blockSizeBytes } = this.#opts;
    this.#geo = computeGeometry(totalBytes, blockSizeBytes);
    if (this.#opts.directIo) {
      this.#log.warn(
        'raw_disk_cache.use_direct_io is accepted but not applied: Node.js cannot guarantee the aligned buffers O_DIRECT needs; writes go through the page cache and are ordered with fdatasync',
      );
    }
    try {
      const st = await stat(devicePath);
      const isDevice = st.isBlockDevice();
      this.#fh = await open(devicePath, 'r+');
      if (!isDevice && st.size < totalBytes) {
        this.#log.warn(
          { devicePath, sizeBytes: st.size, totalBytes },
          'raw disk cache file is smaller than total_size: extending it (sparse; preallocate with fallocate for predictable latency)',
        );
        await this.#fh.truncate(totalBytes);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.#log.warn({ devicePath, totalBytes }, 'raw disk cache file missing: creating it (sparse)');
      this.#fh = await open(devicePath, 'w+', 0o600);
      await this.#fh.truncate(totalBytes);
    }
    const slots = Buffer.alloc(2 * SUPERBLOCK_SLOT_BYTES);
    await this.#fh.read(slots, 0, slots.length, 0);
    const a = decodeSuperblock(slots.subarray(0, SUPERBLOCK_SLOT_BYTES));
    const b = decodeSuperblock(slots.subarray(SUPERBLOCK_SLOT_BYTES));
    const candidates = [a, b].filter((s): s is Superblock => s !== undefined).sort((x, y) => y.seq - x.seq);
    const current = candidates[0];
    if (current === undefined || !sameGeometry(current, this.#geo)) {
      if (current !== undefined)
        this.#log.warn(
          { devicePath, was: { blockSizeBytes: current.blockSizeBytes, totalBytes: current.totalBytes } },
          'raw disk geometry changed: reformatting (cached entries are dropped)',
        );
      await this.#format(current === undefined ? 1 : current.seq + 1);
    } else {
      try {
        await this.#recover(current);
      } catch (err) {
        this.#log.error(
          { err, devicePath },
          'raw disk index unreadable: reformatting (cached entries are dropped)',
        );
        await this.#format(current.seq + 1);
      }
    }
    if (this.#opts.autoDefrag !== false) {
      this.#defragTimer = setInterval(() => {
        if (this.#alloc.fragmentationRate() > DEFRAG_TRIGGER_RATE)
          this.defragment().catch((err: unknown) =>
            this.#log.warn({ err }, 'raw disk defragmentation failed'),
          );
      }, DEFRAG_INTERVAL_MS);
      this.#defragTimer.unref();
    }
  }

  async #format(seq: number): Promise<void> {
    this.#index.clear();
    this.#families.clear();
    this.#recordBytesTotal = 0;
    const sb: Superblock = { ...this.#geo, version: 1, seq, epoch: seq, checkpoint: null };
    this.#journal = new JournalRegion(this.#fh, this.#geo.journalOffset, this.#geo.journalBytes, sb.epoch, 0);
    await this.#journal.reset(sb.epoch);
    await this.#writeSuperblock(sb);
    this.#alloc = new ExtentAllocator(this.#geo.dataBlocks);
    this.#policy = new S3FifoPolicy<string>(this.#capacityBytes());
  }

  async #writeSuperblock(sb: Superblock): Promise<void> {
    await this.#fh.datasync();
    await this.#fh.write(
      encodeSuperblock(sb),
      0,
      SUPERBLOCK_SLOT_BYTES,
      (sb.seq % 2) * SUPERBLOCK_SLOT_BYTES,
    );
    await this.#fh.datasync();
    this.#sb = sb;
  }

  async #recover(sb: Superblock): Promise<void> {
    const t0 = Date.now();
    this.#sb = sb;
    const records: JournalRecord[] = [];
    if (sb.checkpoint !== null) {
      const buf = await this.#readExtents(extentsToFlat(sb.checkpoint.extents), 0, sb.checkpoint.bytes);
      if (crcOf(buf) !== sb.checkpoint.crc) throw new Error('index checkpoint checksum mismatch');
      const ckpt = unpack(buf) as { records: PutRecord[] };
      records.push(...ckpt.records);
    }
    const region = await JournalRegion.read(this.#fh, this.#geo.journalOffset, this.#geo.journalBytes);
    const { records: journaled, endOffset } = scanRecords(region, sb.epoch);
    records.push(...journaled);
    for (const rec of records) {
      if (rec.t === 'put') this.#indexInsert(this.#entryFromRecord(rec));
      else if (rec.t === 'del') this.#indexRemove(rec.key);
      else {
        const e = this.#index.get(rec.key);
        if (e !== undefined) {
          e.metaBytes = rec.mb;
          e.metaCrc = rec.mc;
        }
      }
    }
    // Rebuild the free map from what is referenced; refuse entries that overlap or overrun.
    const used: Extent[] = [];
    const owner: { s: number; c: number; key: string }[] = [];
    for (const e of this.#index.values())
      for (const [s, c] of flatToExtents(e.ext)) owner.push({ s, c, key: e.key });
    owner.sort((x, y) => x.s - y.s);
    let cursor = 0;
    const bad = new Set<string>();
    for (const o of owner) {
      if (o.s < cursor || o.s + o.c > this.#geo.dataBlocks || o.c <= 0) bad.add(o.key);
      cursor = Math.max(cursor, o.s + o.c);
    }
    for (const k of bad) this.#indexRemove(k);
    for (const e of this.#index.values()) used.push(...flatToExtents(e.ext));
    if (sb.checkpoint !== null) used.push(...sb.checkpoint.extents);
    this.#alloc = new ExtentAllocator(this.#geo.dataBlocks, used);
    this.#policy = new S3FifoPolicy<string>(this.#capacityBytes());
    for (const e of this.#index.values()) this.#policy.insert(e.key, e.blocks * this.#geo.blockSizeBytes);
    this.#journal = new JournalRegion(
      this.#fh,
      this.#geo.journalOffset,
      this.#geo.journalBytes,
      sb.epoch,
      endOffset,
    );
    this.#log.info(
      {
        devicePath: this.#opts.devicePath,
        entries: this.#index.size,
        journalRecords: journaled.length,
        dropped: bad.size,
        ms: Date.now() - t0,
      },
      'raw disk index recovered',
    );
  }

  #capacityBytes(): number {
    return this.#geo.dataBlocks * this.#geo.blockSizeBytes;
  }

  #entryFromRecord(rec: PutRecord): Entry {
    return {
      key: rec.key,
      ext: [...rec.ext],
      metaBytes: rec.mb,
      metaReserve: rec.mr,
      metaCrc: rec.mc,
      rawBytes: rec.raw,
      storedBytes: rec.st,
      frames: Buffer.from(rec.fr),
      at: rec.at,
      blocks: blocksOf(rec.ext),
      frameOffsets: undefined,
      pins: 0,
      dead: false,
      deadSeq: 0,
      freed: false,
      metaWrite: undefined,
      verified: undefined,
    };
  }

  #recordOf(e: Entry, ext: number[] = e.ext): PutRecord {
    return {
      t: 'put',
      key: e.key,
      ext,
      mb: e.metaBytes,
      mr: e.metaReserve,
      mc: e.metaCrc,
      raw: e.rawBytes,
      st: e.storedBytes,
      fr: e.frames,
      at: e.at,
    };
  }

  /** Recovery-time insert: no journaling, no block bookkeeping (the allocator is built after). */
  #indexInsert(e: Entry): void {
    this.#indexRemove(e.key);
    this.#index.set(e.key, e);
    this.#recordBytesTotal += RECORD_OVERHEAD_BYTES + e.key.length + e.frames.length;
    const fam = familyOf(e.key);
    let set = this.#families.get(fam);
    if (set === undefined) this.#families.set(fam, (set = new Set()));
    set.add(e.key);
  }

  #indexRemove(key: string): Entry | undefined {
    const e = this.#index.get(key);
    if (e === undefined) return undefined;
    this.#index.delete(key);
    this.#recordBytesTotal -= RECORD_OVERHEAD_BYTES + e.key.length + e.frames.length;
    const fam = familyOf(key);
    const set = this.#families.get(fam);
    if (set !== undefined) {
      set.delete(key);
      if (set.size === 0) this.#families.delete(fam);
    }
    return e;
  }

  // ---- I/O over extents ----------------------------------------------------------------------

  /** Physical segments [position, length] covering stream bytes [offset, offset+length). */
  #segments(flat: readonly number[], offset: number, length: number): [number, number][] {
    const bs = this.#geo.blockSizeBytes;
    const out: [number, number][] = [];
    let streamBase = 0;
    let want = offset;
    let remaining = length;
    for (let i = 0; i + 1 < flat.length && remaining > 0; i += 2) {
      const s = flat[i] as number;
      const c = flat[i + 1] as number;
      const extBytes = c * bs;
      if (want < streamBase + extBytes) {
        const inExt = want - streamBase;
        const n = Math.min(extBytes - inExt, remaining);
        out.push([this.#geo.dataOffset + s * bs + inExt, n]);
        want += n;
        remaining -= n;
      }
      streamBase += extBytes;
    }
    if (remaining > 0)
      throw new RangeError(`stream range [${offset}, ${offset + length}) beyond its extents`);
    return out;
  }

  async #readExtents(flat: readonly number[], offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let at = 0;
    for (const [pos, len] of this.#segments(flat, offset, length)) {
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.#fh.read(buf, at + got, len - got, pos + got);
        if (bytesRead === 0) throw new Error(`short read at ${pos + got}`);
        got += bytesRead;
      }
      at += len;
    }
    return buf;
  }

  async #writeExtents(flat: readonly number[], offset: number, data: Buffer): Promise<void> {
    let at = 0;
    for (const [pos, len] of this.#segments(flat, offset, data.length)) {
      let done = 0;
      while (done < len) {
        const { bytesWritten } = await this.#fh.write(data, at + done, len - done, pos + done);
        done += bytesWritten;
      }
      at += len;
    }
  }

  // ---- journal: group commit ---------------------------------------------------------------

  /** Appends a record; resolves once it is durable. `onDurable` runs first, synchronously. */
  #enqueue(rec: JournalRecord, onDurable?: () => void): { seq: number; done: Promise<void> } {
    const seq = ++this.#seq;
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#queue.push({ seq, rec, onDurable, resolve, reject });
    this.#kick();
    return { seq, done };
  }

  /** Starts the flush loop unless it runs; a record queued while it winds down restarts it. */
  #kick(): void {
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flushLoop().finally(() => {
      this.#flushing = undefined;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  /** Waits until everything queued so far is durable. */
  async #flushNow(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
  }

  async #flushLoop(): Promise<void> {
    // Let records queued in the same tick share one sync.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        // Data first: a record must never become durable before the bytes it points at.
        await this.#fh.datasync();
        let encoded = batch.map((p) => encodeRecord(this.#journal.epoch, p.rec));
        let total = encoded.reduce((n, b) => n + b.length, 0);
        if (!this.#journal.fits(total)) {
          await this.#checkpoint(batch[0]?.seq ?? this.#seq);
          encoded = batch.map((p) => encodeRecord(this.#journal.epoch, p.rec));
          total = encoded.reduce((n, b) => n + b.length, 0);
          if (!this.#journal.fits(total))
            throw new StoreFullError('journal batch larger than the journal region');
        }
        await this.#journal.append(Buffer.concat(encoded, total));
        await this.#fh.datasync();
        for (const p of batch) {
          this.#durableSeq = Math.max(this.#durableSeq, p.seq);
          try {
            p.onDurable?.();
          } catch (err) {
            this.#log.error({ err }, 'raw disk: applying a durable record failed');
          }
          p.resolve();
        }
        this.#releaseFrees();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  /**
   * Writes the whole index into data blocks, points a new superblock at it and starts a new
   * journal epoch. Removals with sequence up to `coveredSeq` are reflected in it, so their blocks
   * become reusable.
   */
  async #checkpoint(coveredSeq: number): Promise<void> {
    const records = [...this.#index.values()].filter((e) => !e.dead).map((e) => this.#recordOf(e));
    const buf = pack({ records });
    const bs = this.#geo.blockSizeBytes;
    const need = Math.ceil(buf.length / bs);
    const ext = this.#alloc.allocate(need, MAX_CHECKPOINT_EXTENTS);
    if (ext === undefined) {
      // The reserve should prevent this; as a last resort start over with an empty index.
      this.#log.error(
        { needBlocks: need, freeBlocks: this.#alloc.freeBlocks },
        'raw disk: no room for an index checkpoint, dropping the index',
      );
      const old = this.#sb;
      await this.#format(old.seq + 1);
      this.#pendingFree = [];
      return;
    }
    const flat = extentsToFlat(ext);
    await this.#writeExtents(flat, 0, buf);
    const old = this.#sb;
    const sb: Superblock = {
      ...old,
      seq: old.seq + 1,
      epoch: old.epoch + 1,
      checkpoint: { extents: ext.map(([s, c]) => [s, c]), bytes: buf.length, crc: crcOf(buf) },
    };
    await this.#writeSuperblock(sb);
    await this.#journal.reset(sb.epoch);
    if (old.checkpoint !== null) for (const [s, c] of old.checkpoint.extents) this.#alloc.free(s, c);
    this.#durableSeq = Math.max(this.#durableSeq, coveredSeq - 1);
    this.#releaseFrees();
  }

  /** Gives up an entry's blocks once the removing record is durable and no reader holds them. */
  #retire(e: Entry, seq: number): void {
    e.dead = true;
    e.deadSeq = seq;
    this.#pendingFree.push({ ext: e.ext, seq, entry: e });
  }

  #releaseFrees(): void {
    if (this.#pendingFree.length === 0) return;
    const keep: PendingFree[] = [];
    for (const p of this.#pendingFree) {
      const pinned = p.entry !== undefined && p.entry.pins > 0;
      if (p.seq <= this.#durableSeq && !pinned) {
        if (p.entry !== undefined) {
          if (p.entry.freed) continue;
          p.entry.freed = true;
        }
        for (const [s, c] of flatToExtents(p.ext)) this.#alloc.free(s, c);
      } else {
        keep.push(p);
      }
    }
    this.#pendingFree = keep;
  }

  /** Removes an entry from the index and journals it. */
  #removeEntry(key: string): Entry | undefined {
    const e = this.#indexRemove(key);
    if (e === undefined) return undefined;
    this.#policy.remove(key);
    const { seq } = this.#enqueue({ t: 'del', key });
    this.#retire(e, seq);
    return e;
  }

  // ---- allocation with eviction --------------------------------------------------------------

  #reserveBlocks(): number {
    // Room for the next checkpoint while the current one still exists.
    return Math.ceil((this.#recordBytesTotal * 1.25 + 64 * 1024) / this.#geo.blockSizeBytes);
  }

  /**
   * Allocates blocks, evicting as needed. Evicted blocks come back only once their delete
   * records are durable and no reader holds them, so eviction runs ahead, then waits once.
   */
  async allocate(nBlocks: number, maxExtents: number): Promise<number[] | undefined> {
    let evictions = 0;
    for (let round = 0; round < ALLOCATION_ROUNDS; round++) {
      const reserve = this.#reserveBlocks();
      if (this.#alloc.freeBlocks - nBlocks >= reserve) {
        const ext = this.#alloc.allocate(nBlocks, maxExtents);
        if (ext !== undefined) return extentsToFlat(ext);
      }
      // Free space may be enough in total but too splintered: each round asks for more.
      const want = nBlocks + reserve + round * nBlocks;
      while (this.#alloc.freeBlocks + this.#pendingBlocks() < want) {
        if (evictions >= MAX_EVICTIONS_PER_ALLOCATION) break;
        const victim = this.#policy.evictAny();
        if (victim === undefined) break;
        this.#removeEntry(victim);
        evictions++;
      }
      if (this.#pendingFree.length === 0 && this.#queue.length === 0 && this.#flushing === undefined) {
        if (this.#alloc.freeBlocks - nBlocks < reserve) return undefined;
        if (round > 0 && evictions >= MAX_EVICTIONS_PER_ALLOCATION) return undefined;
      }
      await this.#flushNow();
      this.#releaseFrees();
    }
    return undefined;
  }

  #pendingBlocks(): number {
    let n = 0;
    for (const p of this.#pendingFree) n += blocksOf(p.ext);
    return n;
  }

  /** Returns blocks never referenced by a durable record (an aborted or trimmed writer). */
  freeUnreferenced(flat: readonly number[]): void {
    for (const [s, c] of flatToExtents(flat)) this.#alloc.free(s, c);
  }

  // ---- ProxyStore ----------------------------------------------------------------------------

  knownAbsent(key: string): boolean {
    if (!this.#opened) return false;
    const e = this.#index.get(key);
    return e === undefined || e.dead;
  }

  async get(key: string): Promise<StoreHit | undefined> {
    await this.#ready;
    const e = this.#index.get(key);
    if (e === undefined || e.dead) return undefined;
    e.pins++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      e.pins--;
      if (e.pins === 0 && e.dead) this.#releaseFrees();
    };
    try {
      if (e.metaWrite !== undefined) await e.metaWrite;
      const buf = await this.#readExtents(e.ext, 0, e.metaBytes);
      if (crcOf(buf) !== e.metaCrc) throw new CorruptEntryError(key, 'metadata checksum mismatch');
      const meta = unpack(buf) as EntryMeta;
      if (meta.key !== key) throw new CorruptEntryError(key, 'metadata names another key');
      this.#policy.touch(key);
      return new RawHit(this, e, meta, release, this.#opts.prefetch);
    } catch (err) {
      release();
      if (err instanceof CorruptEntryError) this.dropCorrupt(e);
      throw err;
    }
  }

  /** A reader found damage: the entry goes, so it is never served again. */
  dropCorrupt(e: Entry): void {
    if (this.#index.get(e.key) === e) this.#removeEntry(e.key);
  }

  async put(meta: EntryMeta, opts: PutOptions = {}): Promise<StoreWriter | undefined> {
    await this.#ready;
    if (this.#closed) return undefined;
    const metaBuf = pack(meta);
    const metaReserve = Math.ceil((metaBuf.length + META_SLACK_BYTES) / 512) * 512;
    const bs = this.#geo.blockSizeBytes;
    const firstBytes = metaReserve + (opts.expectedBytes ?? INITIAL_RESERVATION_BYTES);
    if (firstBytes > this.#capacityBytes() / 2) return undefined;
    const ext = await this.allocate(Math.ceil(firstBytes / bs), MAX_EXTENTS_PER_ENTRY);
    if (ext === undefined) return undefined;
    return new RawWriter(
      this,
      meta.key,
      metaBuf,
      metaReserve,
      ext,
      this.#opts.compression && opts.compressible === true,
    );
  }

  /** Called by a writer after all its bytes are written: journal it, then make it visible. */
  async commitEntry(e: Entry): Promise<void> {
    if (e.frames.length + e.key.length + 4096 > this.#geo.journalBytes / 2) {
      this.freeUnreferenced(e.ext);
      throw new StoreFullError(`entry ${JSON.stringify(e.key)} has too many frames for the journal`);
    }
    const { seq, done } = this.#enqueue(this.#recordOf(e), () => {
      const old = this.#indexRemove(e.key);
      if (old !== undefined) {
        this.#policy.remove(old.key);
        this.#retire(old, seq);
      }
      this.#indexInsert(e);
      for (const victim of this.#policy.insert(e.key, e.blocks * this.#geo.blockSizeBytes)) {
        this.#removeEntry(victim);
      }
    });
    await done;
  }

  async updateMeta(meta: EntryMeta): Promise<boolean> {
    await this.#ready;
    const e = this.#index.get(meta.key);
    if (e === undefined || e.dead) return false;
    const buf = pack(meta);
    if (buf.length > e.metaReserve) {
      // No room to rewrite in place: drop it; the next request stores a fresh copy.
      this.#removeEntry(meta.key);
      return false;
    }
    const previous = e.metaWrite;
    const write = (async () => {
      if (previous !== undefined) await previous;
      e.metaBytes = buf.length;
      e.metaCrc = crcOf(buf);
      await this.#writeExtents(e.ext, 0, buf);
      await this.#enqueue({ t: 'meta', key: e.key, mb: e.metaBytes, mc: e.metaCrc }).done;
    })();
    e.metaWrite = write;
    try {
      await write;
    } finally {
      if (e.metaWrite === write) e.metaWrite = undefined;
    }
    return true;
  }

  async delete(key: string): Promise<boolean> {
    await this.#ready;
    return this.#removeEntry(key) !== undefined;
  }

  async deleteFamily(primaryKey: string): Promise<number> {
    await this.#ready;
    const keys = [...(this.#families.get(primaryKey) ?? [])];
    for (const k of keys) this.#removeEntry(k);
    return keys.length;
  }

  stats(): StoreStats {
    if (this.#alloc === undefined) return { entries: 0, bytes: 0, capacityBytes: this.#opts.totalBytes };
    return {
      entries: this.#index.size,
      bytes: this.#alloc.usedBlocks * this.#geo.blockSizeBytes,
      capacityBytes: this.#capacityBytes(),
    };
  }

  rawStats(): RawDiskStats {
    if (this.#alloc === undefined)
      return { totalBlocks: 0, usedBlocks: 0, freeBlocks: 0, fragmentationRate: 0, entries: 0 };
    return {
      totalBlocks: this.#geo.dataBlocks,
      usedBlocks: this.#alloc.usedBlocks,
      freeBlocks: this.#alloc.freeBlocks,
      fragmentationRate: this.#alloc.fragmentationRate(),
      entries: this.#index.size,
    };
  }

  /** Waits until every queued index change is durable and freed blocks are back in the free map. */
  async sync(): Promise<void> {
    await this.#ready;
    await this.#flushNow();
    this.#releaseFrees();
  }

  get blockSizeBytes(): number {
    return this.#geo.blockSizeBytes;
  }

  /**
   * Tests only: lets go of the device as a killed process would (no final checkpoint, pending
   * journal records are written first so the on-disk state is that of a crash after them).
   */
  async releaseForTest(): Promise<void> {
    this.#closed = true;
    if (this.#defragTimer !== undefined) clearInterval(this.#defragTimer);
    await this.#flushNow();
    await this.#fh.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#defragTimer !== undefined) clearInterval(this.#defragTimer);
    try {
      await this.#ready;
    } catch {
      return;
    }
    await this.#flushNow();
    // A checkpoint on a clean stop makes the next start read one blob instead of a journal.
    try {
      await this.#checkpoint(this.#seq + 1);
    } catch (err) {
      this.#log.warn({ err }, 'raw disk: checkpoint on close failed (the journal still holds the index)');
    }
    await this.#fh.close();
  }

  // ---- frames --------------------------------------------------------------------------------

  frameOffsets(e: Entry): Float64Array {
    if (e.frameOffsets !== undefined) return e.frameOffsets;
    const n = e.frames.length / 8;
    const offs = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) offs[i + 1] = (offs[i] as number) + e.frames.readUInt32BE(i * 8);
    e.frameOffsets = offs;
    return offs;
  }

  /**
   * Reads raw body bytes of frames [first, last] (inclusive), checks each frame's CRC and
   * inflates compressed ones. Returns the raw bytes of those frames concatenated.
   */
  async readFrames(
    e: {
      key: string;
      ext: number[];
      metaReserve: number;
      rawBytes: number;
      frames: Buffer;
      verified?: { frames: Uint8Array; atMs: number } | undefined;
    },
    offsets: Float64Array,
    first: number,
    last: number,
  ): Promise<Buffer> {
    const from = offsets[first] as number;
    const to = offsets[last + 1] as number;
    const stored = await this.#readExtents(e.ext, e.metaReserve + from, to - from);
    const parts: Buffer[] = [];
    let verified: Uint8Array | undefined;
    if ('verified' in e) {
      const now = Date.now();
      if (e.verified === undefined || now - e.verified.atMs >= VERIFIED_TTL_MS)
        e.verified = { frames: new Uint8Array(e.frames.length / 8), atMs: now };
      verified = e.verified.frames;
    }
    for (let i = first; i <= last; i++) {
      const start = (offsets[i] as number) - from;
      const len = e.frames.readUInt32BE(i * 8);
      const frame = stored.subarray(start, start + len);
      if (verified?.[i] !== 1) {
        if (crcOf(frame) !== e.frames.readUInt32BE(i * 8 + 4))
          throw new CorruptEntryError(e.key, `checksum mismatch in frame ${i}`);
        if (verified !== undefined) verified[i] = 1;
      }
      const rawLen = Math.min(FRAME_BYTES, e.rawBytes - i * FRAME_BYTES);
      if (len < rawLen) {
        const raw = await inflateRaw(frame);
        if (raw.length !== rawLen)
          throw new CorruptEntryError(
            e.key,
            `frame ${i} inflates to ${raw.length} bytes, expected ${rawLen}`,
          );
        parts.push(raw);
      } else {
        parts.push(frame);
      }
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  async writeStream(flat: readonly number[], offset: number, data: Buffer): Promise<void> {
    await this.#writeExtents(flat, offset, data);
  }

  newEntry(
    fields: Omit<
      Entry,
      'frameOffsets' | 'pins' | 'dead' | 'deadSeq' | 'freed' | 'metaWrite' | 'blocks' | 'verified'
    >,
  ): Entry {
    return {
      ...fields,
      blocks: blocksOf(fields.ext),
      frameOffsets: undefined,
      pins: 0,
      dead: false,
      deadSeq: 0,
      freed: false,
      metaWrite: undefined,
      verified: undefined,
    };
  }

  // ---- defragmentation -----------------------------------------------------------------------

  /**
   * Moves entries from the end of the data region into free holes nearer its start (and
   * entries split over several extents into one), so free space merges into large extents.
   * Bounded by `budgetBytes` per call; entries being read keep their old blocks until released.
   */
  async defragment(budgetBytes = DEFRAG_BUDGET_BYTES): Promise<{ moved: number; bytes: number }> {
    await this.#ready;
    if (this.#defragging || this.#closed) return { moved: 0, bytes: 0 };
    this.#defragging = true;
    const bs = this.#geo.blockSizeBytes;
    let moved = 0;
    let bytes = 0;
    try {
      const candidates = [...this.#index.values()]
        .filter((e) => !e.dead && e.metaWrite === undefined)
        .sort((a, b) => (b.ext[0] as number) - (a.ext[0] as number));
      const holes = this.#alloc.freeExtents().map(([s, c]) => ({ s, c }));
      for (const hole of holes) {
        if (bytes >= budgetBytes) break;
        for (let i = 0; i < candidates.length && hole.c > 0 && bytes < budgetBytes; i++) {
          const e = candidates[i] as Entry;
          if (e.blocks > hole.c || (e.ext[0] as number) <= hole.s) continue;
          if (e.dead || this.#index.get(e.key) !== e) continue;
          if (!this.#alloc.allocateAt(hole.s, e.blocks)) break;
          const target = [hole.s, e.blocks];
          hole.s += e.blocks;
          hole.c -= e.blocks;
          candidates.splice(i, 1);
          i--;
          if (await this.#move(e, target)) {
            moved++;
            bytes += e.blocks * bs;
          }
        }
      }
      // Entries still in several pieces: one contiguous extent if one is free.
      for (const e of [...this.#index.values()]) {
        if (bytes >= budgetBytes) break;
        if (e.ext.length <= 2 || e.dead) continue;
        const ext = this.#alloc.allocate(e.blocks, 1);
        if (ext === undefined) continue;
        if (await this.#move(e, extentsToFlat(ext))) {
          moved++;
          bytes += e.blocks * bs;
        }
      }
    } finally {
      this.#defragging = false;
    }
    if (moved > 0)
      this.#log.info(
        { moved, bytes, fragmentationRate: this.#alloc.fragmentationRate() },
        'raw disk defragmented',
      );
    return { moved, bytes };
  }

  /** Copies an entry to `target` (already allocated) and switches the index to it. */
  async #move(e: Entry, target: number[]): Promise<boolean> {
    e.pins++;
    try {
      const total = e.metaReserve + e.storedBytes;
      const step = 1024 * 1024;
      for (let off = 0; off < total; off += step) {
        const len = Math.min(step, total - off);
        await this.#writeExtents(target, off, await this.#readExtents(e.ext, off, len));
      }
      if (e.dead || this.#index.get(e.key) !== e || e.metaWrite !== undefined) {
        this.freeUnreferenced(target);
        return false;
      }
      const moved = this.newEntry({ ...e, ext: target, frames: e.frames });
      const { seq, done } = this.#enqueue(this.#recordOf(e, target), () => {
        if (e.dead) {
          // Deleted while the record was in flight: the delete comes later in the journal and
          // covers the new location too.
          this.#pendingFree.push({ ext: target, seq: e.deadSeq, entry: undefined });
          return;
        }
        this.#indexRemove(e.key);
        this.#indexInsert(moved);
        this.#retire(e, seq);
      });
      await done;
      return !e.dead || this.#index.get(e.key) === moved;
    } catch (err) {
      this.#log.warn({ err, key: e.key }, 'raw disk: moving an entry failed');
      return false;
    } finally {
      e.pins--;
      if (e.pins === 0 && e.dead) this.#releaseFrees();
    }
  }
}

export type RawEntry = Entry;

class RawHit implements StoreHit {
  readonly meta: EntryMeta;
  readonly bodyBytes: number;
  readonly #store: RawDiskStore;
  readonly #e: Entry;
  readonly #release: () => void;
  readonly #prefetch: boolean;

  constructor(store: RawDiskStore, e: Entry, meta: EntryMeta, release: () => void, prefetch: boolean) {
    this.#store = store;
    this.#e = e;
    this.meta = meta;
    this.bodyBytes = e.rawBytes;
    this.#release = release;
    this.#prefetch = prefetch;
  }

  read(start: number, end: number): AsyncIterable<Buffer> {
    const store = this.#store;
    const e = this.#e;
    const prefetch = this.#prefetch;
    return (async function* () {
      if (start >= end) return;
      const offsets = store.frameOffsets(e);
      const framesPerStep = Math.max(1, RAW_READ_STEP_BYTES / FRAME_BYTES);
      const lastFrame = Math.floor((end - 1) / FRAME_BYTES);
      const readStep = (first: number): Promise<Buffer> =>
        store.readFrames(e, offsets, first, Math.min(lastFrame, first + framesPerStep - 1));
      let first = Math.floor(start / FRAME_BYTES);
      let next: Promise<Buffer> | undefined = readStep(first);
      try {
        while (next !== undefined) {
          const buf: Buffer = await next;
          const stepStart = first * FRAME_BYTES;
          const stepEnd = stepStart + buf.length;
          const nextFirst = first + framesPerStep;
          // Read-ahead (enable_prefetch): the next step is on its way while this one is sent.
          next = nextFirst <= lastFrame && prefetch ? readStep(nextFirst) : undefined;
          next?.catch(() => undefined);
          const from = Math.max(start, stepStart) - stepStart;
          const to = Math.min(end, stepEnd) - stepStart;
          if (to > from) yield buf.subarray(from, to);
          first = nextFirst;
          if (next === undefined && first <= lastFrame) next = readStep(first);
        }
      } catch (err) {
        if (err instanceof CorruptEntryError) store.dropCorrupt(e);
        throw err;
      }
    })();
  }

  release(): void {
    this.#release();
  }
}

class RawWriter implements StoreWriter {
  readonly #store: RawDiskStore;
  readonly #key: string;
  readonly #metaBuf: Buffer;
  readonly #metaReserve: number;
  readonly #compress: boolean;
  #ext: number[];
  #capacityBytes: number;
  /** Stream offset of the next stored frame. */
  #streamPos: number;
  #frame = Buffer.allocUnsafe(FRAME_BYTES);
  #frameFill = 0;
  #frameTable: number[] = [];
  #rawFlushed = 0;
  #stored = 0;
  #finished = false;
  #pending: Promise<void> = Promise.resolve();

  constructor(
    store: RawDiskStore,
    key: string,
    metaBuf: Buffer,
    metaReserve: number,
    ext: number[],
    compress: boolean,
  ) {
    this.#store = store;
    this.#key = key;
    this.#metaBuf = metaBuf;
    this.#metaReserve = metaReserve;
    this.#ext = ext;
    this.#capacityBytes = blocksOf(ext) * store.blockSizeBytes;
    this.#streamPos = metaReserve;
    this.#compress = compress;
  }

  get bytesWritten(): number {
    return this.#rawFlushed + this.#frameFill;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#finished) throw new StoreFullError('raw disk writer already finished');
    const run = this.#pending.then(async () => {
      let off = 0;
      while (off < chunk.length) {
        const take = Math.min(FRAME_BYTES - this.#frameFill, chunk.length - off);
        chunk.copy(this.#frame, this.#frameFill, off, off + take);
        this.#frameFill += take;
        off += take;
        if (this.#frameFill === FRAME_BYTES) await this.#flushFrame();
      }
    });
    this.#pending = run.catch(() => undefined);
    await run;
  }

  async #flushFrame(): Promise<void> {
    if (this.#frameFill === 0) return;
    const raw = this.#frame.subarray(0, this.#frameFill);
    let stored: Buffer = raw;
    if (this.#compress) {
      const z = await deflateRaw(raw, { level: zlibConstants.Z_BEST_SPEED });
      if (z.length < raw.length * (1 - MIN_COMPRESSION_GAIN)) stored = z;
    }
    await this.#ensureCapacity(this.#streamPos + stored.length);
    await this.#store.writeStream(this.#ext, this.#streamPos, stored);
    this.#frameTable.push(stored.length, crcOf(stored));
    this.#streamPos += stored.length;
    this.#stored += stored.length;
    this.#rawFlushed += raw.length;
    // A fresh buffer: the old one may still be referenced by a compression job or a reader.
    this.#frame = Buffer.allocUnsafe(FRAME_BYTES);
    this.#frameFill = 0;
  }

  async #ensureCapacity(bytes: number): Promise<void> {
    if (bytes <= this.#capacityBytes) return;
    const bs = this.#store.blockSizeBytes;
    const grow = Math.min(MAX_GROWTH_BYTES, Math.max(bytes - this.#capacityBytes, this.#capacityBytes));
    const wantBlocks = Math.ceil(grow / bs);
    const extentsLeft = MAX_EXTENTS_PER_ENTRY - this.#ext.length / 2;
    if (extentsLeft <= 0)
      throw new StoreFullError(`entry ${JSON.stringify(this.#key)} is split into too many extents`);
    const more = await this.#store.allocate(wantBlocks, extentsLeft);
    if (more === undefined)
      throw new StoreFullError(`no room for ${grow} more bytes of ${JSON.stringify(this.#key)}`);
    // Extend in place when the new extent continues the last one.
    const lastStart = this.#ext[this.#ext.length - 2] as number;
    const lastCount = this.#ext[this.#ext.length - 1] as number;
    if (more[0] === lastStart + lastCount) {
      this.#ext[this.#ext.length - 1] = lastCount + (more[1] as number);
      this.#ext.push(...more.slice(2));
    } else {
      this.#ext.push(...more);
    }
    this.#capacityBytes = blocksOf(this.#ext) * bs;
  }

  #tableBuffer(): Buffer {
    const buf = Buffer.allocUnsafe(this.#frameTable.length * 4);
    this.#frameTable.forEach((v, i) => buf.writeUInt32BE(v >>> 0, i * 4));
    return buf;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    await this.#pending;
    const end = Math.min(offset + length, this.bytesWritten);
    if (offset >= end) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    if (offset < this.#rawFlushed) {
      const frames = this.#tableBuffer();
      const view = {
        key: this.#key,
        ext: this.#ext,
        metaReserve: this.#metaReserve,
        rawBytes: this.#rawFlushed,
        frames,
      };
      const n = frames.length / 8;
      const offs = new Float64Array(n + 1);
      for (let i = 0; i < n; i++) offs[i + 1] = (offs[i] as number) + frames.readUInt32BE(i * 8);
      const first = Math.floor(offset / FRAME_BYTES);
      const last = Math.floor((Math.min(end, this.#rawFlushed) - 1) / FRAME_BYTES);
      const raw = await this.#store.readFrames(view, offs, first, last);
      const base = first * FRAME_BYTES;
      parts.push(raw.subarray(offset - base, Math.min(end, this.#rawFlushed) - base));
    }
    if (end > this.#rawFlushed) {
      const from = Math.max(offset, this.#rawFlushed) - this.#rawFlushed;
      parts.push(Buffer.from(this.#frame.subarray(from, end - this.#rawFlushed)));
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  async commit(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.#pending;
    try {
      await this.#flushFrame();
      await this.#store.writeStream(this.#ext, 0, this.#metaBuf);
    } catch (err) {
      this.#store.freeUnreferenced(this.#ext);
      throw err;
    }
    // Give back the blocks reserved beyond what was written.
    const bs = this.#store.blockSizeBytes;
    const usedBlocks = Math.ceil(this.#streamPos / bs);
    const kept: number[] = [];
    const spare: number[] = [];
    let need = usedBlocks;
    for (let i = 0; i + 1 < this.#ext.length; i += 2) {
      const s = this.#ext[i] as number;
      const c = this.#ext[i + 1] as number;
      const k = Math.min(c, need);
      if (k > 0) kept.push(s, k);
      if (c > k) spare.push(s + k, c - k);
      need -= k;
    }
    this.#store.freeUnreferenced(spare);
    this.#ext = kept;
    const entry = this.#store.newEntry({
      key: this.#key,
      ext: kept,
      metaBytes: this.#metaBuf.length,
      metaReserve: this.#metaReserve,
      metaCrc: crcOf(this.#metaBuf),
      rawBytes: this.#rawFlushed,
      storedBytes: this.#stored,
      frames: this.#tableBuffer(),
      at: Date.now(),
    });
    await this.#store.commitEntry(entry);
  }

  async abort(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.#pending;
    this.#store.freeUnreferenced(this.#ext);
    this.#ext = [];
  }
}
