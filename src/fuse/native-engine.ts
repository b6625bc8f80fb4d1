/**
 * The `@cocalc/fuse-native` engine: libfuse 2's high-level (path-based) API through a Node
 * addon. libfuse runs its multi-threaded loop on its own threads; each request blocks its thread
 * until the JavaScript answer comes back, so requests run concurrently in our event loop. The
 * mount itself is made from the main thread (the addon's `fuse_native_mount`).
 *
 * What this library does not give us (said in docs/fuse.md): the caller's uid/gid (so the mount
 * checks permissions in the kernel with `default_permissions`, and files are created as the
 * mount's owner), the open flags of `create`, and a correct mtime in `utimens` (it passes atime
 * twice). max_write is bounded by libfuse 2 and the kernel to 128 KiB per request.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { StrataError } from '../common/errors.js';
import type {
  FuseAttr,
  FuseBinding,
  FuseContext,
  FuseOperations,
  FuseStatfs,
  MountOptions,
  MountedFs,
} from './binding.js';
import { errnoOf } from './errno.js';

/** The slice of fuse-native's class this engine uses (its own typings disagree with its code). */
interface NativeFuse {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  _fuseOptions: () => string;
  _op_getxattr: (signal: Signal, path: string, name: string, valueBuf: Buffer, position: number) => void;
}
type NativeFuseCtor = new (
  mnt: string,
  ops: Record<string, unknown>,
  opts: Record<string, unknown>,
) => NativeFuse;
type Signal = (res: number, ...rest: unknown[]) => void;
type Cb = (res: number, ...rest: unknown[]) => void;

const ERANGE = constants.errno.ERANGE;
/** UTIME_NOW and UTIME_OMIT ((1 << 30) - 1 and - 2 ns, tv_sec 0) after the library's ms rounding. */
const UTIME_SPECIAL_MS = Math.floor(((1 << 30) - 1) / 1e6);

function loadNative(): NativeFuseCtor {
  const require = createRequire(import.meta.url);
  try {
    return require('@cocalc/fuse-native') as NativeFuseCtor;
  } catch (err) {
    throw new StrataError(
      'STRATA_UNAVAILABLE',
      `the FUSE binding @cocalc/fuse-native could not be loaded (${(err as Error).message}); install libfuse2 and libfuse-dev and run npm ci`,
      { cause: err },
    );
  }
}

/** Milliseconds as the library's stat arrays take them (it converts numbers as ms). */
function toNativeStat(a: FuseAttr): Record<string, number> {
  return {
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    dev: 0,
    nlink: a.nlink,
    ino: a.ino,
    rdev: 0,
    blksize: a.blksize,
    blocks: a.blocks,
    atime: a.atimeMs,
    mtime: a.mtimeMs,
    ctime: a.ctimeMs,
  };
}

/** libfuse timeouts are seconds (a double). */
function seconds(ms: number): string {
  return String(ms / 1000);
}

export function nativeOptionString(opts: MountOptions): string {
  const list = [
    `fsname=${opts.fsName}`,
    `subtype=${opts.subtype}`,
    'big_writes',
    `max_write=${opts.maxWriteBytes}`,
    `entry_timeout=${seconds(opts.entryTimeoutMs)}`,
    `attr_timeout=${seconds(opts.attrTimeoutMs)}`,
    // Our inode numbers are the namespace's, so `ls -i` and hard links agree across mounts.
    'use_ino',
    // Keep the kernel page cache across opens while the file's mtime and size are unchanged.
    'auto_cache',
    ...opts.extraOptions,
  ];
  if (opts.debug) list.push('debug');
  for (const o of list) {
    if (o.includes(',') || o.length === 0)
      throw new StrataError('STRATA_USAGE', `bad FUSE option ${JSON.stringify(o)}`);
  }
  return `-o${list.join(',')}`;
}

/** The library does not say who asks: everything is done as the mount's user. */
function mountUser(): FuseContext {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: 0 };
}

/** Adapts our promise-returning operations to the library's callbacks (negative errno on failure). */
function adapt(ops: FuseOperations): Record<string, unknown> {
  const ctx = mountUser();
  const fail = (cb: Cb) => (err: unknown) => cb(-errnoOf(err));
  const done = (cb: Cb) => () => cb(0);
  const run = <T>(cb: Cb, p: () => Promise<T>, ok: (v: T) => void): void => {
    let promise: Promise<T>;
    try {
      promise = p();
    } catch (err) {
      fail(cb)(err);
      return;
    }
    promise.then(ok, fail(cb));
  };
  return {
    getattr: (path: string, cb: Cb) =>
      run(
        cb,
        () => ops.getattr(path),
        (a) => cb(0, toNativeStat(a)),
      ),
    fgetattr: (path: string, fh: number, cb: Cb) =>
      run(
        cb,
        () => ops.fgetattr(path, fh),
        (a) => cb(0, toNativeStat(a)),
      ),
    readdir: (path: string, cb: Cb) =>
      run(
        cb,
        () => ops.readdir(path),
        (names) => cb(0, names),
      ),
    open: (path: string, flags: number, cb: Cb) =>
      run(
        cb,
        () => ops.open(path, flags),
        (fh) => cb(0, fh),
      ),
    create: (path: string, mode: number, cb: Cb) =>
      run(
        cb,
        () => ops.create(path, mode, ctx),
        (fh) => cb(0, fh),
      ),
    // read/write answer with the byte count in the result slot.
    read: (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      run(
        cb,
        () => ops.read(path, fh, buf, len, pos),
        (n) => cb(n),
      ),
    write: (path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) =>
      run(
        cb,
        () => ops.write(path, fh, buf, len, pos),
        (n) => cb(n),
      ),
    flush: (path: string, fh: number, cb: Cb) => run(cb, () => ops.flush(path, fh), done(cb)),
    fsync: (path: string, dataSync: unknown, fh: number, cb: Cb) =>
      run(cb, () => ops.fsync(path, fh, Boolean(dataSync)), done(cb)),
    release: (path: string, fh: number, cb: Cb) => run(cb, () => ops.release(path, fh), done(cb)),
    truncate: (path: string, size: number, cb: Cb) => run(cb, () => ops.truncate(path, size), done(cb)),
    ftruncate: (path: string, fh: number, size: number, cb: Cb) =>
      run(cb, () => ops.ftruncate(path, fh, size), done(cb)),
    unlink: (path: string, cb: Cb) => run(cb, () => ops.unlink(path), done(cb)),
    mkdir: (path: string, mode: number, cb: Cb) => run(cb, () => ops.mkdir(path, mode, ctx), done(cb)),
    rmdir: (path: string, cb: Cb) => run(cb, () => ops.rmdir(path), done(cb)),
    rename: (src: string, dst: string, cb: Cb) => run(cb, () => ops.rename(src, dst), done(cb)),
    // The library passes symlink(target, linkpath) as (src, dest).
    symlink: (target: string, path: string, cb: Cb) =>
      run(cb, () => ops.symlink(target, path, ctx), done(cb)),
    readlink: (path: string, cb: Cb) =>
      run(
        cb,
        () => ops.readlink(path),
        (t) => cb(0, t),
      ),
    link: (existing: string, path: string, cb: Cb) => run(cb, () => ops.link(existing, path), done(cb)),
    chmod: (path: string, mode: number, cb: Cb) => run(cb, () => ops.chmod(path, mode), done(cb)),
    chown: (path: string, uid: number, gid: number, cb: Cb) =>
      run(cb, () => ops.chown(path, uid, gid), done(cb)),
    // The library hands over atime twice (mtime is lost) in whole milliseconds, and UTIME_NOW and
    // UTIME_OMIT (tv_sec 0) both arrive as UTIME_SPECIAL_MS: read that as "now" (`touch`), and
    // anything else as the time for both stamps (`touch -d`).
    utimens: (path: string, atime: number, _mtimeLost: number, cb: Cb) => {
      const t = atime === UTIME_SPECIAL_MS ? Date.now() : atime;
      run(cb, () => ops.utimens(path, t, t), done(cb));
    },
    statfs: (path: string, cb: Cb) =>
      run(
        cb,
        () => ops.statfs(path),
        (s: FuseStatfs) => cb(0, { ...s, fsid: 0, flag: 0 }),
      ),
    setxattr: (path: string, name: string, value: Buffer, _size: number, flags: number, cb: Cb) =>
      run(cb, () => ops.setxattr(path, name, Buffer.from(value), flags), done(cb)),
    // getxattr is answered by the _op_getxattr override below (it needs the caller's buffer size).
    getxattr: () => undefined,
    listxattr: (path: string, cb: Cb) =>
      run(
        cb,
        () => ops.listxattr(path),
        (names) => cb(0, names),
      ),
    removexattr: (path: string, name: string, cb: Cb) => run(cb, () => ops.removexattr(path, name), done(cb)),
  };
}

class NativeMount implements MountedFs {
  readonly mountPath: string;
  readonly #fuse: NativeFuse;
  #unmounting: Promise<void> | undefined;

  constructor(mountPath: string, fuse: NativeFuse) {
    this.mountPath = mountPath;
    this.#fuse = fuse;
  }

  unmount(): Promise<void> {
    this.#unmounting ??= new Promise<void>((resolve, reject) => {
      this.#fuse.unmount((err) => {
        if (err === null) {
          resolve();
          return;
        }
        // Someone unmounted it already (umount -l, fusermount -u): that is what we wanted.
        execFile('mountpoint', ['-q', this.mountPath], (notMounted) => {
          if (notMounted !== null) resolve();
          else
            reject(new StrataError('STRATA_INTERNAL', `unmounting ${this.mountPath} failed: ${err.message}`));
        });
      });
    });
    return this.#unmounting;
  }
}

export class NativeFuseBinding implements FuseBinding {
  readonly name = 'fuse-native';

  async mount(ops: FuseOperations, opts: MountOptions): Promise<MountedFs> {
    const Fuse = loadNative();
    const optionString = nativeOptionString(opts);
    const fuse = new Fuse(opts.mountPath, adapt(ops), { timeout: opts.requestTimeoutMs });
    fuse._fuseOptions = () => optionString;
    // The library's getxattr copies whatever we return into the caller's buffer; answer ERANGE
    // when it does not fit, and the size alone when the caller asks for it (size 0).
    fuse._op_getxattr = (signal, path, name, valueBuf) => {
      const reply = (res: number): void => signal(res, valueBuf.buffer);
      let p: Promise<Buffer>;
      try {
        p = ops.getxattr(path, name);
      } catch (err) {
        reply(-errnoOf(err));
        return;
      }
      p.then(
        (value) => {
          if (valueBuf.length === 0) return reply(value.length);
          if (value.length > valueBuf.length) return reply(-ERANGE);
          value.copy(valueBuf);
          return reply(value.length);
        },
        (err: unknown) => reply(-errnoOf(err)),
      );
    };
    await new Promise<void>((resolve, reject) => {
      fuse.mount((err) => {
        if (err === null) resolve();
        else
          reject(
            new StrataError(
              'STRATA_UNAVAILABLE',
              `mounting ${opts.mountPath} failed: ${err.message} (options ${optionString})`,
              {
                cause: err,
              },
            ),
          );
      });
    });
    return new NativeMount(opts.mountPath, fuse);
  }
}
