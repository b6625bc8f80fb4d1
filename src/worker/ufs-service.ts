/**
 * The worker's UFS calls (protocol/ufs-worker-calls.ts): read-through of blocks of UFS-backed
 * files, load tasks of load jobs, and persisting a file to its UFS. Read-through and loads go
 * through one fill coordinator, so a block is fetched from the UFS once however many readers and
 * load tasks want it at the same time.
 */
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { FsError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { Counter, Gauge } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { WorkerAddress } from '../protocol/types.js';
import type { PersistBlock, UfsBlockSource, UfsValidatorWire } from '../protocol/ufs-types.js';
import { FollowFill, LoadBlock, PersistFile, ReadThrough } from '../protocol/ufs-worker-calls.js';
import type { FollowFillAnswer } from '../protocol/ufs-worker-calls.js';
import type { CallContext, StreamSink } from '../rpc/api.js';
import type { BlockStore } from './block-store.js';
import type { BlockWriter } from './block-writer.js';
import { FreshBuffers } from './buffer-pool.js';
import type { CallRegistry, DataServer } from './data-server.js';
import { badRequest } from './errors.js';
import type { PeerReader } from './replicator.js';
import { FillCoordinator } from './ufs-fill.js';
import type { WorkerMounts } from './ufs-mounts.js';

/** Zeros for holes in a persisted file, shared and never written. */
const ZERO_CHUNK_BYTES = 1024 * 1024;
/** Bytes a persist buffers between reading blocks and the UFS upload. */
const PERSIST_BUFFER_BYTES = 8 * 1024 * 1024;

type ReadFrom = 'cache' | 'ufs' | 'fill';

export interface WorkerUfsOptions {
  workerId: string;
  store: BlockStore;
  dataServer: DataServer;
  mounts: WorkerMounts;
  peers: PeerReader;
  maxConcurrentFills: number;
  registry?: Registry;
  log: Logger;
}

class UfsMetrics {
  readonly reads: Counter<'from'>;
  readonly readBytes: Counter<'from'>;
  readonly fills: Counter<'result'>;
  readonly persisted: Counter<'result'>;

  constructor(registry: Registry | undefined, activeFills: () => number) {
    const registers = registry === undefined ? [] : [registry];
    this.reads = new Counter({
      name: 'strata_worker_ufs_reads_total',
      help: 'Read-through calls by where the bytes came from: cache (stored here), ufs (this read fetched them), fill (joined a fetch in progress)',
      labelNames: ['from'],
      registers,
    });
    this.readBytes = new Counter({
      name: 'strata_worker_ufs_read_bytes_total',
      help: 'Bytes served by read-through calls, by where they came from',
      labelNames: ['from'],
      registers,
    });
    this.fills = new Counter({
      name: 'strata_worker_ufs_fills_total',
      help: 'Blocks fetched from a UFS into the store, by result',
      labelNames: ['result'],
      registers,
    });
    this.persisted = new Counter({
      name: 'strata_worker_ufs_persists_total',
      help: 'Files written to a UFS, by result',
      labelNames: ['result'],
      registers,
    });
    new Gauge({
      name: 'strata_worker_ufs_fills_active',
      help: 'Blocks being fetched from a UFS now',
      registers,
      collect() {
        this.set(activeFills());
      },
    });
  }
}

export class WorkerUfs {
  readonly fills: FillCoordinator<BlockWriter>;
  readonly #o: WorkerUfsOptions;
  readonly #metrics: UfsMetrics;

  constructor(opts: WorkerUfsOptions) {
    this.#o = opts;
    this.fills = new FillCoordinator<BlockWriter>({
      store: opts.store,
      ufsFor: (mountId, signal) => opts.mounts.ufs(mountId, signal),
      maxConcurrentFills: opts.maxConcurrentFills,
      log: opts.log.child({ component: 'worker.ufs' }),
      onFilled: () => this.#metrics.fills.inc({ result: 'ok' }),
    });
    this.#metrics = new UfsMetrics(opts.registry, () => this.fills.active);
  }

  register(server: CallRegistry): void {
    server.handle(ReadThrough, (req, ctx, out) => this.readThrough(req, ctx, out));
    server.handle(FollowFill, (req, ctx) => this.followFill(req, ctx));
    server.handle(LoadBlock, (req, ctx) => this.loadBlock(req, ctx));
    server.handle(PersistFile, (req, ctx) => this.persistFile(req, ctx));
  }

  stop(): void {
    this.fills.stop();
  }

  async readThrough(
    req: { blockId: number; offset?: number; length?: number; source: UfsBlockSource },
    ctx: Pick<CallContext, 'signal'>,
    out: Pick<StreamSink, 'write'>,
  ): Promise<{ bytes: number; from: ReadFrom }> {
    const blockLength = req.source.length;
    const offset = req.offset ?? 0;
    const length = req.length ?? blockLength - offset;
    if (offset < 0 || length < 0 || offset + length > blockLength) {
      throw badRequest(
        `read of block ${req.blockId} at ${offset}+${length} is outside its ${blockLength} bytes`,
        {
          blockId: req.blockId,
        },
      );
    }
    const fromStore = async (): Promise<{ bytes: number; from: ReadFrom }> => {
      const r = await this.#o.dataServer.readBlock({ blockId: req.blockId, offset, length }, ctx, out);
      return this.#served('cache', r.bytes);
    };
    if (this.#o.store.has(req.blockId) && !this.fills.isFilling(req.blockId)) return fromStore();
    if (!req.source.cache) return this.#direct(req.source, offset, length, ctx, out);
    try {
      const how = await this.fills.read(
        req.blockId,
        req.source,
        offset,
        length,
        (chunk) => out.write(chunk),
        ctx.signal,
      );
      if (how === 'store') return fromStore();
      return this.#served(how, length);
    } catch (err) {
      if (!ctx.signal.aborted) this.#metrics.fills.inc({ result: 'error' });
      throw err;
    }
  }

  /** See FollowFill: a local reader's wait for the staging file of a fill to hold `waitBytes`. */
  async followFill(
    req: { blockId: number; waitBytes: number; source: UfsBlockSource },
    ctx: Pick<CallContext, 'signal'>,
  ): Promise<FollowFillAnswer> {
    if (!req.source.cache)
      throw badRequest(`block ${req.blockId}: a mount without auto-cache has no fill to follow`);
    try {
      return await this.fills.progress(req.blockId, req.source, req.waitBytes, ctx.signal);
    } catch (err) {
      if (!ctx.signal.aborted) this.#metrics.fills.inc({ result: 'error' });
      throw err;
    }
  }

  #served(from: ReadFrom, bytes: number): { bytes: number; from: ReadFrom } {
    this.#metrics.reads.inc({ from });
    this.#metrics.readBytes.inc({ from }, bytes);
    return { bytes, from };
  }

  /** auto-cache off: the range is streamed from the UFS and not kept. */
  async #direct(
    source: UfsBlockSource,
    offset: number,
    length: number,
    ctx: Pick<CallContext, 'signal'>,
    out: Pick<StreamSink, 'write'>,
  ): Promise<{ bytes: number; from: ReadFrom }> {
    const ufs = await this.#o.mounts.ufs(source.mountId, ctx.signal);
    const r = await ufs.openRead(source.ufsPath, {
      offset: source.objectOffset + offset,
      length,
      validator: {
        size: source.validator.size,
        mtimeMs: source.validator.mtimeMs,
        ...(source.validator.etag === undefined ? {} : { etag: source.validator.etag }),
      },
      signal: ctx.signal,
    });
    if (r.length !== length) {
      r.body.destroy();
      throw new FsError(
        'ESTALE',
        `${ufs.describe()}${source.ufsPath}: the object is shorter than its cached metadata says`,
      );
    }
    let sent = 0;
    for await (const chunk of r.body) {
      await out.write(chunk as Buffer);
      sent += (chunk as Buffer).length;
    }
    return this.#served('ufs', sent);
  }

  async loadBlock(
    req: { blockId: number; source: UfsBlockSource },
    ctx: Pick<CallContext, 'signal'>,
  ): Promise<{ loaded: boolean; bytes: number }> {
    const loaded = await this.fills.load(req.blockId, req.source, ctx.signal);
    return { loaded, bytes: loaded ? req.source.length : 0 };
  }

  async persistFile(
    req: { mountId: number; ufsPath: string; blocks: PersistBlock[]; length: number },
    ctx: Pick<CallContext, 'signal'>,
  ): Promise<UfsValidatorWire> {
    const sum = req.blocks.reduce((a, b) => a + b.length, 0);
    if (sum !== req.length)
      throw badRequest(`blocks add up to ${sum} bytes, not the file length ${req.length}`);
    const ufs = await this.#o.mounts.ufs(req.mountId, ctx.signal);
    try {
      const st = await ufs.write(req.ufsPath, this.#fileBytes(req.blocks, ctx.signal), {
        sizeHint: req.length,
        signal: ctx.signal,
      });
      if (st.size !== req.length) {
        throw new FsError(
          'EIO',
          `${ufs.describe()}${req.ufsPath}: wrote ${st.size} bytes, expected ${req.length}`,
        );
      }
      this.#metrics.persisted.inc({ result: 'ok' });
      return { size: st.size, mtimeMs: st.mtimeMs, ...(st.etag === undefined ? {} : { etag: st.etag }) };
    } catch (err) {
      this.#metrics.persisted.inc({ result: 'error' });
      throw err;
    }
  }

  /** The file's bytes in order: blocks from this store or from peers, holes as zeros. */
  async *#fileBytes(blocks: readonly PersistBlock[], signal: AbortSignal): AsyncGenerator<Buffer> {
    for (const b of blocks) {
      if (b.length === 0) continue;
      if (b.blockId === 0) {
        yield* zeros(b.length);
      } else if (this.#o.store.has(b.blockId)) {
        yield* this.#localBlock(b.blockId, b.length, signal);
      } else {
        yield* this.#peerBlock(b, signal);
      }
    }
  }

  async *#localBlock(blockId: number, length: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    const reader = await this.#o.store.openReader(blockId);
    const pipe = new PassThrough({ highWaterMark: PERSIST_BUFFER_BYTES });
    // Fresh buffers: the upload may hold a slice after the sink returned.
    const fresh = new FreshBuffers(this.#o.store.pool.bufferSizeBytes);
    const done = reader
      .read(
        0,
        length,
        async (slice) => {
          if (!pipe.write(slice)) await once(pipe, 'drain', { signal });
        },
        signal,
        fresh,
      )
      .then(
        () => pipe.end(),
        (err: unknown) => pipe.destroy(err instanceof Error ? err : new Error(String(err))),
      )
      .finally(() => reader.close());
    try {
      for await (const chunk of pipe) yield chunk as Buffer;
    } finally {
      pipe.destroy();
      await done;
    }
  }

  async *#peerBlock(b: PersistBlock, signal: AbortSignal): AsyncGenerator<Buffer> {
    const others = b.workers.filter((w) => w.workerId !== this.#o.workerId);
    let lastErr: unknown;
    for (const w of others) {
      let sent = 0;
      try {
        yield* this.#readPeer(w, b, signal, (n) => (sent += n));
        return;
      } catch (err) {
        // Bytes already went into the upload: another copy cannot continue it.
        if (sent > 0) throw err;
        lastErr = err;
      }
    }
    throw new FsError(
      'EIO',
      `block ${b.blockId}: no copy could be read (${others.length} worker(s) tried)${lastErr instanceof Error ? `: ${lastErr.message}` : ''}`,
    );
  }

  async *#readPeer(
    w: WorkerAddress,
    b: PersistBlock,
    signal: AbortSignal,
    progress: (n: number) => void,
  ): AsyncGenerator<Buffer> {
    const call = this.#o.peers.readBlock(w, b.blockId, signal);
    let got = 0;
    let ended = false;
    try {
      // Read to the stream's end (a stored block may be longer than its length in the file after
      // a truncate): the call then finishes cleanly instead of being cancelled.
      for await (const chunk of call) {
        const take = Math.min(chunk.length, b.length - got);
        if (take <= 0) continue;
        got += take;
        progress(take);
        yield take === chunk.length ? chunk : chunk.subarray(0, take);
      }
      ended = true;
    } finally {
      if (!ended) call.cancel('persist stopped');
    }
    await call.result;
    if (got < b.length)
      throw new FsError(
        'EIO',
        `block ${b.blockId}: ${got} of ${b.length} bytes from ${w.hostname}:${w.rpcPort}`,
      );
  }
}

async function* zeros(n: number): AsyncGenerator<Buffer> {
  const z = Buffer.alloc(Math.min(n, ZERO_CHUNK_BYTES));
  for (let left = n; left > 0; left -= z.length) yield left >= z.length ? z : z.subarray(0, left);
}
