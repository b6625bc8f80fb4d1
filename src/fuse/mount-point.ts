/**
 * Getting the mount point ready: a FUSE mount left by a crashed predecessor answers ENOTCONN
 * ("transport endpoint is not connected") and is detached first; a live mount, a file, or a
 * non-empty directory is refused with a clear message (as the peer does: "Mnt … is not empty").
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { StrataError, UsageError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';

const run = promisify(execFile);
/** Bound on the helper that detaches a stale mount. */
const UNMOUNT_TIMEOUT_MS = 10_000;

export interface MountEntry {
  mountPoint: string;
  /** The mount's device, "major:minor" (for FUSE the minor names its fusectl connection). */
  device: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mounts of this process's namespace (from /proc/self/mountinfo). */
export async function listMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [left, right] = line.split(' - ');
    const fields = (left ?? '').split(' ');
    const tail = (right ?? '').split(' ');
    if (fields.length < 5 || tail.length < 2) continue;
    out.push({
      mountPoint: unescapeMountinfo(fields[4] as string),
      device: fields[2] as string,
      fsType: tail[0] as string,
      source: unescapeMountinfo(tail[1] as string),
    });
  }
  return out;
}

/** The topmost mount at `path`, if any. */
export async function mountAt(path: string): Promise<MountEntry | undefined> {
  return (await listMounts()).filter((m) => m.mountPoint === path).pop();
}

/** Detaches a FUSE mount (lazily, so busy descriptors do not block it). */
export async function detach(path: string): Promise<void> {
  try {
    await run('fusermount', ['-uz', path], { timeout: UNMOUNT_TIMEOUT_MS });
  } catch {
    await run('umount', ['-l', path], { timeout: UNMOUNT_TIMEOUT_MS });
  }
}

export interface PrepareOptions {
  /** The `nonempty` mount option: mount over a directory that has entries. */
  allowNonEmpty: boolean;
  log: Logger;
}

export async function prepareMountPoint(path: string, opts: PrepareOptions): Promise<void> {
  const existing = await mountAt(path);
  if (existing !== undefined) {
    const alive = await stat(path).then(
      () => true,
      (err: NodeJS.ErrnoException) => err.code !== 'ENOTCONN' && err.code !== 'ECONNABORTED',
    );
    if (alive || !existing.fsType.startsWith('fuse')) {
      throw new UsageError(
        `mnt_path ${path} is already a mount point (${existing.fsType} from ${existing.source}); unmount it or choose another --mnt-path`,
      );
    }
    opts.log.warn(
      { path, fsType: existing.fsType },
      'detaching a stale FUSE mount left by a previous process',
    );
    try {
      await detach(path);
    } catch (err) {
      throw new StrataError(
        'STRATA_INTERNAL',
        `mnt_path ${path}: could not detach the stale mount (${(err as Error).message})`,
        {
          cause: err,
        },
      );
    }
  }
  await mkdir(path, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`mnt_path ${path}: cannot create the directory (${err.code ?? err.message})`);
  });
  const st = await stat(path);
  if (!st.isDirectory()) throw new UsageError(`mnt_path ${path} is not a directory`);
  if (!opts.allowNonEmpty && (await readdir(path)).length > 0) {
    throw new UsageError(`mnt_path ${path} is not empty (empty it, or pass -o nonempty to mount over it)`);
  }
}
