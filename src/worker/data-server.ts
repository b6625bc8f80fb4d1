/**
 * The worker's RPC face (protocol/worker-calls.ts): streamed block reads and writes, the
 * short-circuit handshake, block info. Handlers only translate between the wire and the store;
 * every rule (placement, checksums, space, tiering) lives in the store and the evictor.
 */
import type { Logger } from '../common/logging.js';
import { WorkerCalls } from '../protocol/index.js';
import type {
  CallContext,
  ReadStreamCall,
  ReadStreamHandler,
  StreamInput,
  StreamSink,
  UnaryCall,
  UnaryHandler,
  WriteStreamCall,
  WriteStreamHandler,
} from '../rpc/api.js';
import type { BlockStore } from './block-store.js';
import { rpcLimits } from '../rpc/index.js';
import { DeferredReleasePool, READ_WINDOW_BYTES } from './buffer-pool.js';
import { badRequest, StoppingError } from './errors.js';
import type { Evictor } from './eviction.js';
import type { LocalWrites } from './local-write.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** Where handlers are registered: the RPC server (structurally, so tests can use a stand-in). */
export interface CallRegistry {
  handle<Req, Res>(def: UnaryCall<Req, Res>, handler: UnaryHandler<Req, Res>): unknown;
  handle<Req, Res>(def: ReadStreamCall<Req, Res>, handler: ReadStreamHandler<Req, Res>): unknown;
  handle<Req, Res>(def: WriteStreamCall<Req, Res>, handler: WriteStreamHandler<Req, Res>): unknown;
}

export interface DataServerOptions {
  store: BlockStore;
  evictor: Evictor;
  localWrites: LocalWrites;
  metrics: WorkerMetrics;
  promoteAfterReads: number;
  log: Logger;
}

type Req<C> =
  C extends UnaryCall<infer R, unknown> ? R : C extends ReadStreamCall<infer R, unknown> ? R : never;
type Res<C> =
  C extends UnaryCall<unknown, infer R> ? R : C extends ReadStreamCall<unknown, infer R> ? R : never;
type WriteReq = typeof WorkerCalls.WriteBlock extends WriteStreamCall<infer R, unknown> ? R : never;
type WriteRes = typeof WorkerCalls.WriteBlock extends WriteStreamCall<unknown, infer R> ? R : never;

/** Windows a read stream holds back before reusing them: more than the RPC's socket high water. */
const SEND_HOLD_WINDOWS = Math.ceil(rpcLimits.SOCKET_WRITE_HIGH_WATER_BYTES / READ_WINDOW_BYTES) + 3;

export class DataServer {
  readonly #o: DataServerOptions;
  #stopping = false;

  constructor(opts: DataServerOptions) {
    this.#o = opts;
  }

  register(server: CallRegistry): void {
    server.handle(WorkerCalls.ReadBlock, (req, ctx, out) => this.readBlock(req, ctx, out));
    server.handle(WorkerCalls.WriteBlock, (req, ctx, input) => this.writeBlock(req, ctx, input));
    server.handle(WorkerCalls.OpenLocalRead, (req) => this.openLocalRead(req));
    server.handle(WorkerCalls.OpenLocalWrite, (req, ctx) => this.openLocalWrite(req, ctx));
    server.handle(WorkerCalls.CommitLocalWrite, (req, ctx) => this.commitLocalWrite(req, ctx));
    server.handle(WorkerCalls.AbortLocalWrite, (req) => this.abortLocalWrite(req));
    server.handle(WorkerCalls.GetBlockInfo, (req) => this.getBlockInfo(req));
  }

  /** New calls are refused from now on (calls in flight finish). */
  stop(): void {
    this.#stopping = true;
  }

  async readBlock(
    req: Req<typeof WorkerCalls.ReadBlock>,
    ctx: Pick<CallContext, 'signal'>,
    out: Pick<StreamSink, 'write'>,
  ): Promise<Res<typeof WorkerCalls.ReadBlock>> {
    this.#checkRunning();
    const started = process.hrtime.bigint();
    const reader = await this.#o.store.openReader(req.blockId);
    try {
      const offset = req.offset ?? 0;
      if (offset > reader.lengthBytes) {
        throw badRequest(
          `block ${req.blockId}: offset ${offset} is past its end (${reader.lengthBytes} bytes)`,
          {
            blockId: req.blockId,
          },
        );
      }
      const length = req.length ?? reader.lengthBytes - offset;
      // The RPC keeps a chunk until the socket took it: windows go back to the pool late.
      const buffers = new DeferredReleasePool(this.#o.store.pool, SEND_HOLD_WINDOWS);
      const bytes = await reader.read(offset, length, (slice) => out.write(slice), ctx.signal, buffers);
      this.#counted(req.blockId);
      this.#o.metrics.readBytes.inc({ path: 'remote' }, bytes);
      this.#o.metrics.readSeconds.observe({ path: 'remote' }, seconds(started));
      return { bytes };
    } finally {
      await reader.close();
    }
  }

  async writeBlock(
    req: WriteReq,
    ctx: Pick<CallContext, 'signal'>,
    input: AsyncIterable<Buffer> & Partial<Pick<StreamInput, 'takeQueued'>>,
  ): Promise<WriteRes> {
    this.#checkRunning();
    const started = process.hrtime.bigint();
    const { store } = this.#o;
    const writer = await store.createWriter(req.blockId, req.storageType, req.lengthHint ?? 0, ctx.signal);
    try {
      // Chunks already received are taken and appended without a promise each (most are: a
      // burst of socket reads arrives while a batch is written); only a wait costs one.
      const chunks = input[Symbol.asyncIterator]();
      let drained = false;
      try {
        for (;;) {
          let chunk = input.takeQueued?.();
          if (chunk === undefined) {
            const next = await chunks.next();
            if (next.done === true) break;
            chunk = next.value;
          }
          ctx.signal.throwIfAborted();
          const appended = writer.accept(chunk, ctx.signal);
          if (appended !== undefined) await appended;
        }
        drained = true;
      } finally {
        // As `for await` does: a consumer leaving early tells the stream.
        if (!drained) await chunks.return?.();
      }
      // A stream that ends because the caller went away is not a complete block.
      ctx.signal.throwIfAborted();
      if (req.pinned === true) await store.setPinned([req.blockId], true);
      const info = await store.commitWriter(writer);
      this.#o.metrics.writeBytes.inc({ path: 'remote' }, info.lengthBytes);
      this.#o.metrics.writeSeconds.observe({ path: 'remote' }, seconds(started));
      return { length: info.lengthBytes, storageType: info.storageType };
    } catch (err) {
      await store.abortWriter(writer);
      throw err;
    }
  }

  async openLocalRead(
    req: Req<typeof WorkerCalls.OpenLocalRead>,
  ): Promise<Res<typeof WorkerCalls.OpenLocalRead>> {
    this.#checkRunning();
    const info = this.#o.store.localPath(req.blockId);
    this.#counted(req.blockId);
    this.#o.metrics.readBytes.inc({ path: 'local' }, info.lengthBytes);
    return { path: info.path, length: info.lengthBytes, storageType: info.storageType };
  }

  async openLocalWrite(
    req: Req<typeof WorkerCalls.OpenLocalWrite>,
    ctx: Pick<CallContext, 'signal'>,
  ): Promise<Res<typeof WorkerCalls.OpenLocalWrite>> {
    this.#checkRunning();
    if (req.pinned === true) await this.#o.store.setPinned([req.blockId], true);
    return this.#o.localWrites.open(req.blockId, req.storageType, req.lengthHint, ctx.signal);
  }

  async commitLocalWrite(
    req: Req<typeof WorkerCalls.CommitLocalWrite>,
    ctx: Pick<CallContext, 'signal'> & { payload?: Buffer },
  ): Promise<Res<typeof WorkerCalls.CommitLocalWrite>> {
    const started = process.hrtime.bigint();
    const table = req.checksummed === true ? (ctx.payload ?? Buffer.alloc(0)) : undefined;
    const info = await this.#o.localWrites.commit(req.blockId, req.length, ctx.signal, table);
    this.#o.metrics.writeBytes.inc({ path: 'local' }, info.lengthBytes);
    this.#o.metrics.writeSeconds.observe({ path: 'local' }, seconds(started));
    return { length: info.lengthBytes, storageType: info.storageType };
  }

  async abortLocalWrite(req: Req<typeof WorkerCalls.AbortLocalWrite>): Promise<Record<string, never>> {
    await this.#o.localWrites.abort(req.blockId);
    return {};
  }

  async getBlockInfo(
    req: Req<typeof WorkerCalls.GetBlockInfo>,
  ): Promise<Res<typeof WorkerCalls.GetBlockInfo>> {
    const info = this.#o.store.localPath(req.blockId);
    return { length: info.lengthBytes, storageType: info.storageType, reads: info.reads };
  }

  /** Recency, promotion. */
  #counted(blockId: number): void {
    if (this.#o.store.recordRead(blockId, this.#o.promoteAfterReads)) {
      this.#o.evictor.notePromotionCandidate(blockId);
    }
  }

  #checkRunning(): void {
    if (this.#stopping) throw new StoppingError();
  }
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
