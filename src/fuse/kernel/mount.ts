/**
 * Making and removing the kernel mount without libfuse: open /dev/fuse, then mount(8) with the
 * descriptor inherited as fd 3 (`-i`: no mount.fuse helper, `-n`: no mtab). The kernel takes the
 * connection from `fd=3` and the mount lives on after mount(8) exits, served through our copy
 * of the descriptor. Options are split into what the kernel's fuse takes, the generic VFS flags
 * mount(8) turns into mount(2) flags, and libfuse options that mean something to us elsewhere;
 * anything else is refused with a clear line (the kernel would refuse it with EINVAL).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { StrataError, UsageError } from '../../common/errors.js';
import { mountAt } from '../mount-point.js';

const run = promisify(execFile);
/** Bound on mount(8) and umount(8). */
const MOUNT_TIMEOUT_MS = 15_000;
/** The descriptor number mount(8) sees /dev/fuse as. */
const CHILD_FD = 3;

/** Options the kernel's fuse file system parses itself. */
const KERNEL_OPTIONS = new Set(['allow_other', 'default_permissions']);
const KERNEL_VALUE_OPTIONS = new Set(['max_read', 'blksize']);
/** Generic mount flags (mount(8) turns them into MS_* flags). */
const VFS_OPTIONS = new Set([
  'ro',
  'rw',
  'nosuid',
  'suid',
  'nodev',
  'dev',
  'noexec',
  'exec',
  'noatime',
  'atime',
  'relatime',
  'norelatime',
  'strictatime',
  'nodiratime',
  'diratime',
  'sync',
  'async',
  'dirsync',
  'lazytime',
  'nolazytime',
]);
/**
 * libfuse options: handled elsewhere by this engine (nonempty by the mount-point check, the
 * timeouts and max_write by `[fuse]` keys, use_ino and auto_cache are always on) or meaningless
 * without libfuse; accepted so configurations written for fuse-native keep working.
 */
const LIBFUSE_OPTIONS = new Set([
  'nonempty',
  'big_writes',
  'use_ino',
  'auto_cache',
  'kernel_cache',
  'debug',
  'hard_remove',
]);
const LIBFUSE_VALUE_OPTIONS = new Set(['fsname', 'subtype', 'max_write', 'entry_timeout', 'attr_timeout']);

export interface KernelMountRequest {
  fd: number;
  mountPath: string;
  fsName: string;
  subtype: string;
  maxReadBytes: number;
  options: readonly string[];
}

/** The `-o` string mount(8) gets; throws a UsageError naming an option nobody understands. */
export function kernelMountOptions(req: Omit<KernelMountRequest, 'mountPath'>): string {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const out = [`fd=${CHILD_FD}`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
  let maxRead = req.maxReadBytes;
  for (const o of req.options) {
    const eq = o.indexOf('=');
    const name = eq < 0 ? o : o.slice(0, eq);
    if (o.includes(',') || o.length === 0) throw new UsageError(`bad FUSE option ${JSON.stringify(o)}`);
    if (eq < 0 && (KERNEL_OPTIONS.has(name) || VFS_OPTIONS.has(name))) {
      if (!out.includes(name)) out.push(name);
    } else if (eq >= 0 && name === 'max_read') {
      const n = Number(o.slice(eq + 1));
      if (!Number.isInteger(n) || n < 4096)
        throw new UsageError(`FUSE option ${o}: expected a byte count of at least 4096`);
      maxRead = Math.min(maxRead, n);
    } else if (eq >= 0 && KERNEL_VALUE_OPTIONS.has(name)) {
      out.push(o);
    } else if ((eq < 0 && LIBFUSE_OPTIONS.has(name)) || (eq >= 0 && LIBFUSE_VALUE_OPTIONS.has(name))) {
      // handled elsewhere (see LIBFUSE_OPTIONS)
    } else {
      throw new UsageError(
        `unknown FUSE mount option ${JSON.stringify(o)} for the kernel binding (allowed: ${[
          ...KERNEL_OPTIONS,
          ...VFS_OPTIONS,
          'max_read=N',
          ...LIBFUSE_OPTIONS,
        ].join(', ')})`,
      );
    }
  }
  out.push(`max_read=${maxRead}`);
  return out.join(',');
}

/** mount(8) with /dev/fuse as fd 3; resolves once the mount exists. */
export async function mountWithFd(req: KernelMountRequest): Promise<void> {
  const options = kernelMountOptions(req);
  const args = ['-i', '-n', '-t', `fuse.${req.subtype}`, '-o', options, req.fsName, req.mountPath];
  const child = spawn('mount', args, { stdio: ['ignore', 'pipe', 'pipe', req.fd] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), MOUNT_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) {
    throw new StrataError(
      'STRATA_UNAVAILABLE',
      `mounting ${req.mountPath} failed: mount exited with ${code ?? 'a signal'}: ${output.trim() || 'no output'} (options ${options})`,
    );
  }
}

/** Lazy unmount (open files keep working until closed); "not mounted" is success. */
export async function unmountLazy(mountPath: string): Promise<void> {
  const attempts: [string, string[]][] = [
    ['umount', ['-l', mountPath]],
    ['fusermount3', ['-uz', mountPath]],
    ['fusermount', ['-uz', mountPath]],
  ];
  let last: unknown;
  for (const [cmd, args] of attempts) {
    try {
      await run(cmd, args, { timeout: MOUNT_TIMEOUT_MS });
      return;
    } catch (err) {
      const text = `${(err as { stderr?: string }).stderr ?? ''}`;
      if (/not mounted|not found|no mount point/i.test(text)) return;
      last = err;
    }
  }
  throw new StrataError(
    'STRATA_INTERNAL',
    `unmounting ${mountPath} failed: ${(last as Error | undefined)?.message ?? 'unknown'}`,
    { cause: last },
  );
}

/** Where the kernel's fusectl file system shows one directory per FUSE connection. */
const FUSECTL_DIR = '/sys/fs/fuse/connections';

/**
 * The connection number of the FUSE mount at `mountPath`: the minor of its device in
 * /proc/self/mountinfo, which names its fusectl directory. Read from mountinfo, not stat(2): a
 * stat of our own mount from the event loop would wait on itself.
 */
export async function connectionOf(mountPath: string): Promise<number | undefined> {
  const m = await mountAt(mountPath);
  if (m === undefined || !m.fsType.startsWith('fuse')) return undefined;
  const minor = Number(m.device.split(':')[1]);
  return Number.isInteger(minor) ? minor : undefined;
}

/**
 * Ends a FUSE connection at once (fusectl's `abort`): pending and future requests fail with
 * ENOTCONN and the reader's blocked read(2) returns ENODEV. Needed after a lazy unmount the
 * kernel keeps alive (a file still open, a request still pending): a thread blocked in a system
 * call keeps Node from exiting, and libfuse's way out (cancelling the thread) does not exist
 * here. fusectl is mounted when it is not (as root; systemd usually has it mounted already).
 */
export async function abortConnection(connection: number): Promise<void> {
  const abortFile = `${FUSECTL_DIR}/${connection}/abort`;
  if (!existsSync(abortFile)) {
    await run('mount', ['-t', 'fusectl', 'fusectl', FUSECTL_DIR], { timeout: MOUNT_TIMEOUT_MS }).catch(
      () => undefined,
    );
  }
  await writeFile(abortFile, '1');
}
