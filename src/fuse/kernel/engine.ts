/**
 * The `kernel` engine: Strata's own FUSE server speaking the Linux kernel protocol on /dev/fuse
 * (no libfuse, no native addon). A worker thread blocks reading requests and hands each buffer to
 * the event loop (transferred, not copied); the session serves requests concurrently and writes
 * each reply with one write(2). What this gives over fuse-native: the caller's uid/gid/pid,
 * exact timestamps in setattr, 1 MiB requests (max_pages), renameat2 flags, and no thread
 * per request waiting on our event loop.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { StrataError } from '../../common/errors.js';
import type { FuseBinding, FuseOperations, MountOptions, MountedFs } from '../binding.js';
import { mountWithFd, unmountLazy } from './mount.js';
import { PAGE_SIZE_BYTES } from './protocol.js';
import type { ReaderEnd, ReaderThreadData } from './reader-thread.js';
import { FuseSession } from './session.js';
import type { SessionStats } from './session.js';

export const FUSE_DEVICE = '/dev/fuse';
/** Requests smaller than this are copied out of the reader's buffer (most are headers and a name). */
const COPY_BELOW_BYTES = 64 * 1024;

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
  #unmounting: Promise<void> | undefined;

  constructor(mountPath: string, session: FuseSession, ended: Promise<string>) {
    this.mountPath = mountPath;
    this.#session = session;
    this.#ended = ended;
  }

  get stats(): SessionStats {
    return this.#session.stats;
  }

  /** Resolves with the reason once the kernel ended the session (ENODEV after unmounting). */
  get ended(): Promise<string> {
    return this.#ended;
  }

  unmount(): Promise<void> {
    this.#unmounting ??= unmountLazy(this.mountPath);
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
    let closed = false;
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
      },
    );
    const data: ReaderThreadData = {
      fd,
      bufferBytes: opts.maxWriteBytes + PAGE_SIZE_BYTES,
      copyBelowBytes: COPY_BELOW_BYTES,
    };
    const worker = new Worker(new URL('./reader-thread.js', import.meta.url), { workerData: data });
    // A reader blocked on a lazily unmounted but busy mount must not keep the process alive.
    worker.unref();
    const ended = new Promise<string>((resolve) => {
      const finish = (reason: string): void => {
        if (closed) return;
        closed = true;
        session.close();
        closeSync(fd);
        resolve(reason);
        this.#opts.onEnd?.(reason);
      };
      worker.on('message', (msg: ArrayBuffer | { bytes: number; buffer: ArrayBuffer } | ReaderEnd) => {
        if (msg instanceof ArrayBuffer) session.handle(Buffer.from(msg));
        else if ('end' in msg) finish(`${msg.end}: ${msg.message}`);
        else session.handle(Buffer.from(msg.buffer, 0, msg.bytes));
      });
      worker.on('error', (err) => finish(`reader thread failed: ${err.message}`));
      worker.on('exit', (code) => finish(`reader thread exited with ${code}`));
    });
    return new KernelMount(opts.mountPath, session, ended);
  }
}
