/**
 * Background scrubbing: re-verifies every stored block's checksums at a bounded rate, so a block
 * that rots on disk while nobody reads it is found before the other copies are gone too. A
 * corrupt block goes the same way as one found by a read: the store drops it and reports it in
 * the next heartbeat (sent at once), and the master deletes that location and copies the block
 * again from a good replica.
 *
 * A pass walks the blocks present when it starts (least recently used first: the blocks reads
 * verify least); blocks removed meanwhile are skipped. Passes start `intervalMs` apart (a pass
 * that takes longer is followed at once by the next). Reads go through the store's verified
 * reader and its pooled windows, paced so the long-run rate stays at `rateBytesPerSec`.
 */
import type { Logger } from '../common/logging.js';
import { Counter, Gauge } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { BlockStore } from './block-store.js';
import { BlockCorruptError, BlockNotFoundError, StoppingError } from './errors.js';

/**
 * The first pass starts this long after the worker (or `intervalMs`, when shorter): a restart
 * should not begin with a burst of scrub reads, nor wait a whole interval.
 */
export const FIRST_SCRUB_DELAY_MS = 5 * 60_000;
/**
 * Pacing sleeps shorter than this are carried over to the next window: a timer per 1 MiB window
 * would cost more than the reads at high rates.
 */
const MIN_PACING_SLEEP_MS = 5;

export type SleepFn = (ms: number, signal: AbortSignal) => Promise<void>;

export interface ScrubberOptions {
  store: BlockStore;
  /** Bytes verified per second (0 disables the scrubber). */
  rateBytesPerSec: number;
  /** Time between the starts of two passes. */
  intervalMs: number;
  /** A block was found corrupt (and dropped): the caller reports it soon. */
  onCorrupt?: (blockId: number) => void;
  registry?: Registry;
  log: Logger;
  /** First pass delay; defaults to min(intervalMs, FIRST_SCRUB_DELAY_MS). */
  firstDelayMs?: number;
  /** Injected in tests to observe pacing. */
  sleep?: SleepFn;
  now?: () => number;
}

export interface ScrubPassResult {
  blocks: number;
  bytes: number;
  corrupt: number[];
}

export class Scrubber {
  readonly #o: ScrubberOptions;
  readonly #sleep: SleepFn;
  readonly #now: () => number;
  readonly #stop = new AbortController();
  readonly #metrics: ScrubMetrics | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: ScrubberOptions) {
    if (!(opts.rateBytesPerSec >= 0)) throw new Error(`scrub rate must be ≥ 0, got ${opts.rateBytesPerSec}`);
    this.#o = opts;
    this.#sleep = opts.sleep ?? abortableSleep;
    this.#now = opts.now ?? (() => performance.now());
    this.#metrics = opts.registry === undefined ? undefined : new ScrubMetrics(opts.registry);
  }

  get enabled(): boolean {
    return this.#o.rateBytesPerSec > 0;
  }

  /** Starts the background passes (nothing when the rate is 0). */
  start(): void {
    if (!this.enabled || this.#loop !== undefined) return;
    this.#loop = this.#run().catch((err: unknown) => {
      if (!this.#stop.signal.aborted) this.#o.log.error({ err }, 'scrubber stopped after an error');
    });
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    const first = this.#o.firstDelayMs ?? Math.min(this.#o.intervalMs, FIRST_SCRUB_DELAY_MS);
    await this.#sleep(first, signal);
    while (!signal.aborted) {
      const started = this.#now();
      const r = await this.runPass(signal);
      if (signal.aborted) return;
      this.#o.log.info(
        { blocks: r.blocks, bytes: r.bytes, corrupt: r.corrupt, seconds: (this.#now() - started) / 1000 },
        'scrub pass finished',
      );
      await this.#sleep(Math.max(0, started + this.#o.intervalMs - this.#now()), signal);
    }
  }

  /**
   * One pass over the blocks stored now, paced at the configured rate (unpaced when it is 0).
   * Public for tests and for an operator-triggered pass.
   */
  async runPass(signal: AbortSignal = this.#stop.signal): Promise<ScrubPassResult> {
    const ids = [...this.#o.store.list()].map((b) => b.blockId);
    const result: ScrubPassResult = { blocks: 0, bytes: 0, corrupt: [] };
    const pacer = new Pacer(this.#o.rateBytesPerSec, this.#now, this.#sleep, signal);
    for (const id of ids) {
      if (signal.aborted) break;
      if (!this.#o.store.has(id)) continue;
      const outcome = await this.#scrubBlock(id, pacer, signal);
      if (outcome === undefined) continue;
      result.blocks++;
      result.bytes += outcome.bytes;
      if (outcome.corrupt) result.corrupt.push(id);
    }
    this.#metrics?.passes.inc();
    this.#metrics?.lastPass.set(Date.now() / 1000);
    return result;
  }

  /** Verifies one block; undefined when it went away (deleted, moved out, worker stopping). */
  async #scrubBlock(
    blockId: number,
    pacer: Pacer,
    signal: AbortSignal,
  ): Promise<{ bytes: number; corrupt: boolean } | undefined> {
    let bytes = 0;
    try {
      // openReader checks the trailer; the reader's verification reports a corrupt block to the
      // store, which drops it and emits the event the heartbeat carries to the master.
      const reader = await this.#o.store.openReader(blockId);
      try {
        await reader.read(
          0,
          reader.lengthBytes,
          async (slice) => {
            bytes += slice.length;
            this.#metrics?.bytes.inc(slice.length);
            await pacer.took(slice.length);
          },
          signal,
        );
      } finally {
        await reader.close();
      }
      this.#metrics?.blocks.inc({ outcome: 'ok' });
      return { bytes, corrupt: false };
    } catch (err) {
      if (err instanceof BlockCorruptError) {
        this.#metrics?.blocks.inc({ outcome: 'corrupt' });
        this.#o.log.error({ blockId, reason: err.message }, 'scrubber found a corrupt block');
        this.#o.onCorrupt?.(blockId);
        return { bytes, corrupt: true };
      }
      if (signal.aborted || err instanceof BlockNotFoundError || err instanceof StoppingError)
        return undefined;
      // Anything else (an I/O error) is logged and the pass goes on; the next pass tries again.
      this.#metrics?.blocks.inc({ outcome: 'error' });
      this.#o.log.warn({ err, blockId }, 'scrubber could not read a block');
      return undefined;
    }
  }
}

/** Keeps bytes over elapsed time at or below the rate, sleeping in steps of at least 5 ms. */
class Pacer {
  readonly #rate: number;
  readonly #now: () => number;
  readonly #sleep: SleepFn;
  readonly #signal: AbortSignal;
  readonly #startedMs: number;
  #bytes = 0;

  constructor(rateBytesPerSec: number, now: () => number, sleep: SleepFn, signal: AbortSignal) {
    this.#rate = rateBytesPerSec;
    this.#now = now;
    this.#sleep = sleep;
    this.#signal = signal;
    this.#startedMs = now();
  }

  async took(bytes: number): Promise<void> {
    if (this.#rate <= 0) return;
    this.#bytes += bytes;
    const dueMs = this.#startedMs + (this.#bytes / this.#rate) * 1000;
    const waitMs = dueMs - this.#now();
    if (waitMs >= MIN_PACING_SLEEP_MS) await this.#sleep(waitMs, this.#signal);
  }
}

class ScrubMetrics {
  readonly bytes: Counter;
  readonly blocks: Counter<'outcome'>;
  readonly passes: Counter;
  readonly lastPass: Gauge;

  constructor(registry: Registry) {
    this.bytes = new Counter({
      name: 'strata_worker_scrub_bytes_total',
      help: 'Block bytes re-verified by the background scrubber',
      registers: [registry],
    });
    this.blocks = new Counter({
      name: 'strata_worker_scrub_blocks_total',
      help: 'Blocks checked by the background scrubber (ok, corrupt: dropped and reported, error: unreadable)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.passes = new Counter({
      name: 'strata_worker_scrub_passes_total',
      help: 'Completed scrub passes over every stored block',
      registers: [registry],
    });
    this.lastPass = new Gauge({
      name: 'strata_worker_scrub_last_pass_timestamp_seconds',
      help: 'When the last scrub pass finished (Unix time)',
      registers: [registry],
    });
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
