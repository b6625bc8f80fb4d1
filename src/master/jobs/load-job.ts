/**
 * Load jobs (`strata load <path>`): warm a path from its UFS into the cache. The master walks
 * the path (entering UFS metadata as it goes), and for every block cached nowhere sends a load
 * task to the worker the fill assigner chooses (the same worker a reader of that block would
 * use). Tasks run at most `perWorker` at a time on each worker; a failed task is tried once more
 * on another worker. Progress counts files and bytes found, cached and loaded; a job can be
 * cancelled (tasks in flight are abandoned, blocks already loaded stay cached).
 *
 * A job asking for `replicas` N (Fluid's DataLoad) raises each file's replication to N (never
 * lowers it), loads one copy of each uncached block from the UFS, then waits until the block
 * manager, which now wants N copies, has copied every block to N workers (worker to worker, not
 * from the UFS again). The block manager alone makes those copies: a second writer of the same
 * block on a worker would race it.
 *
 * Jobs are kept in the MetaStore (job-store.ts): a job is recorded before its submitter hears of
 * it, checkpointed while it runs and recorded when it ends. A master that stops (or loses its HA
 * term) leaves its unfinished jobs recorded as running, and the next master runs them again
 * under the same id once its workers have had time to report their blocks: blocks cached
 * meanwhile count as done, so a resumed job loads only what is still missing.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { FsError, StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { FileStatus } from '../../protocol/types.js';
import type { LoadJobStatus, UfsBlockSource } from '../../protocol/ufs-types.js';
import { LoadBlock } from '../../protocol/ufs-worker-calls.js';
import type { BlockManager } from '../blocks/block-manager.js';
import type { FileInode, Namespace } from '../namespace/index.js';
import type { FillAssigner } from '../mounts/fill-assigner.js';
import type { MountManager } from '../mounts/mount-manager.js';
import type { Resolved } from '../mounts/mount-table.js';
import { ufsPathOf } from '../mounts/mount-table.js';
import type { UfsSync } from '../mounts/ufs-sync.js';
import type { WorkerClients } from '../mounts/worker-clients.js';
import type { JobStore } from './job-store.js';

/** Finished jobs remembered for `load --status`. */
export const MAX_FINISHED_JOBS = 100;
/** Jobs running at once. */
export const MAX_RUNNING_JOBS = 16;
/** Deadline of one block load on a worker. */
export const LOAD_TASK_DEADLINE_MS = 10 * 60 * 1000;
/** Block tasks a job's walk may queue ahead of the loads. */
export const MAX_QUEUED_TASKS = 100_000;
/** How often the progress of running jobs is written to the store. */
export const LOAD_CHECKPOINT_INTERVAL_MS = 2_000;
/** How often a resumed job looks for a live worker before it starts. */
const RESUME_POLL_MS = 250;
/** Directory pages read at a time while walking. */
const WALK_PAGE = 1000;
/** A job waiting for replicas fails when no block gained a copy for this long. */
export const LOAD_REPLICAS_STALL_MS = 2 * 60 * 1000;
/** How often a job waiting for replicas looks at the block map. */
const REPLICAS_POLL_MS = 200;

export interface LoadJobsOptions {
  namespace: Namespace;
  mounts: MountManager;
  sync: UfsSync;
  blocks: BlockManager;
  assigner: FillAssigner;
  workers: WorkerClients;
  /** Load tasks running at once on one worker. */
  perWorker: number;
  /** Live workers now (bounds the tasks in flight). */
  liveWorkers: () => number;
  /** Where an uncached block of a file comes from. */
  sourceOf: (file: FileInode, r: Resolved, block: { offset: number; length: number }) => UfsBlockSource;
  /** Where jobs are recorded (absent: in memory only). */
  store?: JobStore;
  /**
   * How long after `start()` an interrupted job waits before it runs again, so that workers
   * re-register and report their blocks first (otherwise cached blocks look missing).
   */
  resumeGraceMs?: number;
  checkpointIntervalMs?: number;
  log: Logger;
  clock?: () => number;
}

class Semaphore {
  #n: number;
  readonly #waiters: (() => void)[] = [];
  constructor(n: number) {
    this.#n = n;
  }
  async take(): Promise<void> {
    if (this.#n > 0) {
      this.#n--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
  give(): void {
    const w = this.#waiters.shift();
    if (w !== undefined) w();
    else this.#n++;
  }
}

export interface LoadRequest {
  /** Copies of every block (default one; the files' replication is raised to it). */
  replicas?: number;
}

class LoadJob {
  readonly status: LoadJobStatus;
  readonly controller = new AbortController();
  /** Copies each block must end with. */
  readonly copies: number;
  /** Blocks still short of `copies` (id → length), when copies > 1. */
  readonly short = new Map<number, number>();
  done: Promise<void> = Promise.resolve();
  /** The status as last written to the store (checkpoints skip unchanged jobs). */
  savedJson = '';

  constructor(status: LoadJobStatus) {
    this.status = status;
    this.copies = status.replicas ?? 1;
  }

  static fresh(jobId: string, path: string, now: number, replicas: number | undefined): LoadJob {
    return new LoadJob({
      jobId,
      path,
      ...NO_PROGRESS,
      ...(replicas === undefined ? {} : { replicas }),
      startedAtMs: now,
    });
  }

  get finished(): boolean {
    return isFinished(this.status);
  }
}

/** Where a job starts, and starts again when it is resumed. */
const NO_PROGRESS = {
  state: 'scanning',
  totalFiles: 0,
  totalBytes: 0,
  doneFiles: 0,
  doneBytes: 0,
  loadedBytes: 0,
  failedBlocks: 0,
} as const satisfies Partial<LoadJobStatus>;

function isFinished(s: LoadJobStatus): boolean {
  return s.state === 'completed' || s.state === 'failed' || s.state === 'cancelled';
}

export class LoadJobs {
  readonly #o: LoadJobsOptions;
  readonly #clock: () => number;
  readonly #jobs = new Map<string, LoadJob>();
  readonly #slots = new Map<string, Semaphore>();
  /** Interrupted jobs found by `restore()`, run again by `start()`. */
  #toResume: LoadJob[] = [];
  #checkpointTimer: NodeJS.Timeout | undefined;
  /** Set by `stop()`: jobs aborted by a shutdown stay recorded as running, to be resumed. */
  #stopping = false;
  /** Stops resumed jobs waiting for workers when the master stops. */
  readonly #life = new AbortController();

  constructor(opts: LoadJobsOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? Date.now;
  }

  /** Reads the recorded jobs: finished ones for `--status`, unfinished ones to run again. */
  async restore(): Promise<void> {
    const store = this.#o.store;
    if (store === undefined) return;
    for (const status of await store.all()) {
      const job = new LoadJob(status);
      this.#jobs.set(status.jobId, job);
      if (!job.finished) this.#toResume.push(job);
    }
    this.#trim();
  }

  /** Starts the checkpoints and runs the interrupted jobs again (after the resume grace). */
  start(): void {
    const every = this.#o.checkpointIntervalMs ?? LOAD_CHECKPOINT_INTERVAL_MS;
    this.#checkpointTimer = setInterval(() => void this.#checkpoint(), every);
    this.#checkpointTimer.unref();
    const jobs = this.#toResume;
    this.#toResume = [];
    for (const job of jobs) {
      const st = job.status;
      this.#o.log.info({ jobId: st.jobId, path: st.path }, 'resuming an interrupted load job');
      // The walk starts again: blocks cached meanwhile count as done at once.
      Object.assign(st, { ...NO_PROGRESS, resumedAtMs: this.#clock() });
      delete st.error;
      this.#launch(job, () => this.#awaitWorkers(job.controller.signal));
    }
  }

  async submit(path: string, req: LoadRequest = {}): Promise<LoadJobStatus> {
    const r = this.#o.mounts.table.resolve(path);
    if (r === undefined) {
      throw new FsError(
        'EINVAL',
        `${path}: not under a UFS mount; load works on mounted paths (strata mount lists them)`,
        {
          details: { path },
        },
      );
    }
    const live = this.#o.liveWorkers();
    if (req.replicas !== undefined && req.replicas > live) {
      throw new FsError(
        'EINVAL',
        `${path}: ${req.replicas} copies of each block asked, but ${live} live worker(s) can hold one; ask for at most ${live}`,
        { details: { path } },
      );
    }
    const running = [...this.#jobs.values()].filter((j) => !j.finished).length;
    if (running >= MAX_RUNNING_JOBS) {
      throw new StrataError(
        'STRATA_OVERLOADED',
        `${running} load jobs are running (at most ${MAX_RUNNING_JOBS}); wait or cancel one`,
      );
    }
    const now = this.#clock();
    const id = `${now.toString(36)}-${randomBytes(3).toString('hex')}`;
    const job = LoadJob.fresh(id, path, now, req.replicas);
    // Recorded before anyone hears of it: an acknowledged job survives a master restart.
    await this.#o.store?.save(job.status);
    this.#jobs.set(id, job);
    this.#launch(job, async () => undefined);
    return { ...job.status };
  }

  get(jobId: string): LoadJobStatus {
    return { ...this.#job(jobId).status };
  }

  list(): LoadJobStatus[] {
    return [...this.#jobs.values()].map((j) => ({ ...j.status }));
  }

  async cancel(jobId: string): Promise<LoadJobStatus> {
    const job = this.#job(jobId);
    if (!job.finished) {
      job.status.state = 'cancelled';
      job.controller.abort(new StrataError('STRATA_CANCELLED', `load job ${jobId} was cancelled`));
      // Recorded at once, so a restart right after the answer does not resume it.
      await this.#o.store?.save(job.status);
    }
    return { ...job.status };
  }

  /** Waits for a job to end (tests). */
  async wait(jobId: string): Promise<LoadJobStatus> {
    const job = this.#job(jobId);
    await job.done;
    return { ...job.status };
  }

  /**
   * Stops every job without recording an end: they stay recorded as running and the next master
   * (after a restart or an HA failover) runs them again.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#life.abort();
    clearInterval(this.#checkpointTimer);
    for (const j of this.#jobs.values())
      if (!j.finished)
        j.controller.abort(
          new StrataError('STRATA_CANCELLED', 'the master is stopping; the job resumes on restart'),
        );
    await Promise.allSettled([...this.#jobs.values()].map((j) => j.done));
  }

  #launch(job: LoadJob, before: () => Promise<void>): void {
    job.done = before()
      .then(() => this.#run(job))
      .catch((err: unknown) => {
        if (job.controller.signal.aborted) {
          job.status.state = 'cancelled';
          return;
        }
        job.status.state = 'failed';
        job.status.error = err instanceof Error ? err.message : String(err);
      })
      .finally(async () => {
        if (this.#stopping) return;
        job.status.endedAtMs = this.#clock();
        this.#o.log.info({ ...job.status }, 'load job finished');
        try {
          await this.#o.store?.save(job.status);
        } catch (err) {
          this.#o.log.warn({ err, jobId: job.status.jobId }, 'could not record the end of a load job');
        }
        this.#trim();
      });
  }

  /** A resumed job waits out the grace period and for a live worker before it walks. */
  async #awaitWorkers(signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.#life.signal]);
    await delay(this.#o.resumeGraceMs ?? 0, undefined, { signal: both });
    while (this.#o.liveWorkers() === 0) await delay(RESUME_POLL_MS, undefined, { signal: both });
  }

  /** Writes the progress of running jobs that moved since the last checkpoint. */
  async #checkpoint(): Promise<void> {
    const store = this.#o.store;
    if (store === undefined) return;
    for (const job of this.#jobs.values()) {
      const json = JSON.stringify(job.status);
      if (job.finished || json === job.savedJson || this.#stopping) continue;
      try {
        await store.save({ ...job.status });
        job.savedJson = json;
      } catch (err) {
        this.#o.log.warn({ err, jobId: job.status.jobId }, 'could not checkpoint a load job');
        return;
      }
    }
  }

  #job(jobId: string): LoadJob {
    const job = this.#jobs.get(jobId);
    if (job === undefined) {
      throw new StrataError(
        'STRATA_NOT_FOUND',
        `no load job ${jobId} (the master keeps the ${MAX_FINISHED_JOBS} most recent finished jobs)`,
      );
    }
    return job;
  }

  #trim(): void {
    const finished = [...this.#jobs.values()].filter((j) => j.finished);
    for (const j of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_JOBS))) {
      this.#jobs.delete(j.status.jobId);
      this.#o.store?.remove(j.status.jobId).catch((err: unknown) => {
        this.#o.log.warn({ err, jobId: j.status.jobId }, 'could not remove an old load job record');
      });
    }
  }

  #slot(workerId: string): Semaphore {
    let s = this.#slots.get(workerId);
    if (s === undefined) {
      s = new Semaphore(this.#o.perWorker);
      this.#slots.set(workerId, s);
    }
    return s;
  }

  /**
   * Scanning and loading run side by side: the walk queues block tasks (up to MAX_QUEUED_TASKS,
   * so it runs well ahead and the totals are soon complete) while a dispatcher keeps every
   * worker's slots busy.
   */
  async #run(job: LoadJob): Promise<void> {
    const signal = job.controller.signal;
    const st = job.status;
    const queue: (() => Promise<void>)[] = [];
    let scanned = false;
    let wake: (() => void) | undefined;
    let room: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    const dispatch = (async () => {
      const inFlight = new Set<Promise<void>>();
      const maxInFlight = (): number => Math.max(1, this.#o.perWorker * Math.max(1, this.#o.liveWorkers()));
      for (;;) {
        if (signal.aborted) break;
        const task = queue.shift();
        if (task === undefined) {
          if (scanned) break;
          await new Promise<void>((r) => (wake = r));
          continue;
        }
        room?.();
        room = undefined;
        while (inFlight.size >= maxInFlight() && !signal.aborted) await Promise.race(inFlight);
        const p = task().finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.allSettled([...inFlight]);
    })();
    try {
      const stack: string[] = [st.path];
      while (stack.length > 0 && !signal.aborted) {
        const path = stack.pop() as string;
        const r = this.#o.mounts.table.resolve(path);
        if (r === undefined) continue;
        const status = await this.#o.sync.status(path, r, () => this.#o.namespace.getStatus(path));
        if (status.type === 'dir') {
          await this.#o.sync.syncDir(path, r);
          let startAfter: string | undefined;
          do {
            const page = await this.#o.namespace.list(path, {
              limit: WALK_PAGE,
              ...(startAfter === undefined ? {} : { startAfter }),
            });
            for (const e of page.entries) stack.push(childOf(path, e));
            startAfter = page.nextStartAfter;
          } while (startAfter !== undefined && !signal.aborted);
          continue;
        }
        if (status.type !== 'file') continue;
        st.totalFiles++;
        st.totalBytes += status.size;
        for (const t of await this.#fileTasks(job, path, r)) {
          while (queue.length >= MAX_QUEUED_TASKS && !signal.aborted)
            await new Promise<void>((res) => (room = res));
          queue.push(t);
          notify();
        }
      }
    } finally {
      scanned = true;
      notify();
      if (st.state === 'scanning') st.state = 'running';
      await dispatch;
    }
    if (job.short.size > 0 && !signal.aborted) await this.#awaitCopies(job);
    if (signal.aborted) {
      st.state = 'cancelled';
      return;
    }
    st.state = st.failedBlocks > 0 ? 'failed' : 'completed';
  }

  /** Waits until every block has the job's copies; no progress for LOAD_REPLICAS_STALL_MS fails the rest. */
  async #awaitCopies(job: LoadJob): Promise<void> {
    const signal = job.controller.signal;
    let lastProgress = this.#clock();
    while (job.short.size > 0 && !signal.aborted) {
      for (const [blockId, length] of job.short) {
        if (this.#o.blocks.readableReplicas(blockId).length < job.copies) continue;
        job.short.delete(blockId);
        job.status.doneBytes += length;
        lastProgress = this.#clock();
      }
      if (job.short.size === 0) break;
      if (this.#clock() - lastProgress > LOAD_REPLICAS_STALL_MS) {
        const blockId = job.short.keys().next().value as number;
        const have = this.#o.blocks.readableReplicas(blockId).length;
        job.status.failedBlocks += job.short.size;
        job.status.error ??= `block ${blockId} under ${job.status.path}: ${have} of ${job.copies} copies after ${LOAD_REPLICAS_STALL_MS / 1000} s without progress (workers full or leaving?)`;
        job.short.clear();
        break;
      }
      await delay(REPLICAS_POLL_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  /** The load tasks of one file; a file already cached (with its copies) counts as done at once. */
  async #fileTasks(job: LoadJob, path: string, r: Resolved): Promise<(() => Promise<void>)[]> {
    const st = job.status;
    let { file, blocks } = await this.#o.namespace.getBlocks(path);
    const ufsBacked = file.ufs?.persisted === true;
    if (ufsBacked && file.replicas < job.copies) {
      // The block manager now wants the copies: it makes them from the first one and keeps them.
      await this.#o.namespace.setAttr(path, { replicas: job.copies });
      ({ file, blocks } = await this.#o.namespace.getBlocks(path));
    }
    const fileR: Resolved = { mount: r.mount, ufsPath: ufsPathOf(path, r.mount.path) };
    const missing: { blockId: number; offset: number; length: number }[] = [];
    for (const b of blocks) {
      const have = this.#o.blocks.readableReplicas(b.blockId).length;
      if (have >= job.copies || (have > 0 && !ufsBacked)) st.doneBytes += b.length;
      else if (ufsBacked) {
        if (job.copies > 1) job.short.set(b.blockId, b.length);
        if (have === 0) missing.push(b);
      }
    }
    if (missing.length === 0 || !ufsBacked) {
      // Cached already (the block manager makes any missing copies), or only Strata holds it.
      st.doneFiles++;
      return [];
    }
    let left = missing.length;
    return missing.map((b) => async () => {
      const ok = await this.#loadBlock(job, file, fileR, b);
      // With copies > 1 the bytes count once the block manager has made them (#awaitCopies).
      if (!ok) job.short.delete(b.blockId);
      else if (job.copies === 1) st.doneBytes += b.length;
      if (--left === 0 && !job.controller.signal.aborted) st.doneFiles++;
    });
  }

  /** Loads a block's first copy where the fill assigner says, so readers of the block share the fetch. */
  async #loadBlock(
    job: LoadJob,
    file: FileInode,
    r: Resolved,
    b: { blockId: number; offset: number; length: number },
  ): Promise<boolean> {
    const signal = job.controller.signal;
    const source = this.#o.sourceOf(file, r, b);
    const tried = new Set<string>();
    let lastErr: unknown;
    for (let attempt = 0; attempt < 2 && !signal.aborted; attempt++) {
      let worker;
      try {
        worker = this.#o.assigner.assign(b.blockId, {
          storageType: file.storageType,
          blockSizeBytes: b.length,
          exclude: tried,
        });
      } catch (err) {
        lastErr = err;
        break;
      }
      tried.add(worker.workerId);
      const slot = this.#slot(worker.workerId);
      await slot.take();
      try {
        if (signal.aborted) return false;
        const res = await this.#o.workers
          .get(worker)
          .call(LoadBlock, { blockId: b.blockId, source }, { deadlineMs: LOAD_TASK_DEADLINE_MS, signal });
        if (res.loaded) job.status.loadedBytes += res.bytes;
        return true;
      } catch (err) {
        lastErr = err;
        this.#o.assigner.forget(b.blockId);
      } finally {
        slot.give();
      }
    }
    if (signal.aborted) return false;
    job.status.failedBlocks++;
    const msg = lastErr instanceof Error ? lastErr.message : String(lastErr);
    job.status.error ??= `block ${b.blockId} of ${r.mount.path}${r.ufsPath === '/' ? '' : r.ufsPath}: ${msg}`;
    this.#o.log.warn({ jobId: job.status.jobId, blockId: b.blockId, err: msg }, 'load task failed');
    return false;
  }
}

function childOf(dir: string, e: FileStatus): string {
  return dir === '/' ? `/${e.name}` : `${dir}/${e.name}`;
}
