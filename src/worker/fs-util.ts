/**
 * Small durable-file helpers: fsync of a directory (so a rename or an unlink survives a crash)
 * and an atomic small-file write (temp file, fsync, rename, fsync of the directory).
 */
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Directory syncs shared by concurrent callers (group commit): a caller that renamed a file into
 * a directory waits for a sync that started after its rename. While one sync of a directory runs,
 * every caller that arrives meanwhile shares the single next one, so N blocks published at once
 * cost about two directory syncs instead of N.
 */
export class DirSyncer {
  readonly #dirs = new Map<string, { running: Promise<void>; next: Promise<void> | undefined }>();
  readonly #syncFn: (dir: string) => Promise<void>;

  /** `syncFn` is replaced in tests to count syncs. */
  constructor(syncFn: (dir: string) => Promise<void> = fsyncDir) {
    this.#syncFn = syncFn;
  }

  sync(dir: string): Promise<void> {
    const state = this.#dirs.get(dir);
    if (state === undefined) return this.#start(dir);
    // The running sync may have begun before our rename: join the one after it.
    state.next ??= state.running.catch(() => undefined).then(() => this.#start(dir));
    return state.next;
  }

  #start(dir: string): Promise<void> {
    const running = this.#syncFn(dir).finally(() => {
      const s = this.#dirs.get(dir);
      if (s?.running !== running) return;
      if (s.next === undefined) this.#dirs.delete(dir);
    });
    const state = this.#dirs.get(dir);
    if (state === undefined) this.#dirs.set(dir, { running, next: undefined });
    else {
      state.running = running;
      state.next = undefined;
    }
    return running;
  }
}

export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** unlink that treats "already gone" as success. */
export async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
