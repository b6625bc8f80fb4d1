/**
 * The persist queue of `async` mounts: a file written under one is queued durably (in the
 * MetaStore, in the same moment it is created) and copied to the UFS by a worker once it is
 * complete, with retries and backoff until it succeeds. The queue survives master restarts (it
 * is read back from the store) and worker restarts (a failed or lost task is retried, on another
 * holder of the blocks when there is one). Until a file is persisted its blocks are never
 * offered for dropping (only files with a UFS copy are) and are pinned on their workers.
 */
import { Packr } from 'msgpackr';
import { FsError, StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { MetaStore } from '../../meta/index.js';
import type { WorkerAddress } from '../../protocol/types.js';
import { PersistFile } from '../../protocol/ufs-worker-calls.js';
import type { UfsValidatorWire } from '../../protocol/ufs-types.js';
import type { BlockManager } from '../blocks/block-manager.js';
import { realBlockIds } from '../namespace/index.js';
import type { FileInode, Namespace } from '../namespace/index.js';
import { keyId, persistKey, persistPrefix } from './keys.js';
import type { MountManager } from './mount-manager.js';
import type { MountRecord } from './mount-table.js';
import type { UfsSync } from './ufs-sync.js';
import type { WorkerClients } from './worker-clients.js';

/** Entries examined per pass. */
export const PERSIST_SCAN_BATCH = 1000;
/** First retry delay after a failure; doubles per attempt up to the maximum. */
export const PERSIST_RETRY_BASE_MS = 1000;
export const PERSIST_RETRY_MAX_MS = 5 * 60 * 1000;
/** Deadline of one persist task (a whole file, streamed to the UFS by one worker). */
export const PERSIST_DEADLINE_MS = 60 * 60 * 1000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

interface Entry {
  mountId: number;
  attempts: number;
  /** Not before this time (backoff after a failure; files still being written wait too). */
  nextAtMs: number;
  lastError?: string;
}

export interface PersistQueueOptions {
  store: MetaStore;
  namespace: Namespace;
  mounts: MountManager;
  sync: UfsSync;
  blocks: BlockManager;
  workers: WorkerClients;
  /** A live worker, for files without blocks. */
  anyWorker: () => WorkerAddress | undefined;
  /** Pins or unpins blocks on the workers holding them. */
  pin: (blockIds: readonly number[], pinned: boolean) => void;
  /** Tasks running at once. */
  concurrency: number;
  log: Logger;
  clock?: () => number;
}

export interface PersistStats {
  queued: number;
  running: number;
  persisted: number;
  failures: number;
}

/** Whether a located block list still is the one a task persisted. */
function sameBlocks(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export class PersistQueue {
  readonly #o: PersistQueueOptions;
  readonly #clock: () => number;
  readonly #running = new Map<number, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | undefined;
  #stopped = false;
  #queued = 0;
  #persisted = 0;
  #failures = 0;

  constructor(opts: PersistQueueOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? Date.now;
  }

  stats(): PersistStats {
    return {
      queued: this.#queued,
      running: this.#running.size,
      persisted: this.#persisted,
      failures: this.#failures,
    };
  }

  /** Queues a file (idempotent). Durable when the promise resolves. */
  async enqueue(fileId: number, mount: MountRecord): Promise<void> {
    await this.#o.store.transaction((tx) => {
      if (tx.get(persistKey(fileId)) !== undefined) return;
      const e: Entry = { mountId: mount.mountId, attempts: 0, nextAtMs: 0 };
      tx.put(persistKey(fileId), packr.pack(e));
    });
    this.kick();
  }

  /** Files of a mount still queued. */
  async pendingFor(mount: MountRecord): Promise<number> {
    const rows = await this.#o.store.scan({ prefix: persistPrefix() });
    return rows.filter((r) => (packr.unpack(r.value) as Entry).mountId === mount.mountId).length;
  }

  /** Starts the periodic passes (a pass runs at least every `intervalMs`, and on every enqueue). */
  start(intervalMs: number): void {
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.#timer.unref();
    this.kick();
  }

  kick(): void {
    if (this.#stopped || this.#pass !== undefined) return;
    this.#pass = this.#runPass()
      .catch((err: unknown) => this.#o.log.error({ err: String(err) }, 'persist pass failed'))
      .finally(() => {
        this.#pass = undefined;
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#pass;
    await Promise.allSettled([...this.#running.values()]);
  }

  /** Runs until every persist in flight has ended (tests). */
  async idle(): Promise<void> {
    await this.#pass;
    await Promise.allSettled([...this.#running.values()]);
  }

  async #runPass(): Promise<void> {
    const rows = await this.#o.store.scan({ prefix: persistPrefix(), limit: PERSIST_SCAN_BATCH });
    this.#queued = rows.length;
    const now = this.#clock();
    for (const row of rows) {
      if (this.#stopped || this.#running.size >= this.#o.concurrency) break;
      const fileId = keyId(row.key);
      const e = packr.unpack(row.value) as Entry;
      if (e.nextAtMs > now || this.#running.has(fileId)) continue;
      const p = this.#persist(fileId, e).finally(() => {
        this.#running.delete(fileId);
        // A slot is free: look for more work at once.
        this.kick();
      });
      this.#running.set(fileId, p);
    }
  }

  async #drop(fileId: number): Promise<void> {
    await this.#o.store.delete(persistKey(fileId));
  }

  async #retry(fileId: number, e: Entry, delayMs: number, error?: string): Promise<void> {
    const next: Entry = {
      ...e,
      nextAtMs: this.#clock() + delayMs,
      ...(error === undefined ? {} : { lastError: error }),
    };
    await this.#o.store.put(persistKey(fileId), packr.pack(next));
  }

  async #persist(fileId: number, e: Entry): Promise<void> {
    const found = await this.#o.namespace.inodeWithPath(fileId);
    if (found === undefined || found.inode.type !== 'file') {
      await this.#drop(fileId); // deleted before it was persisted: nothing to do
      return;
    }
    const file = found.inode;
    // Still being written: where it is now is not where it will be (a file written outside the
    // mounts is queued before its commit renames it in; see MountService #completeInto).
    if (file.state === 'writing') {
      await this.#retry(fileId, e, PERSIST_RETRY_BASE_MS);
      return;
    }
    const r = this.#o.mounts.table.resolve(found.path);
    if (r === undefined || r.mount.mountId !== e.mountId) {
      await this.#drop(fileId); // moved out of its mount, or unmounted
      return;
    }
    const blockIds = realBlockIds(file.blocks);
    this.#o.pin(blockIds, true);
    try {
      const validator = await this.#send(file, r.mount, r.ufsPath);
      const now = await this.#o.namespace.inodeById(fileId);
      if (now?.type !== 'file' || !sameBlocks(now.blocks, file.blocks) || now.length !== file.length) {
        // Rewritten while it was copied: copy the new version (the entry stays).
        await this.#retry(fileId, { ...e, attempts: 0 }, 0);
        return;
      }
      await this.#o.namespace.setUfsState(fileId, {
        ...this.#o.sync.ufsState(r.mount, validator),
        sinceMs: this.#clock(),
      });
      await this.#drop(fileId);
      this.#o.pin(blockIds, false);
      this.#persisted++;
      this.#o.log.info({ fileId, path: found.path, bytes: file.length }, 'persisted to the UFS');
    } catch (err) {
      this.#failures++;
      const attempts = e.attempts + 1;
      const delay = Math.min(PERSIST_RETRY_MAX_MS, PERSIST_RETRY_BASE_MS * 2 ** Math.min(20, attempts - 1));
      const msg = err instanceof Error ? err.message : String(err);
      this.#o.log.warn(
        { fileId, path: found.path, attempts, retryInMs: delay, err: msg },
        'persist failed; will retry',
      );
      await this.#retry(fileId, { ...e, attempts }, delay, msg).catch(() => undefined);
    }
  }

  /** Has a worker holding the file's blocks write it to the UFS; answers with the object's version. */
  async #send(file: FileInode, mount: MountRecord, ufsPath: string): Promise<UfsValidatorWire> {
    return persistBlocks(this.#o.anyWorker, this.#o.workers, {
      mountId: mount.mountId,
      ufsPath,
      blocks: locatedBlocks(this.#o.blocks, file.blocks),
      length: file.length,
    });
  }
}

export interface PersistTask {
  mountId: number;
  ufsPath: string;
  blocks: { blockId: number; length: number; workers: WorkerAddress[] }[];
  length: number;
}

/** The file's blocks with the live workers holding each. */
export function locatedBlocks(
  blocks: BlockManager,
  flat: readonly number[],
): { blockId: number; length: number; workers: WorkerAddress[] }[] {
  const out: { blockId: number; length: number; workers: WorkerAddress[] }[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const blockId = flat[i] as number;
    const length = flat[i + 1] as number;
    out.push({
      blockId,
      length,
      workers: blockId === 0 ? [] : blocks.readableReplicas(blockId).map((x) => x.address),
    });
  }
  return out;
}

/**
 * Sends a persist task to the worker holding most of the blocks (it reads the rest from the
 * others); on failure, tries the next candidate once.
 */
export async function persistBlocks(
  anyWorker: () => WorkerAddress | undefined,
  workers: WorkerClients,
  task: PersistTask,
): Promise<UfsValidatorWire> {
  const missing = task.blocks.find((b) => b.blockId !== 0 && b.length > 0 && b.workers.length === 0);
  if (missing !== undefined) {
    throw new FsError('EIO', `block ${missing.blockId} has no live copy: the file cannot be persisted now`);
  }
  const votes = new Map<string, { address: WorkerAddress; blocks: number }>();
  for (const b of task.blocks) {
    for (const w of b.workers) {
      const v = votes.get(w.workerId) ?? { address: w, blocks: 0 };
      v.blocks++;
      votes.set(w.workerId, v);
    }
  }
  const ranked = [...votes.values()].sort((a, b) => b.blocks - a.blocks).map((v) => v.address);
  if (ranked.length === 0) {
    // An empty file (no blocks): any worker writes the empty object.
    const any = anyWorker();
    if (any === undefined) throw new StrataError('STRATA_UNAVAILABLE', 'no live worker to persist the file');
    ranked.push(any);
  }
  let lastErr: unknown;
  for (const w of ranked.slice(0, 2)) {
    try {
      return await workers.get(w).call(PersistFile, task, { deadlineMs: PERSIST_DEADLINE_MS });
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new FsError('EIO', 'persist failed');
}
