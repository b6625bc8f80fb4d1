/**
 * Read-through fills are published without fdatasync: the UFS holds their bytes, so a fill lost
 * or torn by a power failure can always be fetched again. What must never happen is serving a
 * torn file as good, so the store keeps a flag file while any unsynced fill may exist:
 *
 * - before the first non-durable writer starts, `unsynced-fills` is created and synced (its
 *   mtime marks the earliest moment an unsynced block file can have been written);
 * - every SETTLE_INTERVAL_MS (and at a clean shutdown) the published unsynced files and their
 *   directories are synced; when no unsynced fill is left or being written, the flag is removed,
 *   else its mtime moves up to the oldest start of what may still be unsynced (so a worker that
 *   fills without a pause re-verifies only its last seconds after a crash, not all it holds);
 * - at start, a flag left behind (crash or power loss) makes the store verify every block file
 *   written since (mtime ≥ the flag's − slack) end to end — trailer, length and every chunk's
 *   CRC32 — before it is served: a damaged one is dropped and reported corrupt (the master then
 *   fills it again from the UFS); the good ones are synced and the flag removed.
 *
 * Blocks whose only copy is in Strata (client writes, replication, moves) are always synced
 * before they are published; this never applies to them.
 */
import { open, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { fsyncDir } from './fs-util.js';

export const UNSYNCED_FLAG_FILE = 'unsynced-fills';
/** How often unsynced fills are synced in the background (bounds the re-verification at start). */
export const SETTLE_INTERVAL_MS = 10_000;
/**
 * Block files written up to this long before the flag are verified too at start (clock steps,
 * mtime granularity): a few extra verifications, never a missed one.
 */
export const FLAG_MTIME_SLACK_MS = 60_000;

export class UnsyncedFills {
  readonly #flagPath: string;
  readonly #log: Logger;
  /** Published unsynced block files → their directory and when they were published (a count). */
  readonly #published = new Map<string, { dir: string; seq: number }>();
  #seq = 0;
  /** Open non-durable writers → when each started (ms). */
  readonly #open = new Map<number, number>();
  #nextToken = 1;
  /** The flag's mtime as last set (ms). */
  #stampMs = 0;
  #flagged: boolean;
  /** Flag creations and removals, in order. */
  #flagOps: Promise<void> = Promise.resolve();
  #settling: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;

  /** `flagged`: the flag file exists already (left by a crash, being handled by recovery). */
  constructor(root: string, log: Logger, flagged = false) {
    this.#flagPath = join(root, UNSYNCED_FLAG_FILE);
    this.#log = log;
    this.#flagged = flagged;
  }

  static flagPath(root: string): string {
    return join(root, UNSYNCED_FLAG_FILE);
  }

  /** The flag's mtime when a previous run left it (unsynced fills may be torn), else undefined. */
  static async leftFlagMs(root: string): Promise<number | undefined> {
    try {
      return (await stat(join(root, UNSYNCED_FLAG_FILE))).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Unsynced files published and not yet synced (for tests and metrics). */
  get pending(): number {
    return this.#published.size;
  }

  /** Syncs in the background every SETTLE_INTERVAL_MS. */
  start(): void {
    this.#timer ??= setInterval(() => {
      void this.settle().catch((err: unknown) =>
        this.#log.warn({ err }, 'syncing read-through fills failed'),
      );
    }, SETTLE_INTERVAL_MS);
    this.#timer.unref();
  }

  /**
   * A non-durable writer starts: the flag exists (durably) before it writes a byte. Returns the
   * token to pass to endWriter.
   */
  async beginWriter(): Promise<number> {
    const token = this.#nextToken++;
    this.#open.set(token, Date.now());
    try {
      if (!this.#flagged) {
        this.#flagged = true;
        this.#flagOps = this.#flagOps.then(() => this.#createFlag());
      }
      await this.#flagOps;
      return token;
    } catch (err) {
      this.#open.delete(token);
      this.#flagged = false;
      this.#flagOps = Promise.resolve();
      throw err;
    }
  }

  /** A non-durable writer ended: `published` names its file when it was published unsynced. */
  endWriter(token: number, published?: { path: string; dir: string }): void {
    this.#open.delete(token);
    if (published !== undefined)
      this.#published.set(published.path, { dir: published.dir, seq: ++this.#seq });
  }

  /** Adds files found at start that must be synced before the flag goes. */
  adopt(path: string, dir: string): void {
    this.#published.set(path, { dir, seq: ++this.#seq });
  }

  /**
   * Syncs every unsynced file published so far and their directories; removes the flag when no
   * unsynced fill is left or being written. Concurrent calls share one pass.
   */
  settle(): Promise<void> {
    this.#settling ??= this.#settleOnce().finally(() => {
      this.#settling = undefined;
    });
    return this.#settling;
  }

  /** Stops the timer and syncs what is left (a clean shutdown leaves no flag). */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.settle();
    await this.#flagOps;
  }

  async #settleOnce(): Promise<void> {
    if (!this.#flagged) return;
    // Everything unsynced after this pass was started by a writer open now or later.
    let markMs = Date.now();
    for (const startedMs of this.#open.values()) markMs = Math.min(markMs, startedMs);
    const files = [...this.#published];
    const dirs = new Set<string>();
    for (const [path, { dir }] of files) {
      if (await syncFileIfExists(path)) dirs.add(dir);
    }
    for (const dir of dirs) await fsyncDir(dir);
    // A path published again meanwhile (the block filled anew) stays for the next pass.
    for (const [path, { seq }] of files)
      if (this.#published.get(path)?.seq === seq) this.#published.delete(path);
    // Decided synchronously: a writer starting from here on creates the flag again after this
    // removal (the operations are chained in order).
    if (this.#open.size === 0 && this.#published.size === 0 && this.#flagged) {
      this.#flagged = false;
      // A failed removal only means a needless verification at the next start.
      this.#flagOps = this.#flagOps
        .then(() => this.#removeFlag())
        .catch((err: unknown) =>
          this.#log.warn({ err, path: this.#flagPath }, 'cannot remove the unsynced-fills flag'),
        );
      await this.#flagOps;
    } else if (this.#flagged && markMs > this.#stampMs) {
      // Files published after the snapshot were written by writers open at markMs or later.
      this.#flagOps = this.#flagOps
        .then(() => this.#stampFlag(markMs))
        .catch((err: unknown) =>
          this.#log.warn({ err, path: this.#flagPath }, 'cannot update the unsynced-fills flag'),
        );
      await this.#flagOps;
    }
  }

  /** Moves the flag's mtime up to `ms` (durably): recovery verifies files written since. */
  async #stampFlag(ms: number): Promise<void> {
    if (!this.#flagged) return;
    await utimes(this.#flagPath, ms / 1000, ms / 1000);
    await syncFile(this.#flagPath);
    this.#stampMs = ms;
  }

  async #createFlag(): Promise<void> {
    this.#stampMs = Date.now();
    await writeFile(this.#flagPath, `${new Date().toISOString()}\n`);
    await syncFile(this.#flagPath);
    await fsyncDir(dirname(this.#flagPath));
  }

  async #removeFlag(): Promise<void> {
    try {
      await unlink(this.#flagPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await fsyncDir(dirname(this.#flagPath));
  }
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fdatasync of a file that may have been moved or deleted meanwhile (then there is nothing to do). */
async function syncFileIfExists(path: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    await fh.datasync();
    return true;
  } finally {
    await fh.close();
  }
}
