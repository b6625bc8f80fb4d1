/**
 * What the Overview warns about, computed from the master's live state at request time (the
 * same conditions as the Prometheus rules in deploy/prometheus, for operators without
 * Prometheus): lost or silent workers, tiers above their high watermark, blocks without enough
 * copies, draining workers, and a low cache hit ratio over the recent history.
 */
import type { WorkerInfo } from '../../protocol/types.js';
import type { HistorySample } from './history.js';

export type AlertSeverity = 'critical' | 'warning' | 'info';

export interface ConsoleAlert {
  /** Stable identifier of the condition and its subject, e.g. "tier-high:<worker>:MEM". */
  id: string;
  severity: AlertSeverity;
  title: string;
  detail: string;
}

/** Hit ratio under which the console warns (seed 004 alerts below 50 %). */
export const LOW_HIT_RATIO = 0.5;
/** History looked at for the hit ratio alert. */
export const HIT_RATIO_WINDOW_MS = 10 * 60 * 1000;
/** Located block reads per second below which a hit ratio is too thin to alert on. */
export const MIN_READS_PER_SEC_FOR_HIT_ALERT = 1;

/** How long "blocks found without a readable copy" stays an alert after it happened. */
export const MISSING_BLOCKS_WINDOW_MS = 10 * 60 * 1000;
/** Increases remembered by RecentIncreases (older ones are dropped first). */
const MAX_REMEMBERED_INCREASES = 1024;

/**
 * Turns an event counter (the block manager's "no readable copy" count) into "how many in the
 * last window": the counter only ever grows, an alert must clear once things are quiet again.
 */
export class RecentIncreases {
  readonly #windowMs: number;
  #last: number | undefined;
  readonly #increases: { tMs: number; n: number }[] = [];

  constructor(windowMs = MISSING_BLOCKS_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  observe(value: number, nowMs: number): void {
    // The first observation is the baseline: what happened before is not "recent".
    if (this.#last !== undefined && value > this.#last) {
      this.#increases.push({ tMs: nowMs, n: value - this.#last });
      if (this.#increases.length > MAX_REMEMBERED_INCREASES) this.#increases.shift();
    }
    this.#last = value;
  }

  /** Sum of the increases within the window ending at `nowMs`. */
  recent(nowMs: number): number {
    while (this.#increases.length > 0 && (this.#increases[0]?.tMs ?? 0) < nowMs - this.#windowMs)
      this.#increases.shift();
    return this.#increases.reduce((n, x) => n + x.n, 0);
  }
}

export interface AlertInputs {
  workers: readonly WorkerInfo[];
  /** needed/inflight: blocks now; missingRecent: blocks found without a readable copy in the last window. */
  replication: { needed: number; inflight: number; missingRecent: number };
  history: readonly HistorySample[];
  nowMs: number;
}

const SEVERITY_ORDER: Readonly<Record<AlertSeverity, number>> = { critical: 0, warning: 1, info: 2 };

export function computeAlerts(i: AlertInputs): ConsoleAlert[] {
  const out: ConsoleAlert[] = [];
  const name = (w: WorkerInfo): string => `${w.address.hostname}:${w.address.rpcPort}`;
  const counted = i.workers.filter((w) => w.state !== 'lost' && w.state !== 'decommissioned');
  if (i.workers.length > 0 && counted.every((w) => w.state !== 'live')) {
    out.push({
      id: 'no-live-workers',
      severity: 'critical',
      title: 'No live worker',
      detail: 'No worker is live: new blocks cannot be placed and reads have nowhere to go.',
    });
  }
  for (const w of i.workers) {
    const silentS = Math.max(0, Math.round((i.nowMs - w.lastHeartbeatMs) / 1000));
    if (w.state === 'lost') {
      out.push({
        id: `worker-lost:${w.address.workerId}`,
        severity: 'critical',
        title: `Worker ${name(w)} lost`,
        detail: `No heartbeat for ${silentS} s; its blocks are being copied from other replicas.`,
      });
    } else if (w.state === 'blacklisted') {
      out.push({
        id: `worker-blacklisted:${w.address.workerId}`,
        severity: 'warning',
        title: `Worker ${name(w)} not heartbeating`,
        detail: `No heartbeat for ${silentS} s; no new blocks go there until it is heard from again.`,
      });
    } else if (w.state === 'decommissioning') {
      out.push({
        id: `worker-decommissioning:${w.address.workerId}`,
        severity: 'info',
        title: `Worker ${name(w)} decommissioning`,
        detail: 'Its blocks are being copied to other workers.',
      });
    }
    if (w.state === 'lost' || w.state === 'decommissioned') continue;
    for (const t of w.tiers) {
      if (t.capacityBytes === 0) continue;
      const used = t.usedBytes / t.capacityBytes;
      if (used > t.highWatermark) {
        out.push({
          id: `tier-high:${w.address.workerId}:${t.storageType}:${t.dir}`,
          severity: 'warning',
          title: `${t.storageType} tier of ${name(w)} above its high watermark`,
          detail: `${pct(used)} used (high ${pct(t.highWatermark)}, low ${pct(t.lowWatermark)}) in ${t.dir}.`,
        });
      }
    }
  }
  if (i.replication.missingRecent > 0) {
    out.push({
      id: 'blocks-missing',
      severity: 'critical',
      title: 'Blocks without a readable copy',
      detail:
        `${i.replication.missingRecent} block(s) needed a copy in the last ${MISSING_BLOCKS_WINDOW_MS / 60_000} minutes ` +
        'and no worker holding one was reachable: their files cannot be read until such a worker returns.',
    });
  }
  if (i.replication.needed + i.replication.inflight > 0) {
    out.push({
      id: 'under-replicated',
      severity: 'info',
      title: 'Blocks below their replication',
      detail: `${i.replication.needed} waiting for a copy, ${i.replication.inflight} being copied.`,
    });
  }
  const ratio = windowHitRatio(i.history, i.nowMs);
  if (
    ratio !== undefined &&
    ratio.ratio < LOW_HIT_RATIO &&
    ratio.readsPerSec >= MIN_READS_PER_SEC_FOR_HIT_ALERT
  ) {
    out.push({
      id: 'low-hit-ratio',
      severity: 'warning',
      title: 'Low cache hit ratio',
      detail: `${pct(ratio.ratio)} of block reads found their data cached over the last ${HIT_RATIO_WINDOW_MS / 60_000} minutes (alert below ${pct(LOW_HIT_RATIO)}).`,
    });
  }
  return out.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}

/** The read-weighted hit ratio of the samples in the window, or undefined without reads. */
export function windowHitRatio(
  history: readonly HistorySample[],
  nowMs: number,
  windowMs = HIT_RATIO_WINDOW_MS,
): { ratio: number; readsPerSec: number } | undefined {
  let hits = 0;
  let reads = 0;
  let n = 0;
  for (const s of history) {
    if (s.tMs < nowMs - windowMs) continue;
    n++;
    if (s.hitRatio === null) continue;
    hits += s.hitRatio * s.blockReadsPerSec;
    reads += s.blockReadsPerSec;
  }
  if (reads === 0 || n === 0) return undefined;
  return { ratio: hits / reads, readsPerSec: reads / n };
}

function pct(r: number): string {
  return `${(r * 100).toFixed(1)}%`;
}
