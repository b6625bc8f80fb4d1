/**
 * The worker's handles on mounted UFSes. A mount's URI and options (credentials included) come
 * from the master by mount id (GetMountConfig), are held in memory only (never logged, never
 * written to disk) and are looked up again after MOUNT_CONFIG_TTL_MS so an unmount is noticed.
 */
import { FsError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { GetMountConfig } from '../protocol/mount-calls.js';
import { openUfs } from '../ufs/index.js';
import type { UnderFileSystem } from '../ufs/index.js';
import type { MasterClient } from './master-link.js';

/** How long a fetched mount configuration is used before it is asked for again. */
export const MOUNT_CONFIG_TTL_MS = 5 * 60 * 1000;
/** Mounts whose UFS handles are kept open at most (the least recently used closes first). */
export const MAX_OPEN_MOUNTS = 256;

interface Entry {
  ufs: Promise<UnderFileSystem>;
  fetchedAtMs: number;
}

export interface WorkerMountsOptions {
  master: MasterClient;
  workerId: string;
  log: Logger;
  registry?: Registry;
  clock?: () => number;
}

export class WorkerMounts {
  readonly #o: WorkerMountsOptions;
  readonly #clock: () => number;
  readonly #entries = new Map<number, Entry>();

  constructor(opts: WorkerMountsOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? Date.now;
  }

  /** The UFS of a mount (configuration fetched from the master on first use and after the TTL). */
  async ufs(mountId: number, signal?: AbortSignal): Promise<UnderFileSystem> {
    const now = this.#clock();
    const cur = this.#entries.get(mountId);
    if (cur !== undefined && now - cur.fetchedAtMs < MOUNT_CONFIG_TTL_MS) {
      this.#entries.delete(mountId);
      this.#entries.set(mountId, cur);
      return cur.ufs;
    }
    const ufs = this.#open(mountId, signal);
    const entry: Entry = { ufs, fetchedAtMs: now };
    this.#entries.set(mountId, entry);
    ufs.catch(() => {
      if (this.#entries.get(mountId) === entry) this.#entries.delete(mountId);
    });
    if (cur !== undefined) void cur.ufs.then((u) => u.close()).catch(() => undefined);
    while (this.#entries.size > MAX_OPEN_MOUNTS) {
      const [oldId, old] = this.#entries.entries().next().value as [number, Entry];
      this.#entries.delete(oldId);
      void old.ufs.then((u) => u.close()).catch(() => undefined);
    }
    return ufs;
  }

  async #open(mountId: number, signal: AbortSignal | undefined): Promise<UnderFileSystem> {
    const cfg = await this.#o.master
      .call(GetMountConfig, { mountId, workerId: this.#o.workerId }, signal === undefined ? {} : { signal })
      .catch((err: unknown) => {
        if (err instanceof FsError && err.code === 'ENOENT') {
          throw new FsError('ENOENT', `mount ${mountId} is not mounted any more`);
        }
        throw err;
      });
    this.#o.log.info({ mountId, uri: cfg.uri }, 'mount configuration received');
    return openUfs(cfg.uri, cfg.options, {
      log: this.#o.log,
      ...(this.#o.registry === undefined ? {} : { registry: this.#o.registry }),
    });
  }

  async close(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(all.map(async (e) => (await e.ufs).close()));
  }
}
