/**
 * One FUSE session: decodes each request the kernel sends, answers it through the path-based
 * `FuseOperations`, and writes the reply (header and payload in one buffer, one write). Requests
 * are served concurrently: each runs as soon as it arrives and replies whenever it finishes (the
 * kernel matches replies by `unique`). Anything we do not implement answers ENOSYS, a request we
 * cannot parse EINVAL (or EIO), so neither reaches the application as a hang or the process as
 * a crash.
 */
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { basename } from 'node:path/posix';
import { FsError } from '../../common/errors.js';
import { close as closeFd } from 'node:fs';
import type {
  DirectReadPlan,
  DirectReadSource,
  FuseAttr,
  FuseContext,
  FuseOperations,
  SetattrChanges,
} from '../binding.js';
import { errnoOf, interruptedError } from '../errno.js';
import { NodeTable } from './nodes.js';
import {
  ATTR_OUT_BYTES,
  ENTRY_OUT_BYTES,
  FOPEN_KEEP_CACHE,
  FUSE_FSYNC_FDATASYNC,
  FUSE_GETATTR_FH,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_MINOR_VERSION,
  Fattr,
  IN_HEADER_BYTES,
  INIT_OUT_BYTES,
  InitFlag,
  KSTATFS_BYTES,
  OPEN_OUT_BYTES,
  OUT_HEADER_BYTES,
  Op,
  PAGE_SIZE_BYTES,
  RENAME_NOREPLACE,
  WRITE_IN_BYTES,
  decodeInHeader,
  direntBytes,
  errorReply,
  readCString,
  replyBuffer,
  writeAttrOut,
  writeDirent,
  writeEntryOut,
  writeKstatfs,
  writeOpenOut,
  writeOutHeader,
} from './protocol.js';
import type { InHeader } from './protocol.js';

const E = constants.errno;
/** open(2)'s O_EXCL, as the FUSE CREATE request's flags carry it. */
const O_EXCL = fsConstants.O_EXCL;
/** Flags we ask for when the kernel offers them (see docs/fuse.md for why each). */
const WANTED_INIT_FLAGS =
  InitFlag.ASYNC_READ |
  InitFlag.ATOMIC_O_TRUNC |
  InitFlag.BIG_WRITES |
  InitFlag.AUTO_INVAL_DATA |
  InitFlag.PARALLEL_DIROPS |
  InitFlag.DO_READDIRPLUS |
  InitFlag.READDIRPLUS_AUTO |
  InitFlag.MAX_PAGES;
/**
 * Background requests (async read-ahead) the kernel may have outstanding at once: libfuse's
 * defaults. 64 was measured 2-5x slower on sequential reads: many read-ahead requests of one
 * descriptor arrive at once and out of order, and its reads are served one at a time.
 */
const MAX_BACKGROUND = 12;
const CONGESTION_THRESHOLD = 9;
/** READ reply buffers kept for reuse (each max_write plus a header; above the background limit). */
const READ_POOL_BUFFERS = 16;
/** Directory entry types (d_type) from the mode's type bits. */
const DT_UNKNOWN = 0;
/** S_IFMT of a regular file (mknod of anything else is refused). */
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
/** Timestamps: UTIME_NOW sent as FATTR_*_NOW; times come as seconds + nanoseconds. */
const NS_PER_MS = 1e6;

/**
 * Asked by the kernel before every write (to drop file capabilities, file_remove_privs): its
 * absence is cached per node for the attribute timeout, as attributes are, instead of costing
 * a master call per write.
 */
const CAPABILITY_XATTR = 'security.capability';
/** Cap on that cache (cleared whole when full; it only saves calls). */
const MAX_CAPABILITY_ENTRIES = 100_000;

/**
 * Direct reads (direct-reads.ts): where plans come from, and how grants, revocations and
 * release acknowledgements reach the reader thread (each call takes effect for every request
 * the reader reads after it returns).
 */
export interface DirectReadLink {
  source: DirectReadSource;
  grant(fh: number, plan: DirectReadPlan): void;
  revoke(fh: number): void;
  released(fh: number): void;
}

/**
 * A handle refused a direct-read plan (a writer's handle not yet released, a block not local
 * yet) or whose grant was revoked is asked again at its next read this much later.
 */
const DIRECT_REASK_MS = 1000;

interface DirectAsking {
  /** Undefined while asking or granted. */
  retryAtMs: number | undefined;
}

/** Where replies go: one call per reply, the whole reply in one buffer. */
export interface ReplySink {
  write(reply: Buffer): void;
}

export interface SessionOptions {
  entryTimeoutMs: number;
  attrTimeoutMs: number;
  maxWriteBytes: number;
  /** A request unanswered this long is answered ETIMEDOUT (a late answer is then dropped). */
  requestTimeoutMs: number;
  /** Called once the kernel sent DESTROY. */
  onDestroy?: () => void;
  /** Called for a request that failed inside the session itself (not an operation's errno). */
  onInternalError?: (err: unknown, opcode: number) => void;
  /** Direct reads, when the engine's reader thread answers READs of granted handles itself. */
  direct?: DirectReadLink;
}

/** Per-opcode counts of request sizes, for tests and the debug log (the ops see sizes too). */
export interface SessionStats {
  requests: number;
  enosys: number;
  malformed: number;
  /** Requests answered EINTR after the kernel interrupted them. */
  interrupted: number;
  largestWriteBytes: number;
}

interface OpenDir {
  names: Buffer[];
  /** Each entry's attributes from the listing (none for "." and ".."). */
  attrs: (FuseAttr | undefined)[];
}

interface InFlight {
  startedMs: number;
  opcode: number;
  /** Answered (by the operation, a timeout or an interrupt): a later answer is dropped. */
  done: boolean;
  /** Aborted when the kernel interrupts the request (FUSE_INTERRUPT). */
  abort: AbortController;
  interrupted: boolean;
  /** A READ's reply buffer from the pool, given back once the operation settled. */
  pooled?: Buffer;
}

/**
 * Requests an INTERRUPT answers at once with EINTR: they change nothing, so abandoning them
 * leaves nothing half done (their operation is told through its signal and its late answer is
 * dropped). Anything that changes the namespace or a file's data finishes and answers as if
 * never interrupted (libfuse's behaviour without interrupt support): answering EINTR while the
 * change still happens would tell the application it did not.
 */
const INTERRUPTIBLE: ReadonlySet<number> = new Set([
  Op.LOOKUP,
  Op.GETATTR,
  Op.READLINK,
  Op.READ,
  Op.STATFS,
  Op.GETXATTR,
  Op.LISTXATTR,
  Op.OPENDIR,
  Op.READDIR,
  Op.READDIRPLUS,
  Op.ACCESS,
]);

export class FuseSession {
  readonly nodes = new NodeTable();
  readonly stats: SessionStats = {
    requests: 0,
    enosys: 0,
    malformed: 0,
    interrupted: 0,
    largestWriteBytes: 0,
  };
  readonly #ops: FuseOperations;
  readonly #sink: ReplySink;
  readonly #opts: SessionOptions;
  readonly #dirs = new Map<number, OpenDir>();
  readonly #inFlight = new Map<bigint, InFlight>();
  readonly #readPool: Buffer[] = [];
  /**
   * Open file handles asked for a direct-read plan, until released: the asking in progress or
   * granted (a plan is granted only if it answers the latest asking), or when to ask again.
   */
  readonly #directAsked = new Map<number, DirectAsking>();
  /** Node id → until when `security.capability` is known to be absent. */
  readonly #noCapability = new Map<bigint, number>();
  #nextDirHandle = 1;
  #initialised = false;
  /** The negotiated minor version (struct sizes depend on it). */
  #minor = FUSE_KERNEL_MINOR_VERSION;
  #sweep: NodeJS.Timeout | undefined;

  constructor(ops: FuseOperations, sink: ReplySink, opts: SessionOptions) {
    this.#ops = ops;
    this.#sink = sink;
    this.#opts = opts;
    this.#sweep = setInterval(() => this.#expire(), Math.min(1000, opts.requestTimeoutMs));
    this.#sweep.unref();
    opts.direct?.source.onRevoke((fh) => {
      opts.direct?.revoke(fh);
      const asking = this.#directAsked.get(fh);
      if (asking !== undefined) asking.retryAtMs = Date.now() + DIRECT_REASK_MS;
    });
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  close(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  /**
   * Serves one request read from /dev/fuse (the buffer holds exactly the request). `done` is
   * called once nothing reads `req` any more (its buffer may then be reused): at once for
   * requests answered here, after the operation settles for the others.
   */
  handle(req: Buffer, done?: () => void): void {
    const settled = this.#serve(req);
    if (settled === undefined) done?.();
    else if (done !== undefined) void settled.then(done);
  }

  #serve(req: Buffer): Promise<void> | undefined {
    this.stats.requests++;
    if (req.length < IN_HEADER_BYTES) {
      this.stats.malformed++;
      // Too short to carry even the header: answer EIO if we can at least read `unique`.
      if (req.length >= 16) this.#send(errorReply(req.readBigUInt64LE(8), E.EIO));
      return undefined;
    }
    const h = decodeInHeader(req);
    if (h.len !== req.length) {
      this.stats.malformed++;
      this.#send(errorReply(h.unique, E.EIO));
      return undefined;
    }
    // Replies go only to requests that expect one.
    const body = req.subarray(IN_HEADER_BYTES);
    if (h.opcode === Op.FORGET) this.#forget(h, req);
    else if (h.opcode === Op.BATCH_FORGET) this.#batchForget(req);
    else if (h.opcode === Op.INTERRUPT) this.#interrupt(req);
    else if (h.opcode === Op.INIT) this.#init(h, body);
    else if (!this.#initialised) this.#send(errorReply(h.unique, E.EIO));
    else return this.#start(h, body);
    return undefined;
  }

  #start(h: InHeader, body: Buffer): Promise<void> {
    const entry: InFlight = {
      startedMs: Date.now(),
      opcode: h.opcode,
      done: false,
      abort: new AbortController(),
      interrupted: false,
    };
    this.#inFlight.set(h.unique, entry);
    // #dispatch is async: whatever it throws arrives as a rejection.
    return this.#dispatch(h, body, entry).then(
      (reply) => {
        this.#finish(h, entry, reply ?? replyBuffer(h.unique, 0));
        this.#giveBack(entry);
      },
      (err: unknown) => {
        if (err instanceof RangeError) {
          this.stats.malformed++;
          this.#opts.onInternalError?.(err, h.opcode);
          this.#finish(h, entry, errorReply(h.unique, E.EINVAL));
        } else {
          this.#finish(h, entry, errorReply(h.unique, entry.interrupted ? E.EINTR : errnoOf(err)));
        }
        this.#giveBack(entry);
      },
    );
  }

  /**
   * FUSE_INTERRUPT: the caller of request `unique` got a signal. Requests that change nothing
   * are answered EINTR now and their operation is aborted; the others finish (see
   * INTERRUPTIBLE). An unknown `unique` has already been answered: nothing to do (the kernel
   * only interrupts requests it sent us, and we read requests in order).
   */
  #interrupt(req: Buffer): undefined {
    if (req.length < IN_HEADER_BYTES + 8) return undefined;
    const unique = req.readBigUInt64LE(IN_HEADER_BYTES);
    const entry = this.#inFlight.get(unique);
    if (entry === undefined || entry.done || !INTERRUPTIBLE.has(entry.opcode)) return undefined;
    this.stats.interrupted++;
    entry.interrupted = true;
    entry.abort.abort(interruptedError(`request ${unique}`));
    entry.done = true;
    this.#inFlight.delete(unique);
    this.#send(errorReply(unique, E.EINTR));
    return undefined;
  }

  #finish(h: InHeader, entry: InFlight, reply: Buffer): void {
    if (entry.done) return;
    entry.done = true;
    this.#inFlight.delete(h.unique);
    this.#send(reply);
  }

  #send(reply: Buffer): void {
    this.#sink.write(reply);
  }

  /**
   * A reply buffer for a READ of `size` bytes: from the pool when it fits (the sink writes
   * synchronously, so a buffer is free again once its request settled). A fresh 1 MiB buffer
   * per read is garbage the collector then spends its time on.
   */
  #readBuffer(entry: InFlight, size: number): Buffer {
    const capacity = OUT_HEADER_BYTES + this.#opts.maxWriteBytes;
    if (OUT_HEADER_BYTES + size > capacity) return Buffer.allocUnsafe(OUT_HEADER_BYTES + size);
    const b = this.#readPool.pop() ?? Buffer.allocUnsafeSlow(capacity);
    entry.pooled = b;
    return b.subarray(0, OUT_HEADER_BYTES + size);
  }

  #giveBack(entry: InFlight): void {
    if (entry.pooled === undefined) return;
    if (this.#readPool.length < READ_POOL_BUFFERS) this.#readPool.push(entry.pooled);
    entry.pooled = undefined;
  }

  /** Requests past the deadline answer ETIMEDOUT so a wedged call never hangs the caller. */
  #expire(): void {
    const limit = Date.now() - this.#opts.requestTimeoutMs;
    for (const [unique, entry] of this.#inFlight) {
      if (entry.startedMs > limit) continue;
      entry.done = true;
      this.#inFlight.delete(unique);
      this.#send(errorReply(unique, E.ETIMEDOUT));
    }
  }

  #init(h: InHeader, body: Buffer): void {
    const major = body.readUInt32LE(0);
    const minor = body.readUInt32LE(4);
    const maxReadahead = body.readUInt32LE(8);
    const kernelFlags = body.readUInt32LE(12);
    if (major !== FUSE_KERNEL_VERSION || minor < FUSE_MIN_MINOR_VERSION) {
      // A newer major would be asked to fall back to ours; anything older we do not speak.
      if (major > FUSE_KERNEL_VERSION) {
        const b = replyBuffer(h.unique, 8);
        b.writeUInt32LE(FUSE_KERNEL_VERSION, 16);
        b.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 20);
        this.#send(b);
      } else this.#send(errorReply(h.unique, E.EPROTO));
      return;
    }
    this.#minor = Math.min(minor, FUSE_KERNEL_MINOR_VERSION);
    const flags = kernelFlags & WANTED_INIT_FLAGS;
    const b = replyBuffer(h.unique, INIT_OUT_BYTES);
    b.fill(0, OUT_HEADER_BYTES);
    const o = OUT_HEADER_BYTES;
    b.writeUInt32LE(FUSE_KERNEL_VERSION, o);
    b.writeUInt32LE(this.#minor, o + 4);
    b.writeUInt32LE(Math.min(maxReadahead, this.#opts.maxWriteBytes), o + 8);
    b.writeUInt32LE(flags >>> 0, o + 12);
    b.writeUInt16LE(MAX_BACKGROUND, o + 16);
    b.writeUInt16LE(CONGESTION_THRESHOLD, o + 18);
    b.writeUInt32LE(this.#opts.maxWriteBytes, o + 20);
    b.writeUInt32LE(1, o + 24); // time_gran: nanoseconds (we keep milliseconds; the kernel rounds nothing)
    b.writeUInt16LE(Math.ceil(this.#opts.maxWriteBytes / PAGE_SIZE_BYTES), o + 28);
    this.#initialised = true;
    this.#send(b);
  }

  #forget(h: InHeader, req: Buffer): void {
    if (req.length >= IN_HEADER_BYTES + 8)
      this.nodes.forget(h.nodeid, Number(req.readBigUInt64LE(IN_HEADER_BYTES)));
  }

  #batchForget(req: Buffer): void {
    if (req.length < IN_HEADER_BYTES + 8) return;
    const count = req.readUInt32LE(IN_HEADER_BYTES);
    let off = IN_HEADER_BYTES + 8;
    for (let i = 0; i < count && off + 16 <= req.length; i++, off += 16)
      this.nodes.forget(req.readBigUInt64LE(off), Number(req.readBigUInt64LE(off + 8)));
  }

  // ---- dispatch ------------------------------------------------------------------------------

  async #dispatch(h: InHeader, b: Buffer, entry: InFlight): Promise<Buffer | undefined> {
    const ops = this.#ops;
    const ctx: FuseContext = { uid: h.uid, gid: h.gid, pid: h.pid };
    switch (h.opcode) {
      case Op.LOOKUP: {
        const [name] = readCString(b, 0);
        const path = this.nodes.childPath(h.nodeid, name);
        return this.#entry(h, h.nodeid, name, await ops.getattr(path));
      }
      case Op.GETATTR: {
        const flags = b.readUInt32LE(0);
        const a =
          (flags & FUSE_GETATTR_FH) !== 0
            ? await ops.fgetattr(this.#pathOrEmpty(h.nodeid), Number(b.readBigUInt64LE(8)))
            : await ops.getattr(this.nodes.path(h.nodeid));
        return this.#attr(h, a);
      }
      case Op.SETATTR:
        return this.#attr(h, await this.#setattr(h, b));
      case Op.READLINK: {
        const target = Buffer.from(await ops.readlink(this.nodes.path(h.nodeid)));
        const r = replyBuffer(h.unique, target.length);
        target.copy(r, OUT_HEADER_BYTES);
        return r;
      }
      case Op.SYMLINK: {
        const [name, next] = readCString(b, 0);
        const [target] = readCString(b, next);
        const path = this.nodes.childPath(h.nodeid, name);
        const a = await ops.symlink(target, path, ctx);
        return this.#entry(h, h.nodeid, name, a ?? (await ops.getattr(path)));
      }
      case Op.MKNOD: {
        const mode = b.readUInt32LE(0);
        const [name] = readCString(b, 16);
        // Only regular files: the namespace has no FIFOs, sockets or devices.
        if ((mode & S_IFMT) !== S_IFREG)
          throw new FsError('EPERM', `mknod of type ${(mode & S_IFMT).toString(8)}`);
        const path = this.nodes.childPath(h.nodeid, name);
        const fh = await ops.create(path, mode, ctx);
        await ops.release(path, fh);
        return this.#entry(h, h.nodeid, name, await ops.getattr(path));
      }
      case Op.MKDIR: {
        const mode = b.readUInt32LE(0);
        const [name] = readCString(b, 8);
        const path = this.nodes.childPath(h.nodeid, name);
        const a = await ops.mkdir(path, mode, ctx);
        return this.#entry(h, h.nodeid, name, a ?? (await ops.getattr(path)));
      }
      case Op.UNLINK:
      case Op.RMDIR: {
        const [name] = readCString(b, 0);
        const path = this.nodes.childPath(h.nodeid, name);
        let hidden: string | undefined;
        if (h.opcode === Op.UNLINK) hidden = await ops.unlink(path);
        else await ops.rmdir(path);
        // An open file kept under a hidden name: its node follows it (fstat, setattr by path).
        if (hidden !== undefined) this.nodes.renamed(h.nodeid, name, h.nodeid, basename(hidden));
        else this.nodes.removed(h.nodeid, name);
        return undefined;
      }
      case Op.RENAME:
        return this.#rename(h, b.readBigUInt64LE(0), 0, b, 8);
      case Op.RENAME2:
        return this.#rename(h, b.readBigUInt64LE(0), b.readUInt32LE(8), b, 16);
      case Op.LINK: {
        const old = b.readBigUInt64LE(0);
        const [name] = readCString(b, 8);
        const path = this.nodes.childPath(h.nodeid, name);
        const a = await ops.link(this.nodes.path(old), path);
        return this.#entry(h, h.nodeid, name, a ?? (await ops.getattr(path)));
      }
      case Op.OPEN: {
        const flags = b.readUInt32LE(0);
        const path = this.nodes.path(h.nodeid);
        const fh = await ops.open(path, flags);
        // auto_cache: keep the cached pages when (mtime, size) did not change since they were
        // kept; the attributes the kernel has now (if still fresh) save a stat per open.
        let keep: boolean;
        try {
          const known = this.nodes.freshStamp(h.nodeid, Date.now() - this.#opts.attrTimeoutMs);
          keep = this.nodes.keepCache(h.nodeid, known ?? stamp(await ops.fgetattr(path, fh)));
        } catch {
          keep = false;
        }
        const r = replyBuffer(h.unique, OPEN_OUT_BYTES);
        writeOpenOut(r, OUT_HEADER_BYTES, fh, keep ? FOPEN_KEEP_CACHE : 0);
        return r;
      }
      case Op.READ: {
        const fh = Number(b.readBigUInt64LE(0));
        const offset = Number(b.readBigUInt64LE(8));
        const size = b.readUInt32LE(16);
        const r = this.#readBuffer(entry, size);
        const n = await ops.read(
          this.#pathOrEmpty(h.nodeid),
          fh,
          r.subarray(OUT_HEADER_BYTES),
          size,
          offset,
          entry.abort.signal,
        );
        const out = r.subarray(0, OUT_HEADER_BYTES + Math.max(0, Math.min(n, size)));
        writeOutHeader(out, h.unique, 0);
        this.#askDirect(fh);
        return out;
      }
      case Op.WRITE: {
        const fh = Number(b.readBigUInt64LE(0));
        const offset = Number(b.readBigUInt64LE(8));
        const size = b.readUInt32LE(16);
        const data = b.subarray(WRITE_IN_BYTES, WRITE_IN_BYTES + size);
        if (data.length !== size) throw new RangeError('WRITE shorter than its size');
        if (size > this.stats.largestWriteBytes) this.stats.largestWriteBytes = size;
        const n = await ops.write(this.#pathOrEmpty(h.nodeid), fh, data, size, offset);
        const r = replyBuffer(h.unique, 8);
        r.writeUInt32LE(n, OUT_HEADER_BYTES);
        r.writeUInt32LE(0, OUT_HEADER_BYTES + 4);
        return r;
      }
      case Op.STATFS: {
        const s = await ops.statfs(this.#pathOrEmpty(h.nodeid) || '/');
        const r = replyBuffer(h.unique, KSTATFS_BYTES);
        writeKstatfs(r, OUT_HEADER_BYTES, s);
        return r;
      }
      case Op.RELEASE: {
        const fh = Number(b.readBigUInt64LE(0));
        try {
          await ops.release(this.#pathOrEmpty(h.nodeid), fh);
        } finally {
          // The number may be given out again from now on: the reader may accept grants for it.
          this.#directAsked.delete(fh);
          this.#opts.direct?.released(fh);
        }
        return undefined;
      }
      case Op.FLUSH:
        await ops.flush(this.#pathOrEmpty(h.nodeid), Number(b.readBigUInt64LE(0)));
        return undefined;
      case Op.FSYNC:
        await ops.fsync(
          this.#pathOrEmpty(h.nodeid),
          Number(b.readBigUInt64LE(0)),
          (b.readUInt32LE(8) & FUSE_FSYNC_FDATASYNC) !== 0,
        );
        return undefined;
      case Op.SETXATTR: {
        const size = b.readUInt32LE(0);
        const flags = b.readUInt32LE(4);
        const [name, next] = readCString(b, 8);
        if (name === CAPABILITY_XATTR) this.#noCapability.delete(h.nodeid);
        const value = b.subarray(next, next + size);
        if (value.length !== size) throw new RangeError('SETXATTR value shorter than its size');
        await ops.setxattr(this.nodes.path(h.nodeid), name, Buffer.from(value), flags);
        return undefined;
      }
      case Op.GETXATTR: {
        const size = b.readUInt32LE(0);
        const [name] = readCString(b, 8);
        if (name === CAPABILITY_XATTR) return this.#capability(h, size);
        return this.#sized(h, size, await ops.getxattr(this.nodes.path(h.nodeid), name));
      }
      case Op.LISTXATTR: {
        const size = b.readUInt32LE(0);
        const names = await ops.listxattr(this.nodes.path(h.nodeid));
        return this.#sized(h, size, Buffer.from(names.map((n) => `${n}\0`).join('')));
      }
      case Op.REMOVEXATTR: {
        const [name] = readCString(b, 0);
        if (name === CAPABILITY_XATTR) this.#noCapability.delete(h.nodeid);
        await ops.removexattr(this.nodes.path(h.nodeid), name);
        return undefined;
      }
      case Op.OPENDIR: {
        const entries = await ops.readdirPlus(this.nodes.path(h.nodeid));
        const fh = this.#nextDirHandle++;
        this.#dirs.set(fh, {
          names: entries.map((e) => Buffer.from(e.name)),
          attrs: entries.map((e) => e.attr),
        });
        const r = replyBuffer(h.unique, OPEN_OUT_BYTES);
        writeOpenOut(r, OUT_HEADER_BYTES, fh, 0);
        return r;
      }
      case Op.READDIR:
        return this.#readdir(h, b);
      case Op.READDIRPLUS:
        return this.#readdirPlus(h, b);
      case Op.RELEASEDIR:
        this.#dirs.delete(Number(b.readBigUInt64LE(0)));
        return undefined;
      case Op.FSYNCDIR:
        return undefined;
      case Op.ACCESS:
        // default_permissions: the kernel checks modes itself; here we only say whether it exists.
        await ops.getattr(this.nodes.path(h.nodeid));
        return undefined;
      case Op.CREATE: {
        const flags = b.readUInt32LE(0);
        const mode = b.readUInt32LE(4);
        const [name] = readCString(b, 16);
        const path = this.nodes.childPath(h.nodeid, name);
        const fh = await ops.create(path, mode, ctx, flags);
        let a: FuseAttr;
        try {
          a = ops.createdAttr?.(fh) ?? (await ops.fgetattr(path, fh));
        } catch (err) {
          await ops.release(path, fh).catch(() => undefined);
          throw err;
        }
        const r = replyBuffer(h.unique, ENTRY_OUT_BYTES + OPEN_OUT_BYTES);
        const id = this.nodes.remember(h.nodeid, name);
        this.nodes.keepCache(id, stamp(a));
        // O_EXCL made a new file: it has no attributes yet, so the kernel's question before the
        // first write (does it carry file capabilities?) is answered without the master.
        if ((flags & O_EXCL) !== 0) this.#noCapabilityFor(id);
        writeEntryOut(r, OUT_HEADER_BYTES, id, a, this.#opts.entryTimeoutMs, this.#opts.attrTimeoutMs);
        writeOpenOut(r, OUT_HEADER_BYTES + ENTRY_OUT_BYTES, fh, 0);
        return r;
      }
      case Op.DESTROY:
        this.#opts.onDestroy?.();
        return undefined;
      default:
        // The kernel remembers ENOSYS for most opcodes and stops sending them.
        this.stats.enosys++;
        return errorReply(h.unique, E.ENOSYS);
    }
  }

  /**
   * After a read through the operations: asks for a direct-read plan (once per handle, again
   * DIRECT_REASK_MS after a refusal or revocation) and grants it. The source answers only for
   * a handle still open and unchanged, and a RELEASE is acknowledged to the reader only after
   * the operations closed the handle, so a grant never outlives its handle (direct-reads.ts).
   */
  #askDirect(fh: number): void {
    const direct = this.#opts.direct;
    if (direct === undefined) return;
    const before = this.#directAsked.get(fh);
    if (before !== undefined && (before.retryAtMs === undefined || Date.now() < before.retryAtMs)) return;
    const asking: DirectAsking = { retryAtMs: undefined };
    this.#directAsked.set(fh, asking);
    direct.source.plan(fh).then(
      (plan) => {
        const current = this.#directAsked.get(fh) === asking && asking.retryAtMs === undefined;
        if (plan !== undefined && current) direct.grant(fh, plan);
        else {
          if (plan !== undefined) for (const e of plan.extents) closeFd(e.fd, () => undefined);
          if (this.#directAsked.get(fh) === asking) asking.retryAtMs = Date.now() + DIRECT_REASK_MS;
        }
      },
      (err: unknown) => {
        if (this.#directAsked.get(fh) === asking) asking.retryAtMs = Date.now() + DIRECT_REASK_MS;
        this.#opts.onInternalError?.(err, Op.READ);
      },
    );
  }

  async #capability(h: InHeader, size: number): Promise<Buffer> {
    const until = this.#noCapability.get(h.nodeid);
    if (until !== undefined && until > Date.now()) throw new FsError('ENODATA', CAPABILITY_XATTR);
    try {
      return this.#sized(h, size, await this.#ops.getxattr(this.nodes.path(h.nodeid), CAPABILITY_XATTR));
    } catch (err) {
      if (errnoOf(err) === E.ENODATA) this.#noCapabilityFor(h.nodeid);
      throw err;
    }
  }

  /** Remembers for `attr_timeout_ms` that the node has no `security.capability`. */
  #noCapabilityFor(id: bigint): void {
    if (this.#noCapability.size > MAX_CAPABILITY_ENTRIES) this.#noCapability.clear();
    this.#noCapability.set(id, Date.now() + this.#opts.attrTimeoutMs);
  }

  #pathOrEmpty(id: bigint): string {
    try {
      return this.nodes.path(id);
    } catch {
      return '';
    }
  }

  #entry(h: InHeader, parent: bigint, name: string, a: FuseAttr): Buffer {
    const id = this.nodes.remember(parent, name);
    this.nodes.sawAttr(id, stamp(a));
    const r = replyBuffer(h.unique, ENTRY_OUT_BYTES);
    writeEntryOut(r, OUT_HEADER_BYTES, id, a, this.#opts.entryTimeoutMs, this.#opts.attrTimeoutMs);
    return r;
  }

  #attr(h: InHeader, a: FuseAttr): Buffer {
    this.nodes.sawAttr(h.nodeid, stamp(a));
    const r = replyBuffer(h.unique, ATTR_OUT_BYTES);
    writeAttrOut(r, OUT_HEADER_BYTES, a, this.#opts.attrTimeoutMs);
    return r;
  }

  /** getxattr/listxattr: size 0 asks for the size; a smaller buffer than needed is ERANGE. */
  #sized(h: InHeader, size: number, value: Buffer): Buffer {
    if (size === 0) {
      const r = replyBuffer(h.unique, 8);
      r.writeUInt32LE(value.length, OUT_HEADER_BYTES);
      r.writeUInt32LE(0, OUT_HEADER_BYTES + 4);
      return r;
    }
    if (value.length > size) throw new FsError('ERANGE', `value of ${value.length} bytes, buffer ${size}`);
    const r = replyBuffer(h.unique, value.length);
    value.copy(r, OUT_HEADER_BYTES);
    return r;
  }

  async #rename(h: InHeader, newDir: bigint, flags: number, b: Buffer, at: number): Promise<undefined> {
    const [name, next] = readCString(b, at);
    const [newName] = readCString(b, next);
    // RENAME_EXCHANGE and RENAME_WHITEOUT have no meaning in the namespace.
    if ((flags & ~RENAME_NOREPLACE) !== 0) throw new FsError('EINVAL', `rename flags ${flags}`);
    const src = this.nodes.childPath(h.nodeid, name);
    const dst = this.nodes.childPath(newDir, newName);
    const hidden = await this.#ops.rename(src, dst, (flags & RENAME_NOREPLACE) !== 0);
    // A replaced target kept open under a hidden name: its node moves there first.
    if (hidden !== undefined) this.nodes.renamed(newDir, newName, newDir, basename(hidden));
    this.nodes.renamed(h.nodeid, name, newDir, newName);
    return undefined;
  }

  async #setattr(h: InHeader, b: Buffer): Promise<FuseAttr> {
    const ops = this.#ops;
    const valid = b.readUInt32LE(0);
    const fh = Number(b.readBigUInt64LE(8));
    const withFh = (valid & Fattr.FH) !== 0;
    const path = withFh ? this.#pathOrEmpty(h.nodeid) : this.nodes.path(h.nodeid);
    const now = Date.now();
    const time = (bit: number, nowBit: number, secOff: number, nsecOff: number): number | undefined => {
      if ((valid & bit) === 0) return undefined;
      if ((valid & nowBit) !== 0) return now;
      return Number(b.readBigUInt64LE(secOff)) * 1000 + b.readUInt32LE(nsecOff) / NS_PER_MS;
    };
    if (ops.setattr !== undefined) {
      // Everything at once: one answer carries the attributes after.
      const changes: SetattrChanges = {};
      if ((valid & Fattr.SIZE) !== 0) changes.size = Number(b.readBigUInt64LE(16));
      if ((valid & Fattr.MODE) !== 0) changes.mode = b.readUInt32LE(68);
      if ((valid & Fattr.UID) !== 0) changes.uid = b.readUInt32LE(76);
      if ((valid & Fattr.GID) !== 0) changes.gid = b.readUInt32LE(80);
      const atimeMs = time(Fattr.ATIME, Fattr.ATIME_NOW, 32, 56);
      const mtimeMs = time(Fattr.MTIME, Fattr.MTIME_NOW, 40, 60);
      if (atimeMs !== undefined) changes.atimeMs = atimeMs;
      if (mtimeMs !== undefined) changes.mtimeMs = mtimeMs;
      return ops.setattr(path, withFh ? fh : undefined, changes);
    }
    if ((valid & Fattr.SIZE) !== 0) {
      const size = Number(b.readBigUInt64LE(16));
      if (withFh) await ops.ftruncate(path, fh, size);
      else await ops.truncate(path, size);
    }
    if ((valid & Fattr.MODE) !== 0) await ops.chmod(path, b.readUInt32LE(68));
    if ((valid & (Fattr.UID | Fattr.GID)) !== 0) {
      const unchanged = 0xffff_ffff;
      await ops.chown(
        path,
        (valid & Fattr.UID) !== 0 ? b.readUInt32LE(76) : unchanged,
        (valid & Fattr.GID) !== 0 ? b.readUInt32LE(80) : unchanged,
      );
    }
    if ((valid & (Fattr.ATIME | Fattr.MTIME)) !== 0) {
      await ops.utimens(
        path,
        time(Fattr.ATIME, Fattr.ATIME_NOW, 32, 56),
        time(Fattr.MTIME, Fattr.MTIME_NOW, 40, 60),
      );
    }
    return withFh ? ops.fgetattr(path, fh) : ops.getattr(path);
  }

  #openDir(b: Buffer): { dir: OpenDir; offset: number; size: number } {
    const fh = Number(b.readBigUInt64LE(0));
    const dir = this.#dirs.get(fh);
    if (dir === undefined) throw new FsError('EBADF', `directory handle ${fh}`);
    return { dir, offset: Number(b.readBigUInt64LE(8)), size: b.readUInt32LE(16) };
  }

  async #readdir(h: InHeader, b: Buffer): Promise<Buffer> {
    const { dir, offset, size } = this.#openDir(b);
    const r = Buffer.allocUnsafe(OUT_HEADER_BYTES + size);
    let used = 0;
    for (let i = offset; i < dir.names.length; i++) {
      const name = dir.names[i] as Buffer;
      if (used + direntBytes(name.length) > size) break;
      const a = dir.attrs[i];
      used += writeDirent(r, OUT_HEADER_BYTES + used, name, i + 1, direntType(a), a?.ino);
    }
    const out = r.subarray(0, OUT_HEADER_BYTES + used);
    writeOutHeader(out, h.unique, 0);
    return out;
  }

  /**
   * READDIRPLUS: each entry with its entry_out (node id, attributes and their timeouts), so the
   * kernel fills its dentry and attribute caches without a LOOKUP per entry. Every entry sent
   * with a node id counts as a lookup (the kernel FORGETs it later), so an entry is remembered
   * only once it is known to fit; "." and ".." go with node id 0, which the kernel skips.
   */
  async #readdirPlus(h: InHeader, b: Buffer): Promise<Buffer> {
    const { dir, offset, size } = this.#openDir(b);
    const r = Buffer.allocUnsafe(OUT_HEADER_BYTES + size);
    let used = 0;
    for (let i = offset; i < dir.names.length; i++) {
      const name = dir.names[i] as Buffer;
      const bytes = ENTRY_OUT_BYTES + direntBytes(name.length);
      if (used + bytes > size) break;
      const at = OUT_HEADER_BYTES + used;
      const a = dir.attrs[i];
      if (a === undefined) r.fill(0, at, at + ENTRY_OUT_BYTES);
      else {
        const id = this.nodes.remember(h.nodeid, name.toString());
        this.nodes.sawAttr(id, stamp(a));
        writeEntryOut(r, at, id, a, this.#opts.entryTimeoutMs, this.#opts.attrTimeoutMs);
      }
      writeDirent(r, at + ENTRY_OUT_BYTES, name, i + 1, direntType(a), a?.ino);
      used += bytes;
    }
    const out = r.subarray(0, OUT_HEADER_BYTES + used);
    writeOutHeader(out, h.unique, 0);
    return out;
  }
}

/** d_type of an entry: the mode's type bits (DT_REG, DT_DIR, DT_LNK), unknown without attributes. */
function direntType(a: FuseAttr | undefined): number {
  return a === undefined ? DT_UNKNOWN : (a.mode & S_IFMT) >>> 12;
}

/** What auto_cache compares across opens: the file's mtime and size. */
function stamp(a: FuseAttr): string {
  return `${a.mtimeMs}:${a.size}`;
}
