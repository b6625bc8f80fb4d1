/**
 * Where a short-circuit read runs: inline (a `pread` on the calling thread) or on libuv's thread
 * pool. A read the page cache or a MEM tier answers is a memory copy, and handing it to the pool
 * costs two thread hand-offs, 10–40 % of a 1–4 MiB read on a busy 2-core machine. A read that
 * waits for the device must not block the event loop. Node cannot ask the kernel "only if cached"
 * (`preadv2(RWF_NOWAIT)`), so the policy learns it: reads go inline while they run at memory
 * speed, and two in a row of one file slower than a copy could be (they waited for the device)
 * send that file's reads, and for a while every disk-tier read of this client, to the pool. The
 * event loop is so blocked by device reads at most twice per file and `INLINE_READ_BACKOFF_MS`,
 * and a workload of cold files runs on the pool as before.
 */

/** How long after a device-bound inline read reads go to the pool. */
export const INLINE_READ_BACKOFF_MS = 1000;
/** Fixed allowance of an inline read before it counts as slow (a preempted copy). */
const INLINE_READ_SLACK_MS = 1;
/**
 * Below this rate an inline read counts as slow. Page-cache copies run at 5–25 GB/s here, but the
 * first read into a fresh buffer also faults its pages in (4 MiB: ~3 ms, about 1.4 GB/s).
 */
const INLINE_READ_MIN_BYTES_PER_MS = 1_000_000;
/** Slow inline reads of one file in a row that mean it waits for the device (one may be page faults or preemption). */
const SLOW_READS_TO_BACK_OFF = 2;

/** The per-file half of the policy (kept with the open block file). */
export interface InlineReadState {
  /** The block file is on a MEM tier: every read is a memory copy, whatever the timing says. */
  readonly inMemory: boolean;
  /** performance.now() until which this file's reads go to the pool. */
  poolUntilMs: number;
  /** Slow inline reads of this file in a row. */
  slowReads: number;
}

export class LocalReadPolicy {
  readonly #alwaysInlineMaxBytes: number;
  readonly #inlineMaxBytes: number;
  /** performance.now() until which disk-tier reads of every file go to the pool. */
  #poolUntilMs = 0;
  #deviceBoundReads = 0;

  /**
   * @param inlineMaxBytes reads up to this size may run inline (`client.local_read_inline_max`; 0: never)
   * @param alwaysInlineMaxBytes reads up to this size always run inline (the FUSE mount's small reads)
   */
  constructor(inlineMaxBytes: number, alwaysInlineMaxBytes = 0) {
    this.#inlineMaxBytes = inlineMaxBytes;
    this.#alwaysInlineMaxBytes = alwaysInlineMaxBytes;
  }

  /** Inline reads that turned out device-bound (each moved reads to the pool for a while). */
  get deviceBoundReads(): number {
    return this.#deviceBoundReads;
  }

  /** Whether a read of `lengthBytes` from this file should run inline now. */
  inline(file: InlineReadState, lengthBytes: number, nowMs: number): boolean {
    if (lengthBytes <= this.#alwaysInlineMaxBytes) return true;
    if (lengthBytes > this.#inlineMaxBytes) return false;
    return file.inMemory || (nowMs >= file.poolUntilMs && nowMs >= this.#poolUntilMs);
  }

  /** After an inline read of `bytes` that took `elapsedMs`: learns whether it waited for the device. */
  observe(file: InlineReadState, bytes: number, elapsedMs: number, nowMs: number): void {
    if (file.inMemory) return;
    if (elapsedMs <= INLINE_READ_SLACK_MS + bytes / INLINE_READ_MIN_BYTES_PER_MS) {
      file.slowReads = 0;
      return;
    }
    if (++file.slowReads < SLOW_READS_TO_BACK_OFF) return;
    file.slowReads = 0;
    file.poolUntilMs = nowMs + INLINE_READ_BACKOFF_MS;
    this.#poolUntilMs = nowMs + INLINE_READ_BACKOFF_MS;
    this.#deviceBoundReads++;
  }
}
