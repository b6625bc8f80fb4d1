/**
 * L2 `file`: one body file and one metadata file per entry under `l2_cache_dir`.
 *
 *   objects/<h[0:2]>/<h>.meta          magic, length, CRC, msgpack {meta, gen, bodyBytes, frame CRCs}
 *   objects/<h[0:2]>/<h>.<gen>.body    the body bytes
 *   tmp/                               bodies being written (emptied on start)
 *
 * h = sha256(key). Publishing is atomic: the body is written under tmp/, synced, renamed into
 * place under a fresh generation name, and only then does the metadata file (written to tmp/ and
 * renamed) point at it. A crash at any point leaves either the old entry or the new one, never a
 * mix; leftovers are removed when the index is rebuilt on start. Lookups go straight to the
 * metadata file, so the store serves while the start-up scan is still running.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import type { Logger } from '../../common/logging.js';
import { familyOf } from '../cache-key.js';
import { CorruptEntryError, StoreFullError } from '../errors.js';
import { READ_BUFFER_BYTES, readBuffers } from './buffer-pool.js';
import { FRAME_BYTES, FrameHasher, VerifiedFrames, crcOf, frameCount, frameCrc } from './frames.js';
import { S3FifoPolicy } from './s3fifo.js';
import type { EntryMeta, ProxyStore, PutOptions, StoreHit, StoreStats, StoreWriter } from './types.js';

const META_MAGIC = 0x5350584d; // "SPXM"
const META_VERSION = 1;
const META_HEADER_BYTES = 16;
/**
 * Bytes read from a body file per step of a hit: whole frames (verified one by one) into one
 * pooled buffer, so a large hit costs one pread and one socket write per step.
 */
export const FILE_READ_STEP_BYTES = READ_BUFFER_BYTES;
if (FILE_READ_STEP_BYTES % FRAME_BYTES !== 0) throw new Error('read step must be whole frames');
/** Metadata file size counted against capacity besides the body. */
const META_OVERHEAD_BYTES = 4096;

interface IndexEntry {
  gen: string;
  bodyBytes: number;
}

interface MetaRecord {
  meta: EntryMeta;
  gen: string;
  bodyBytes: number;
  frames: Buffer;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function encodeMetaFile(rec: MetaRecord): Buffer {
  const payload = pack(rec);
  const head = Buffer.alloc(META_HEADER_BYTES);
  head.writeUInt32BE(META_MAGIC, 0);
  head.writeUInt8(META_VERSION, 4);
  head.writeUInt32BE(payload.length, 8);
  head.writeUInt32BE(crcOf(payload), 12);
  return Buffer.concat([head, payload]);
}

export function decodeMetaFile(buf: Buffer, key: string): MetaRecord {
  if (buf.length < META_HEADER_BYTES || buf.readUInt32BE(0) !== META_MAGIC)
    throw new CorruptEntryError(key, 'metadata file has no valid header');
  if (buf.readUInt8(4) !== META_VERSION) throw new CorruptEntryError(key, 'metadata file version unknown');
  const len = buf.readUInt32BE(8);
  const payload = buf.subarray(META_HEADER_BYTES);
  if (payload.length !== len) throw new CorruptEntryError(key, 'metadata file truncated');
  if (crcOf(payload) !== buf.readUInt32BE(12)) throw new CorruptEntryError(key, 'metadata checksum mismatch');
  const rec = unpack(payload) as MetaRecord;
  if (typeof rec.gen !== 'string' || typeof rec.bodyBytes !== 'number' || rec.meta === undefined)
    throw new CorruptEntryError(key, 'metadata record incomplete');
  rec.frames = Buffer.from(rec.frames);
  if (rec.frames.length !== frameCount(rec.bodyBytes) * 4)
    throw new CorruptEntryError(key, 'frame table does not match the body length');
  return rec;
}

export interface FileStoreOptions {
  dir: string;
  capacityBytes: number;
  log: Logger;
}

export class FileStore implements ProxyStore {
  readonly kind = 'file';
  readonly #dir: string;
  readonly #objects: string;
  readonly #tmp: string;
  readonly #log: Logger;
  readonly #index = new Map<string, IndexEntry>();
  readonly #families = new Map<string, Set<string>>();
  readonly #policy: S3FifoPolicy<string>;
  readonly #madeDirs = new Set<string>();
  /** Body file names published while the start-up scan runs, which it must not take for orphans. */
  readonly #publishedSinceStart = new Set<string>();
  #scanning = true;
  /** Directories made: the store can serve (lookups go straight to metadata files). */
  #ready: Promise<void>;
  readonly #verified = new VerifiedFrames();
  /** The index rebuild finished (capacity accounting and purge by family are complete). */
  #scanned: Promise<void>;
  #closed = false;

  constructor(opts: FileStoreOptions) {
    this.#dir = opts.dir;
    this.#objects = join(opts.dir, 'objects');
    this.#tmp = join(opts.dir, 'tmp');
    this.#log = opts.log;
    this.#policy = new S3FifoPolicy<string>(opts.capacityBytes);
    this.#ready = this.#makeDirs();
    this.#scanned = this.#ready.then(() => this.#scan());
    // Callers await these; keep an early failure from being an unhandled rejection.
    this.#ready.catch(() => undefined);
    this.#scanned.catch((err: unknown) =>
      this.#log.error({ err, dir: this.#dir }, 'file cache index rebuild failed'),
    );
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  resize(capacityBytes: number): void {
    for (const k of this.#policy.resize(capacityBytes)) void this.#remove(k);
  }

  async #makeDirs(): Promise<void> {
    await mkdir(this.#objects, { recursive: true });
    await rm(this.#tmp, { recursive: true, force: true });
    await mkdir(this.#tmp, { recursive: true });
  }

  async #scan(): Promise<void> {
    try {
      await this.#rebuildIndex();
    } finally {
      this.#scanning = false;
      this.#publishedSinceStart.clear();
    }
  }

  /** Reads every metadata file; drops damaged entries and bodies no metadata points at. */
  async #rebuildIndex(): Promise<void> {
    let dropped = 0;
    let orphans = 0;
    const t0 = Date.now();
    for (const sub of await readdir(this.#objects)) {
      const subDir = join(this.#objects, sub);
      let names: string[];
      try {
        names = await readdir(subDir);
      } catch {
        continue;
      }
      this.#madeDirs.add(subDir);
      const wanted = new Set<string>();
      for (const name of names) {
        if (!name.endsWith('.meta')) continue;
        const h = name.slice(0, -5);
        try {
          const buf = await readFile(join(subDir, name));
          const rec = decodeMetaFile(buf, h);
          if (hashKey(rec.meta.key) !== h) throw new CorruptEntryError(h, 'key does not match its file name');
          const st = await stat(join(subDir, `${h}.${rec.gen}.body`));
          if (st.size !== rec.bodyBytes) throw new CorruptEntryError(rec.meta.key, 'body length differs');
          wanted.add(`${h}.${rec.gen}.body`);
          if (!this.#index.has(rec.meta.key)) this.#track(rec.meta.key, rec.gen, rec.bodyBytes);
        } catch {
          dropped++;
          await unlink(join(subDir, name)).catch(() => undefined);
        }
      }
      for (const name of names) {
        // A body published after the scan started is not in `wanted` but is live: keep it.
        if (name.endsWith('.body') && !wanted.has(name) && !this.#publishedSinceStart.has(name)) {
          orphans++;
          await unlink(join(subDir, name)).catch(() => undefined);
        }
      }
    }
    this.#log.info(
      { entries: this.#index.size, dropped, orphans, ms: Date.now() - t0, dir: this.#dir },
      'file cache index rebuilt',
    );
  }

  #paths(key: string): { h: string; sub: string; meta: string; body: (gen: string) => string } {
    const h = hashKey(key);
    const sub = join(this.#objects, h.slice(0, 2));
    return { h, sub, meta: join(sub, `${h}.meta`), body: (gen) => join(sub, `${h}.${gen}.body`) };
  }

  #track(key: string, gen: string, bodyBytes: number): void {
    this.#index.set(key, { gen, bodyBytes });
    const fam = familyOf(key);
    let set = this.#families.get(fam);
    if (set === undefined) this.#families.set(fam, (set = new Set()));
    set.add(key);
    for (const victim of this.#policy.insert(key, bodyBytes + META_OVERHEAD_BYTES)) {
      void this.#remove(victim).catch((err: unknown) =>
        this.#log.warn({ err, key: victim }, 'file cache eviction failed'),
      );
    }
  }

  #untrack(key: string): IndexEntry | undefined {
    const e = this.#index.get(key);
    this.#index.delete(key);
    this.#policy.remove(key);
    const fam = familyOf(key);
    const set = this.#families.get(fam);
    if (set !== undefined) {
      set.delete(key);
      if (set.size === 0) this.#families.delete(fam);
    }
    return e;
  }

  async #readMeta(key: string): Promise<MetaRecord | undefined> {
    const p = this.#paths(key);
    let buf: Buffer;
    try {
      buf = await readFile(p.meta);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const rec = decodeMetaFile(buf, key);
    if (rec.meta.key !== key) return undefined; // a sha256 collision: treat as absent
    return rec;
  }

  knownAbsent(key: string): boolean {
    // While the index is being rebuilt it does not know every entry yet.
    return !this.#scanning && !this.#index.has(key);
  }

  async get(key: string): Promise<StoreHit | undefined> {
    await this.#ready;
    // Once the index is complete it knows every entry: a miss costs no disk operation (which
    // would queue behind bulk writes in the I/O thread pool and delay the origin request).
    if (!this.#scanning && !this.#index.has(key)) return undefined;
    let rec: MetaRecord | undefined;
    try {
      rec = await this.#readMeta(key);
    } catch (err) {
      if (err instanceof CorruptEntryError) await this.#remove(key);
      throw err;
    }
    if (rec === undefined) return undefined;
    const p = this.#paths(key);
    let fh: FileHandle;
    try {
      fh = await open(p.body(rec.gen), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // Replaced or evicted between the two reads: a miss, not an error.
        return undefined;
      }
      throw err;
    }
    const st = await fh.stat();
    if (st.size !== rec.bodyBytes) {
      await fh.close();
      await this.#remove(key);
      throw new CorruptEntryError(key, `body file holds ${st.size} bytes, expected ${rec.bodyBytes}`);
    }
    if (!this.#index.has(key)) this.#track(key, rec.gen, rec.bodyBytes);
    this.#policy.touch(key);
    // A body rewritten behind our back changes ctime, so it is checked afresh.
    const identity = `${st.ino}:${st.size}:${st.ctimeMs}`;
    const verified = this.#verified.for(identity, frameCount(rec.bodyBytes));
    return new FileHit(rec, fh, verified, () => {
      this.#verified.forget(identity);
      void this.#remove(key);
    });
  }

  async put(meta: EntryMeta, opts: PutOptions = {}): Promise<StoreWriter | undefined> {
    await this.#ready;
    if (this.#closed) return undefined;
    if (
      opts.expectedBytes !== undefined &&
      opts.expectedBytes + META_OVERHEAD_BYTES > this.#policy.capacityBytes
    )
      return undefined;
    const gen = `${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
    const p = this.#paths(meta.key);
    const tmpPath = join(this.#tmp, `${p.h}.${gen}.part`);
    // Read-write: followers of the fill read back what was written.
    const fh = await open(tmpPath, 'w+');
    return new FileWriter(this, meta, gen, tmpPath, fh, this.#policy.capacityBytes);
  }

  /** Called by a writer: moves its body into place, then points the metadata at it. */
  async publish(
    meta: EntryMeta,
    gen: string,
    tmpPath: string,
    bodyBytes: number,
    frames: Buffer,
  ): Promise<void> {
    const p = this.#paths(meta.key);
    if (!this.#madeDirs.has(p.sub)) {
      await mkdir(p.sub, { recursive: true });
      this.#madeDirs.add(p.sub);
    }
    if (this.#scanning) this.#publishedSinceStart.add(`${p.h}.${gen}.body`);
    await rename(tmpPath, p.body(gen));
    await this.#writeMeta(p.meta, { meta, gen, bodyBytes, frames });
    const previous = this.#index.get(meta.key);
    this.#untrack(meta.key);
    this.#track(meta.key, gen, bodyBytes);
    if (previous !== undefined && previous.gen !== gen)
      await unlink(p.body(previous.gen)).catch(() => undefined);
  }

  async #writeMeta(path: string, rec: MetaRecord): Promise<void> {
    const tmp = join(this.#tmp, `${randomBytes(8).toString('hex')}.meta`);
    await writeFile(tmp, encodeMetaFile(rec));
    await rename(tmp, path);
  }

  async updateMeta(meta: EntryMeta): Promise<boolean> {
    const rec = await this.#readMeta(meta.key);
    if (rec === undefined) return false;
    await this.#writeMeta(this.#paths(meta.key).meta, { ...rec, meta });
    return true;
  }

  async delete(key: string): Promise<boolean> {
    return this.#remove(key);
  }

  async #remove(key: string): Promise<boolean> {
    const p = this.#paths(key);
    const e = this.#untrack(key);
    let gen = e?.gen;
    if (gen === undefined) {
      try {
        gen = (await this.#readMeta(key))?.gen;
      } catch {
        // damaged metadata: removing the file below is all we can do
      }
    }
    let removed = false;
    try {
      await unlink(p.meta);
      removed = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (gen !== undefined) await unlink(p.body(gen)).catch(() => undefined);
    return removed || e !== undefined;
  }

  async deleteFamily(primaryKey: string): Promise<number> {
    await this.#scanned.catch(() => undefined);
    const keys = new Set(this.#families.get(primaryKey) ?? []);
    keys.add(primaryKey);
    let n = 0;
    for (const k of keys) if (await this.#remove(k)) n++;
    return n;
  }

  stats(): StoreStats {
    return {
      entries: this.#index.size,
      bytes: this.#policy.bytes,
      capacityBytes: this.#policy.capacityBytes,
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#scanned.catch(() => undefined);
  }
}

class FileHit implements StoreHit {
  readonly meta: EntryMeta;
  readonly bodyBytes: number;
  readonly #frames: Buffer;
  readonly #fh: FileHandle;
  readonly #verified: Uint8Array;
  readonly #onCorrupt: () => void;
  #released = false;

  constructor(rec: MetaRecord, fh: FileHandle, verified: Uint8Array, onCorrupt: () => void) {
    this.meta = rec.meta;
    this.bodyBytes = rec.bodyBytes;
    this.#frames = rec.frames;
    this.#fh = fh;
    this.#verified = verified;
    this.#onCorrupt = onCorrupt;
  }

  read(start: number, end: number): AsyncIterable<Buffer> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return (async function* () {
      if (start >= end) return;
      let pos = Math.floor(start / FRAME_BYTES) * FRAME_BYTES;
      const readStep = (at: number): Promise<Buffer> =>
        self.#readVerified(at, Math.min(FILE_READ_STEP_BYTES, end - at));
      // Read-ahead: the next step is in flight while the current one is being sent.
      let next: Promise<Buffer> | undefined = readStep(pos);
      try {
        while (next !== undefined) {
          const buf: Buffer = await next;
          const stepEnd: number = pos + buf.length;
          next = stepEnd < end ? readStep(stepEnd) : undefined;
          next?.catch(() => undefined);
          const from = Math.max(start, pos) - pos;
          const to = Math.min(end, stepEnd) - pos;
          pos = stepEnd;
          // Each yielded chunk is a view of one pooled buffer and the only one handed out.
          if (to > from) yield from === 0 && to === buf.length ? buf : buf.subarray(from, to);
        }
      } finally {
        // The consumer stopped early: the read-ahead buffer was never handed out.
        void next?.then((b) => readBuffers.recycle(b)).catch(() => undefined);
      }
    })();
  }

  /**
   * Reads whole frames starting at `at` (a frame boundary) into a pooled buffer and checks the
   * CRC of each frame not verified before. The caller owns the returned buffer (see
   * buffer-pool.ts: the response pump recycles it once the socket is done with it).
   */
  async #readVerified(at: number, wantBytes: number): Promise<Buffer> {
    const frames = Math.max(1, Math.ceil(wantBytes / FRAME_BYTES));
    const len = Math.min(frames * FRAME_BYTES, this.bodyBytes - at, FILE_READ_STEP_BYTES);
    const buf = readBuffers.take().subarray(0, len);
    let got = 0;
    try {
      while (got < len) {
        const { bytesRead } = await this.#fh.read(buf, got, len - got, at + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
    } catch (err) {
      readBuffers.recycle(buf);
      throw err;
    }
    if (got !== len) {
      readBuffers.recycle(buf);
      this.#onCorrupt();
      throw new CorruptEntryError(this.meta.key, `body file is short at offset ${at + got}`);
    }
    for (let off = 0; off < len; off += FRAME_BYTES) {
      const idx = (at + off) / FRAME_BYTES;
      if (this.#verified[idx] === 1) continue;
      const frame = buf.subarray(off, Math.min(off + FRAME_BYTES, len));
      if (crcOf(frame) !== frameCrc(this.#frames, idx)) {
        readBuffers.recycle(buf);
        this.#onCorrupt();
        throw new CorruptEntryError(this.meta.key, `checksum mismatch in frame ${idx}`);
      }
      this.#verified[idx] = 1;
    }
    return buf;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    void this.#fh.close().catch(() => undefined);
  }
}

class FileWriter implements StoreWriter {
  readonly #store: FileStore;
  readonly #meta: EntryMeta;
  readonly #gen: string;
  readonly #tmpPath: string;
  readonly #fh: FileHandle;
  readonly #limitBytes: number;
  readonly #hasher = new FrameHasher();
  #bytes = 0;
  #finished = false;
  #disposed = false;

  constructor(
    store: FileStore,
    meta: EntryMeta,
    gen: string,
    tmpPath: string,
    fh: FileHandle,
    limitBytes: number,
  ) {
    this.#store = store;
    this.#meta = meta;
    this.#gen = gen;
    this.#tmpPath = tmpPath;
    this.#fh = fh;
    this.#limitBytes = limitBytes;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#finished) throw new StoreFullError('file writer already finished');
    if (this.#bytes + chunk.length > this.#limitBytes)
      throw new StoreFullError(`object exceeds l2_cache_max_size_bytes (${this.#limitBytes})`);
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.#fh.write(chunk, off, chunk.length - off, this.#bytes + off);
      off += bytesWritten;
    }
    this.#hasher.push(chunk);
    this.#bytes += chunk.length;
  }

  async readAt(offset: number, length: number): Promise<Buffer> {
    const len = Math.max(0, Math.min(length, this.#bytes - offset));
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.#fh.read(buf, got, len - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === len ? buf : buf.subarray(0, got);
  }

  async commit(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    try {
      // The body must be durable before any metadata points at it. The handle stays open (the
      // rename does not affect it) so readers behind the fill can go on until dispose().
      await this.#fh.datasync();
      await this.#store.publish(this.#meta, this.#gen, this.#tmpPath, this.#bytes, this.#hasher.finish());
    } catch (err) {
      this.dispose();
      await unlink(this.#tmpPath).catch(() => undefined);
      throw err;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    void this.#fh.close().catch(() => undefined);
  }

  async abort(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.dispose();
    await unlink(this.#tmpPath).catch(() => undefined);
  }
}
