/**
 * An in-process stand-in for a master and its workers behind the client's `RpcConnector`, for
 * fast tests of the client's block logic with fault injection (a worker that dies mid-stream, one
 * that refuses writes). Requests are validated with the protocol's own schemas, so a client that
 * sends a malformed request fails here as it would against the real master. Workers keep blocks as
 * files in a temp directory, so short-circuit reads and writes are real file I/O.
 *
 * Deliberately small: it implements what the client calls, with simple POSIX semantics, and is
 * not a model of the real master (the integration tests run against that).
 */
import {
  appendFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkChecksummer, encodeTrailer, lengthFromFileSize } from '../../src/protocol/block-format.js';
import { FsError, StrataError, fsError } from '../../src/common/errors.js';
import type {
  CallOptions,
  ReadCall,
  ReadStreamCall,
  UnaryCall,
  UnaryResult,
  WriteCall,
  WriteStreamCall,
} from '../../src/rpc/api.js';
import type { FileBlock, FileStatus, WorkerAddress } from '../../src/protocol/types.js';
import type { ChannelOptions, RpcChannel, RpcConnector } from '../../src/client/transport.js';

const MASTER_PORT = 1;

interface Node {
  status: FileStatus;
  blocks: FileBlock[];
  children: Map<string, Node> | undefined;
  xattrs: Map<string, Buffer>;
  lease: { id: string; pending: Set<number> } | undefined;
}

export interface FakeWorkerOptions {
  hostId: string;
}

export class FakeWorker {
  readonly address: WorkerAddress;
  readonly dir: string;
  /** When true, every call fails as if the process were gone. */
  down = false;
  /** Fail a write stream after this many bytes (then the worker is down). */
  failWriteAfterBytes: number | undefined;
  /** Fail the next write stream when it ends, after receiving every byte (then the worker is down). */
  failAtWriteEnd = false;
  /** Fail a read stream after this many bytes (then the worker is down). */
  failReadAfterBytes: number | undefined;
  readonly blocks = new Map<number, string>();
  readonly staged = new Map<number, string>();
  readBytes = 0;
  writeBytes = 0;
  localReads = 0;
  localWrites = 0;

  constructor(index: number, dir: string, opts: FakeWorkerOptions) {
    this.dir = dir;
    mkdirSync(join(dir, 'active'), { recursive: true });
    mkdirSync(join(dir, 'staging'), { recursive: true });
    this.address = {
      workerId: `worker-${index}`,
      hostname: '127.0.0.1',
      rpcPort: 2000 + index,
      webPort: 0,
      hostId: opts.hostId,
    };
  }

  check(): void {
    if (this.down)
      throw new StrataError('STRATA_CONNECTION', `connection refused (${this.address.workerId})`);
  }

  blockPath(id: number): string {
    const p = this.blocks.get(id);
    if (p === undefined) throw new FsError('ENOENT', `block ${id} not found`);
    return p;
  }

  /** Publishes a staged block in the worker's file format (data, checksum table, footer). */
  publish(id: number, staging: string): number {
    const final = join(this.dir, 'active', String(id));
    const data = readFileSync(staging);
    const sums = new ChunkChecksummer(data.length);
    sums.update(data);
    appendFileSync(staging, encodeTrailer(data.length, sums.finish()));
    renameSync(staging, final);
    this.blocks.set(id, final);
    return data.length;
  }

  /** Data bytes of a published block (its file without the trailer). */
  blockLength(id: number): number {
    return dataLength(this.blockPath(id));
  }

  remove(id: number): void {
    const p = this.blocks.get(id);
    if (p !== undefined && existsSync(p)) unlinkSync(p);
    this.blocks.delete(id);
  }
}

export class FakeCluster implements RpcConnector {
  readonly workers: FakeWorker[] = [];
  readonly root: Node;
  /** blockId → worker ids holding it. */
  readonly locations = new Map<number, Set<string>>();
  /** Calls seen, by name (assertions on how the client talks). */
  readonly calls = new Map<string, number>();
  /** The deadline (ms) the client gave the last call of each name (undefined: none). */
  readonly deadlines = new Map<string, number | undefined>();
  /** Files created below this path report `writeType: 'through'`, as under such a mount. */
  throughPrefix: string | undefined;
  masterDown = false;
  #nextId = 2;
  #nextBlock = 1;
  #robin = 0;

  constructor(dir: string, workers: number, hostIds: (i: number) => string) {
    for (let i = 0; i < workers; i++) {
      this.workers.push(new FakeWorker(i, join(dir, `w${i}`), { hostId: hostIds(i) }));
    }
    this.root = this.#mkNode('/', 'dir', 0o755);
  }

  get masterAddress(): { host: string; port: number } {
    return { host: '127.0.0.1', port: MASTER_PORT };
  }

  connect(opts: ChannelOptions): RpcChannel {
    const port = opts.addresses[0]?.port;
    if (port === MASTER_PORT) return this.#masterChannel();
    const w = this.workers.find((x) => x.address.rpcPort === port);
    if (w === undefined) throw new Error(`fake: no worker on port ${port}`);
    return this.#workerChannel(w);
  }

  /** Every block id any file of the namespace references. */
  referencedBlocks(): Set<number> {
    const out = new Set<number>();
    const walk = (n: Node): void => {
      for (const b of n.blocks) if (b.blockId !== 0) out.add(b.blockId);
      for (const c of n.children?.values() ?? []) walk(c);
    };
    walk(this.root);
    return out;
  }

  // ---- master ----------------------------------------------------------------------------------

  #count(name: string): void {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
  }

  #masterChannel(): RpcChannel {
    const handle = async (
      name: string,
      req: Record<string, unknown>,
      payload: Buffer,
    ): Promise<UnaryResult<unknown>> => {
      await Promise.resolve();
      if (this.masterDown) throw new StrataError('STRATA_CONNECTION', 'connection refused (master)');
      this.#count(name);
      return this.#master(name, req, payload);
    };
    return this.#channel(handle, () => {
      throw new Error('master has no streams');
    });
  }

  #lookup(path: string): Node | undefined {
    if (path === '/') return this.root;
    let n: Node | undefined = this.root;
    for (const part of path.split('/').filter((s) => s !== '')) {
      if (n?.children === undefined) return undefined;
      n = n.children.get(part);
      if (n === undefined) return undefined;
    }
    return n;
  }

  #get(path: string): Node {
    const n = this.#lookup(path);
    if (n === undefined) throw fsError('ENOENT', path);
    return n;
  }

  #parent(path: string, create = false): { dir: Node; name: string } {
    const parts = path.split('/').filter((s) => s !== '');
    const name = parts.pop();
    if (name === undefined) throw fsError('EEXIST', path);
    let dir = this.root;
    let at = '';
    for (const p of parts) {
      at += `/${p}`;
      let next = dir.children?.get(p);
      if (next === undefined) {
        if (!create) throw fsError('ENOENT', path);
        next = this.#mkNode(at, 'dir', 0o755);
        dir.children?.set(p, next);
      }
      if (next.children === undefined) throw fsError('ENOTDIR', path);
      dir = next;
    }
    return { dir, name };
  }

  #mkNode(path: string, type: 'file' | 'dir' | 'symlink', mode: number): Node {
    const now = Date.now();
    const name = path === '/' ? '' : (path.split('/').pop() ?? '');
    return {
      status: {
        id: this.#nextId++,
        path,
        name,
        type,
        size: 0,
        mode,
        uid: 0,
        gid: 0,
        nlink: 1,
        atimeMs: now,
        mtimeMs: now,
        ctimeMs: now,
        blockSize: 0,
        replicas: 1,
        storageType: 'DISK',
        ttlMs: 0,
        ttlAction: 'none',
        state: 'complete',
      },
      blocks: [],
      children: type === 'dir' ? new Map() : undefined,
      xattrs: new Map(),
      lease: undefined,
    };
  }

  #status(n: Node, path: string): FileStatus {
    const s: FileStatus = { ...n.status, path, name: path === '/' ? '' : (path.split('/').pop() ?? '') };
    if (this.throughPrefix !== undefined && path.startsWith(this.throughPrefix)) s.writeType = 'through';
    if (n.children !== undefined) s.children = n.children.size;
    return s;
  }

  #byId(id: number): { node: Node; path: string } {
    const walk = (n: Node, p: string): { node: Node; path: string } | undefined => {
      if (n.status.id === id) return { node: n, path: p };
      for (const [name, c] of n.children ?? []) {
        const r = walk(c, p === '/' ? `/${name}` : `${p}/${name}`);
        if (r !== undefined) return r;
      }
      return undefined;
    };
    const r = walk(this.root, '/');
    if (r === undefined) throw new FsError('ENOENT', `file id ${id} not found`);
    return r;
  }

  #leaseOf(fileId: number, leaseId: string): Node {
    const { node } = this.#byId(fileId);
    if (node.lease?.id !== leaseId)
      throw new StrataError('STRATA_LEASE_EXPIRED', `lease ${leaseId} is not held`);
    return node;
  }

  #dropBlocks(ids: Iterable<number>): void {
    for (const id of ids) {
      for (const w of this.workers) w.remove(id);
      this.locations.delete(id);
    }
  }

  #master(name: string, req: Record<string, unknown>, payload: Buffer): UnaryResult<unknown> {
    const ok = (body: unknown): UnaryResult<unknown> => ({ body, payload: Buffer.alloc(0) });
    const path = req.path as string;
    switch (name) {
      case 'master.getStatus':
        return ok(this.#status(this.#get(path), path));
      case 'master.list': {
        const n = this.#get(path);
        if (n.children === undefined) return ok({ entries: [this.#status(n, path)] });
        const names = [...n.children.keys()].sort();
        const after = req.startAfter as string | undefined;
        const from = after === undefined ? names : names.filter((x) => x > after);
        const limit = (req.limit as number | undefined) ?? 1000;
        const page = from.slice(0, limit);
        const entries = page.map((x) =>
          this.#status(n.children?.get(x) as Node, path === '/' ? `/${x}` : `${path}/${x}`),
        );
        return ok(
          page.length < from.length ? { entries, nextStartAfter: page[page.length - 1] } : { entries },
        );
      }
      case 'master.mkdir': {
        if (this.#lookup(path) !== undefined) throw fsError('EEXIST', path);
        const { dir, name: base } = this.#parent(path, req.parents === true);
        const n = this.#mkNode(path, 'dir', (req.mode as number | undefined) ?? 0o755);
        dir.children?.set(base, n);
        return ok(this.#status(n, path));
      }
      case 'master.create': {
        const existing = this.#lookup(path);
        if (existing !== undefined) {
          if (existing.children !== undefined) throw fsError('EISDIR', path);
          if (req.overwrite !== true) throw fsError('EEXIST', path);
          this.#dropBlocks(existing.blocks.map((b) => b.blockId).filter((x) => x !== 0));
        }
        const { dir, name: base } = this.#parent(path, req.parents === true);
        const n = this.#mkNode(path, 'file', (req.mode as number | undefined) ?? 0o644);
        n.status.blockSize = req.blockSize as number;
        n.status.replicas = req.replicas as number;
        n.status.state = 'writing';
        n.lease = { id: `lease-${n.status.id}`, pending: new Set() };
        dir.children?.set(base, n);
        return ok({ status: this.#status(n, path), leaseId: n.lease.id });
      }
      case 'master.openForWrite': {
        const n = this.#get(path);
        if (n.children !== undefined) throw fsError('EISDIR', path);
        if (n.lease !== undefined) throw fsError('EBUSY', path, 'open for writing elsewhere');
        n.lease = { id: `lease-${n.status.id}-${Date.now()}`, pending: new Set() };
        n.status.state = 'writing';
        return ok({
          status: this.#status(n, path),
          leaseId: n.lease.id,
          blocks: n.blocks.map((b) => ({ ...b })),
        });
      }
      case 'master.addBlock': {
        const n = this.#leaseOf(req.fileId as number, req.leaseId as string);
        const excluded = new Set((req.excludeWorkers as string[] | undefined) ?? []);
        const live = this.workers.filter((w) => !w.down && !excluded.has(w.address.workerId));
        if (live.length === 0) throw new FsError('ENOSPC', 'no live worker can take a block');
        const wanted = Math.min(n.status.replicas, live.length);
        const local = live.filter((w) => w.address.hostId === req.clientHostId);
        const others = live.filter((w) => w.address.hostId !== req.clientHostId);
        const start = this.#robin++ % Math.max(1, others.length);
        const ordered = [...local, ...others.slice(start), ...others.slice(0, start)];
        const chosen = ordered.slice(0, wanted);
        const blockId = this.#nextBlock++;
        n.lease?.pending.add(blockId);
        return ok({ blockId, workers: chosen.map((w) => w.address) });
      }
      case 'master.abandonBlock': {
        const n = this.#leaseOf(req.fileId as number, req.leaseId as string);
        n.lease?.pending.delete(req.blockId as number);
        this.#dropBlocks([req.blockId as number]);
        return ok({});
      }
      case 'master.complete': {
        const n = this.#leaseOf(req.fileId as number, req.leaseId as string);
        const blocks = req.blocks as (FileBlock & { workers?: string[] })[];
        const sum = blocks.reduce((a, b) => a + b.length, 0);
        if (sum !== req.length) {
          throw new FsError('EINVAL', `block lengths add up to ${sum}, length is ${String(req.length)}`);
        }
        const keep = new Set(blocks.map((b) => b.blockId));
        this.#dropBlocks(n.blocks.map((b) => b.blockId).filter((x) => x !== 0 && !keep.has(x)));
        for (const b of blocks) {
          if (b.workers !== undefined) this.locations.set(b.blockId, new Set(b.workers));
        }
        n.blocks = blocks.map((b) => ({ blockId: b.blockId, length: b.length }));
        n.status.size = req.length;
        n.status.state = 'complete';
        n.status.mtimeMs = Date.now();
        n.lease = undefined;
        return ok(this.#status(n, this.#byId(n.status.id).path));
      }
      case 'master.renewLease': {
        this.#leaseOf(req.fileId as number, req.leaseId as string);
        return ok({ expiresAtMs: Date.now() + 60_000 });
      }
      case 'master.getBlockLocations': {
        const n = this.#get(path);
        if (n.children !== undefined) throw fsError('EISDIR', path);
        let off = 0;
        const located = [];
        for (const b of n.blocks) {
          if (b.blockId !== 0) {
            const ids = this.locations.get(b.blockId) ?? new Set<string>();
            const workers = this.workers.filter((w) => ids.has(w.address.workerId)).map((w) => w.address);
            located.push({ blockId: b.blockId, offset: off, length: b.length, workers });
          }
          off += b.length;
        }
        return ok({ status: this.#status(n, path), blocks: located });
      }
      case 'master.delete': {
        const n = this.#get(path);
        if (path === '/') throw fsError('EBUSY', path);
        if (n.children !== undefined && n.children.size > 0 && req.recursive !== true)
          throw fsError('ENOTEMPTY', path);
        const { dir, name: base } = this.#parent(path);
        dir.children?.delete(base);
        return ok({});
      }
      case 'master.rename': {
        const src = req.src as string;
        const dst = req.dst as string;
        const n = this.#get(src);
        const target = this.#lookup(dst);
        if (target !== undefined && req.noReplace === true) throw fsError('EEXIST', dst);
        if (target?.children !== undefined && target.children.size > 0) throw fsError('ENOTEMPTY', dst);
        const from = this.#parent(src);
        const to = this.#parent(dst);
        from.dir.children?.delete(from.name);
        to.dir.children?.set(to.name, n);
        return ok({});
      }
      case 'master.setAttr': {
        const n = this.#get(path);
        for (const k of ['mode', 'uid', 'gid', 'atimeMs', 'mtimeMs'] as const) {
          if (req[k] !== undefined) (n.status as Record<string, unknown>)[k] = req[k];
        }
        if (req.length !== undefined) {
          const len = req.length as number;
          const out: FileBlock[] = [];
          let at = 0;
          for (const b of n.blocks) {
            if (at >= len) break;
            out.push({ blockId: b.blockId, length: Math.min(b.length, len - at) });
            at += Math.min(b.length, len - at);
          }
          if (at < len) out.push({ blockId: 0, length: len - at });
          n.blocks = out;
          n.status.size = len;
        }
        return ok(this.#status(n, path));
      }
      case 'master.symlink': {
        const { dir, name: base } = this.#parent(path);
        if (dir.children?.has(base) === true) throw fsError('EEXIST', path);
        const n = this.#mkNode(path, 'symlink', 0o777);
        n.status.target = req.target as string;
        n.status.size = (req.target as string).length;
        dir.children?.set(base, n);
        return ok(this.#status(n, path));
      }
      case 'master.readlink': {
        const n = this.#get(path);
        if (n.status.type !== 'symlink') throw fsError('EINVAL', path);
        return ok({ target: n.status.target });
      }
      case 'master.link': {
        const n = this.#get(req.existing as string);
        const { dir, name: base } = this.#parent(path);
        dir.children?.set(base, n);
        n.status.nlink++;
        return ok(this.#status(n, path));
      }
      case 'master.setXattr':
        this.#get(path).xattrs.set(req.name as string, Buffer.from(payload));
        return ok({});
      case 'master.getXattr': {
        const v = this.#get(path).xattrs.get(req.name as string);
        if (v === undefined) throw fsError('ENODATA', path);
        return { body: {}, payload: v };
      }
      case 'master.listXattr':
        return ok({ names: [...this.#get(path).xattrs.keys()] });
      case 'master.removeXattr':
        if (!this.#get(path).xattrs.delete(req.name as string)) throw fsError('ENODATA', path);
        return ok({});
      case 'master.getContentSummary': {
        let length = 0;
        let files = 0;
        let dirs = 0;
        const walk = (n: Node): void => {
          if (n.children === undefined) {
            files++;
            length += n.status.size;
          } else {
            dirs++;
            for (const c of n.children.values()) walk(c);
          }
        };
        walk(this.#get(path));
        return ok({ length, files, dirs, cachedBytes: length });
      }
      default:
        throw new StrataError('STRATA_UNKNOWN_CALL', `fake master does not serve ${name}`);
    }
  }

  // ---- workers -------------------------------------------------------------------------------

  #workerChannel(w: FakeWorker): RpcChannel {
    const unary = async (name: string, req: Record<string, unknown>): Promise<UnaryResult<unknown>> => {
      await Promise.resolve();
      w.check();
      this.#count(name);
      const ok = (body: unknown): UnaryResult<unknown> => ({ body, payload: Buffer.alloc(0) });
      const blockId = req.blockId as number;
      switch (name) {
        case 'worker.openLocalRead': {
          const p = w.blockPath(blockId);
          w.localReads++;
          return ok({ path: p, length: dataLength(p), storageType: 'DISK' });
        }
        case 'worker.openLocalWrite': {
          const p = join(w.dir, 'staging', `${blockId}.local`);
          writeFileSync(p, '');
          w.staged.set(blockId, p);
          w.localWrites++;
          return ok({ path: p, storageType: 'DISK' });
        }
        case 'worker.commitLocalWrite': {
          const p = w.staged.get(blockId);
          if (p === undefined) throw new FsError('ENOENT', `no staged block ${blockId}`);
          const size = statSync(p).size;
          if (size !== req.length)
            throw new FsError('EINVAL', `staged ${size} bytes, told ${String(req.length)}`);
          w.staged.delete(blockId);
          return ok({ length: w.publish(blockId, p), storageType: 'DISK' });
        }
        case 'worker.abortLocalWrite': {
          const p = w.staged.get(blockId);
          if (p !== undefined && existsSync(p)) unlinkSync(p);
          w.staged.delete(blockId);
          return ok({});
        }
        case 'worker.getBlockInfo': {
          const p = w.blockPath(blockId);
          return ok({ length: dataLength(p), storageType: 'DISK', reads: 0 });
        }
        default:
          throw new StrataError('STRATA_UNKNOWN_CALL', `fake worker does not serve ${name}`);
      }
    };
    const read = (
      name: string,
      req: Record<string, unknown>,
    ): { chunks: AsyncIterable<Buffer>; result: Promise<unknown> } => {
      let resolveResult: (v: unknown) => void = () => undefined;
      let rejectResult: (e: unknown) => void = () => undefined;
      const result = new Promise<unknown>((res, rej) => {
        resolveResult = res;
        rejectResult = rej;
      });
      result.catch(() => undefined);
      const count = (n: string): void => this.#count(n);
      async function* chunks(): AsyncGenerator<Buffer> {
        try {
          await Promise.resolve();
          w.check();
          count(name);
          const fh = await open(w.blockPath(req.blockId as number), 'r');
          try {
            const size = lengthFromFileSize((await fh.stat()).size) ?? 0;
            const offset = (req.offset as number | undefined) ?? 0;
            const end = req.length === undefined ? size : Math.min(size, offset + (req.length as number));
            let at = offset;
            let sent = 0;
            while (at < end) {
              w.check();
              if (w.failReadAfterBytes !== undefined && sent >= w.failReadAfterBytes) {
                w.down = true;
                w.check();
              }
              const n = Math.min(16 * 1024, end - at);
              const buf = Buffer.alloc(n);
              await fh.read(buf, 0, n, at);
              at += n;
              sent += n;
              w.readBytes += n;
              yield buf;
            }
            resolveResult({ bytes: sent });
          } finally {
            await fh.close();
          }
        } catch (err) {
          rejectResult(err);
          throw err;
        }
      }
      return { chunks: chunks(), result };
    };
    const write = (
      name: string,
      req: Record<string, unknown>,
      input: AsyncIterable<Buffer>,
    ): Promise<unknown> =>
      (async () => {
        await Promise.resolve();
        w.check();
        this.#count(name);
        const blockId = req.blockId as number;
        const staging = join(w.dir, 'staging', `${blockId}.rpc`);
        const parts: Buffer[] = [];
        let total = 0;
        for await (const chunk of input) {
          w.check();
          if (w.failWriteAfterBytes !== undefined && total + chunk.length > w.failWriteAfterBytes) {
            w.down = true;
            w.check();
          }
          parts.push(Buffer.from(chunk));
          total += chunk.length;
          w.writeBytes += chunk.length;
        }
        if (w.failAtWriteEnd) {
          w.failAtWriteEnd = false;
          w.down = true;
        }
        w.check();
        writeFileSync(staging, Buffer.concat(parts));
        return { length: w.publish(blockId, staging), storageType: 'DISK' };
      })();
    return this.#channel(unary, read, write);
  }

  #channel(
    unary: (name: string, req: Record<string, unknown>, payload: Buffer) => Promise<UnaryResult<unknown>>,
    read: (
      name: string,
      req: Record<string, unknown>,
    ) => { chunks: AsyncIterable<Buffer>; result: Promise<unknown> },
    write?: (name: string, req: Record<string, unknown>, input: AsyncIterable<Buffer>) => Promise<unknown>,
  ): RpcChannel {
    const parse = <T>(
      def: { request: { parse(x: unknown): T }; name: string },
      req: unknown,
    ): Record<string, unknown> => {
      try {
        return def.request.parse(req) as Record<string, unknown>;
      } catch (err) {
        throw new StrataError('STRATA_BAD_REQUEST', `${def.name}: ${(err as Error).message}`);
      }
    };
    const deadlines = this.deadlines;
    const channel: RpcChannel = {
      async call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, opts?: CallOptions): Promise<Res> {
        return (await channel.callWithPayload(def, req, opts)).body;
      },
      async callWithPayload<Req, Res>(
        def: UnaryCall<Req, Res>,
        req: Req,
        opts?: CallOptions,
      ): Promise<UnaryResult<Res>> {
        deadlines.set(def.name, opts?.deadlineMs);
        const r = await unary(def.name, parse(def, req), opts?.payload ?? Buffer.alloc(0));
        return { body: def.response.parse(r.body), payload: r.payload };
      },
      read<Req, Res>(def: ReadStreamCall<Req, Res>, req: Req): ReadCall<Res> {
        let cancelled = false;
        let started: { chunks: AsyncIterable<Buffer>; result: Promise<unknown> } | undefined;
        const start = (): { chunks: AsyncIterable<Buffer>; result: Promise<unknown> } =>
          (started ??= read(def.name, parse(def, req)));
        return {
          get result(): Promise<Res> {
            return start().result as Promise<Res>;
          },
          cancel(): void {
            cancelled = true;
          },
          async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
            for await (const c of start().chunks) {
              if (cancelled) throw new StrataError('STRATA_CANCELLED', 'cancelled');
              yield c;
            }
          },
        };
      },
      write<Req, Res>(def: WriteStreamCall<Req, Res>, req: Req): WriteCall<Res> {
        if (write === undefined) throw new Error('no write streams here');
        const queue: (Buffer | null)[] = [];
        let wake: (() => void) | undefined;
        let failed: unknown;
        let cancelled = false;
        async function* input(): AsyncGenerator<Buffer> {
          for (;;) {
            while (queue.length === 0) await new Promise<void>((r) => (wake = r));
            const c = queue.shift();
            if (cancelled) throw new StrataError('STRATA_CANCELLED', 'cancelled');
            if (c === null || c === undefined) return;
            yield c;
          }
        }
        const result = write(def.name, parse(def, req), input()).then((r) => def.response.parse(r));
        result.catch((err: unknown) => (failed = err));
        const push = (c: Buffer | null): void => {
          queue.push(c);
          const w = wake;
          wake = undefined;
          w?.();
        };
        return {
          async write(chunk: Buffer): Promise<void> {
            await new Promise((r) => setImmediate(r));
            if (failed !== undefined) throw failed as Error;
            if (cancelled) throw new StrataError('STRATA_CANCELLED', 'cancelled');
            push(Buffer.from(chunk));
          },
          async end(): Promise<Res> {
            push(null);
            return result;
          },
          cancel(): void {
            cancelled = true;
            push(null);
          },
        };
      },
      async close(): Promise<void> {},
    };
    return channel;
  }
}

/** Reads the data of a fake worker's block file (assertions). */
export function readBlockFile(w: FakeWorker, id: number): Buffer {
  return readFileSync(w.blockPath(id)).subarray(0, w.blockLength(id));
}

/** Data bytes of a block file (the worker's format: data, checksum table, footer). */
function dataLength(path: string): number {
  const n = lengthFromFileSize(statSync(path).size);
  if (n === undefined) throw new FsError('EIO', `${path} is not a block file`);
  return n;
}
