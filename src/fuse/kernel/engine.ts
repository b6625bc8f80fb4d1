/**
 * The `kernel` engine: Strata's own FUSE server speaking the Linux kernel protocol on /dev/fuse
 * (no libfuse, no native addon). A worker thread blocks reading requests and hands each buffer to
 * the event loop (transferred, not copied); the session serves requests concurrently and writes
 * each reply with one write(2). What this gives over fuse-native: the caller's uid/gid/pid,
 * exact timestamps in setattr, 1 MiB requests (max_pages), renameat2 flags, and no thread
 * per request waiting on our event loop.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { MessageChannel, Worker } from 'node:worker_threads';
import { StrataError, UsageError } from '../../common/errors.js';
import type { DirectReadStats, FuseBinding, FuseOperations, MountOptions, MountedFs } from '../binding.js';
import { DIRECT_STAT_BYTES, DIRECT_STAT_REQUESTS, DIRECT_STAT_SLOTS } from './direct-reads.js';
import type { DirectReadMessage } from './direct-reads.js';
import { abortConnection, connectionOf, mountWithFd, unmountLazy } from './mount.js';
import { PAGE_SIZE_BYTES } from './protocol.js';
import { releaseSlot } from './reader-thread.js';
import type { ReaderEnd, ReaderThreadData, SlotRequest } from './reader-thread.js';
import { FuseSession } from './session.js';
import type { SessionStats } from './session.js';

export const FUSE_DEVICE = '/dev/fuse';
/** Requests smaller than this are copied out of the reader's slot (most are headers and a name). */
const COPY_BELOW_BYTES = 64 * 1024;
/**
 * Request slots shared with the reader thread (each max_write plus a page): how many large
 * requests (writes) may be in service at once before the reader waits for one to finish.
 */
const READER_SLOTS = 16;
/** How long a lazy unmount may take to end the session before the connection is aborted. */
const UNMOUNT_SETTLE_MS = 2_000;
/** How long an aborted connection may take to end the session (the reader's read returning). */
const ABORT_SETTLE_MS = 5_000;

/** Whether `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface KernelBindingOptions {
  /** Told when the session ends without our unmount (someone unmounted it, or the kernel aborted it). */
  onEnd?: (reason: string) => void;
  /** A request failed inside the session (malformed); for the log. */
  onInternalError?: (err: unknown, opcode: number) => void;
}

export class KernelMount implements MountedFs {
  readonly mountPath: string;
  readonly #session: FuseSession;
  readonly #ended: Promise<string>;
  readonly #connection: number | undefined;
  readonly #directStats: Float64Array;
  #unmounting: Promise<void> | undefined;

  constructor(
    mountPath: string,
    session: FuseSession,
    ended: Promise<string>,
    connection: number | undefined,
    directStats: Float64Array,
  ) {
    this.mountPath = mountPath;
    this.#session = session;
    this.#ended = ended;
    this.#connection = connection;
    this.#directStats = directStats;
  }

  /** READs the reader thread answered itself (direct-reads.ts). */
  readonly directReads = (): DirectReadStats => ({
    requests: this.#directStats[DIRECT_STAT_REQUESTS] as number,
    bytes: this.#directStats[DIRECT_STAT_BYTES] as number,
  });

  get stats(): SessionStats {
    return this.#session.stats;
  }

  /** Resolves with the reason once the kernel ended the session (ENODEV after unmounting). */
  get ended(): Promise<string> {
    return this.#ended;
  }

  /**
   * Lazy unmount, then the session's end. A detached mount the kernel keeps alive (a descriptor
   * still open on it, a request of a killed process still pending) would leave the reader
   * thread blocked in read(2), and Node cannot exit while a thread is in a system call: after
   * UNMOUNT_SETTLE_MS the connection is aborted (what closing libfuse's descriptor does).
   */
  unmount(): Promise<void> {
    this.#unmounting ??= (async () => {
      await unmountLazy(this.mountPath);
      if (await settlesWithin(this.#ended, UNMOUNT_SETTLE_MS)) return;
      if (this.#connection === undefined) {
        throw new StrataError(
          'STRATA_INTERNAL',
          `${this.mountPath}: the detached FUSE session did not end and its connection number is unknown`,
        );
      }
      await abortConnection(this.#connection);
      if (!(await settlesWithin(this.#ended, ABORT_SETTLE_MS))) {
        throw new StrataError(
          'STRATA_INTERNAL',
          `${this.mountPath}: FUSE connection ${this.#connection} aborted but the session did not end`,
        );
      }
    })();
    return this.#unmounting;
  }
}

export class KernelFuseBinding implements FuseBinding {
  readonly name = 'kernel';
  readonly #opts: KernelBindingOptions;

  constructor(opts: KernelBindingOptions = {}) {
    this.#opts = opts;
  }

  async mount(ops: FuseOperations, opts: MountOptions): Promise<KernelMount> {
    // mount(2) of a FUSE file system without fusermount's setuid help needs root.
    if (process.getuid !== undefined && process.getuid() !== 0) {
      throw new UsageError(
        `fuse.binding = "kernel" mounts as root (uid ${process.getuid()} here): run strata fuse as root, or set [fuse] binding = "fuse-native"`,
      );
    }
    let fd: number;
    try {
      fd = openSync(FUSE_DEVICE, 'r+');
    } catch (err) {
      throw new StrataError(
        'STRATA_UNAVAILABLE',
        `cannot open ${FUSE_DEVICE} (${(err as NodeJS.ErrnoException).code ?? String(err)}): the kernel binding needs the fuse module and root`,
        { cause: err },
      );
    }
    try {
      await mountWithFd({
        fd,
        mountPath: opts.mountPath,
        fsName: opts.fsName,
        subtype: opts.subtype,
        maxReadBytes: opts.maxWriteBytes,
        options: opts.extraOptions,
      });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const connection = await connectionOf(opts.mountPath).catch(() => undefined);
    let closed = false;
    // Grants of direct reads go to the reader thread over their own port (see direct-reads.ts).
    const directChannel = new MessageChannel();
    const directStats = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT * DIRECT_STAT_SLOTS);
    const post = (m: DirectReadMessage): void => directChannel.port1.postMessage(m);
    const session = new FuseSession(
      ops,
      {
        write(reply) {
          if (closed) return;
          try {
            writeSync(fd, reply);
          } catch (err) {
            // ENOENT: the request was interrupted and the kernel no longer waits for it;
            // ENODEV: the session is over (the reader thread sees it too).
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== 'ENOENT' && code !== 'ENODEV') throw err;
          }
        },
      },
      {
        entryTimeoutMs: opts.entryTimeoutMs,
        attrTimeoutMs: opts.attrTimeoutMs,
        maxWriteBytes: opts.maxWriteBytes,
        requestTimeoutMs: opts.requestTimeoutMs,
        ...(this.#opts.onInternalError === undefined ? {} : { onInternalError: this.#opts.onInternalError }),
        ...(opts.directReads === undefined
          ? {}
          : {
              direct: {
                source: opts.directReads,
                grant: (fh, plan) => post({ kind: 'grant', fh, plan }),
                revoke: (fh) => post({ kind: 'revoke', fh }),
                released: (fh) => post({ kind: 'released', fh }),
              },
            }),
      },
    );
    const slotBytes = opts.maxWriteBytes + PAGE_SIZE_BYTES;
    const data: ReaderThreadData = {
      fd,
      slots: new SharedArrayBuffer(slotBytes * READER_SLOTS),
      slotBytes,
      slotCount: READER_SLOTS,
      control: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (READER_SLOTS + 1)),
      copyBelowBytes: COPY_BELOW_BYTES,
      ...(opts.directReads === undefined
        ? {}
        : { direct: { port: directChannel.port2, stats: directStats, maxReadBytes: opts.maxWriteBytes } }),
    };
    const control = new Int32Array(data.control);
    const worker = new Worker(new URL('./reader-thread.js', import.meta.url), {
      workerData: data,
      transferList: [directChannel.port2],
    });
    // A reader blocked on a lazily unmounted but busy mount must not keep the process alive.
    worker.unref();
    const ended = new Promise<string>((resolve) => {
      const finish = (reason: string): void => {
        if (closed) return;
        closed = true;
        session.close();
        directChannel.port1.close();
        closeSync(fd);
        resolve(reason);
        this.#opts.onEnd?.(reason);
      };
      worker.on('message', (msg: ArrayBuffer | SlotRequest | ReaderEnd) => {
        if (msg instanceof ArrayBuffer) session.handle(Buffer.from(msg));
        else if ('end' in msg) finish(`${msg.end}: ${msg.message}`);
        else {
          session.handle(Buffer.from(data.slots, msg.slot * slotBytes, msg.bytes), () =>
            releaseSlot(control, READER_SLOTS, msg.slot),
          );
        }
      });
      worker.on('error', (err) => finish(`reader thread failed: ${err.message}`));
      worker.on('exit', (code) => finish(`reader thread exited with ${code}`));
    });
    return new KernelMount(opts.mountPath, session, ended, connection, new Float64Array(directStats));
  }
}
