/**
 * What the block reader and writer share inside one client: settings, worker connections and the
 * failed-worker memory, metrics, the memory budget and the log.
 */
import type { Logger } from '../common/logging.js';
import type { MasterClient } from './master-client.js';
import type { LocalReadPolicy } from './local-read-policy.js';
import type { ClientMetrics } from './metrics.js';
import type { ClientSettings } from './settings.js';
import type { MemoryBudget } from './spill-buffer.js';
import type { WorkerPool } from './worker-pool.js';

export interface IoContext {
  readonly settings: ClientSettings;
  readonly master: MasterClient;
  readonly workers: WorkerPool;
  readonly metrics: ClientMetrics | undefined;
  readonly budget: MemoryBudget;
  /** Whether a short-circuit read runs inline or on the thread pool (learned per client). */
  readonly localReads: LocalReadPolicy;
  readonly log: Logger;
}

/** Waits `ms`, or less when the signal aborts. */
export function sleep(ms: number): Promise<void> {
  // Not unref'd: the operation waiting on it must keep the process alive. An unref'd backoff
  // let a CLI whose read was between retries exit silently with Node's "unsettled top-level
  // await" code 13 instead of finishing its retries and printing the error.
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Exponential backoff for attempt n (0-based) with full jitter. */
export function backoffMs(attempt: number, firstMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, firstMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
