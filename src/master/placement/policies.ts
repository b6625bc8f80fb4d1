/**
 * The placement policies of `master.worker_policy`:
 * - local: workers on the writer's machine (hostId, else host name) first, the rest round-robin;
 * - robin: round-robin over the candidates in worker-id order;
 * - random: uniformly random distinct workers;
 * - load_based: the most available space first;
 * - weighted: random, each worker drawn with probability proportional to its available space.
 */
import type { WorkerPolicy } from '../../common/config/schema.js';
import type { PlacementPolicy, PlacementRequest, TierCandidate } from './policy.js';

/** Random numbers in [0, 1); injectable so tests can check distributions deterministically. */
export type Rng = () => number;

function byId(a: TierCandidate, b: TierCandidate): number {
  return a.worker.id < b.worker.id ? -1 : a.worker.id > b.worker.id ? 1 : 0;
}

export class RobinPolicy implements PlacementPolicy {
  readonly name: WorkerPolicy = 'robin';
  #cursor = 0;

  choose(cands: readonly TierCandidate[], n: number): TierCandidate[] {
    const sorted = [...cands].sort(byId);
    const out: TierCandidate[] = [];
    const start = this.#cursor % sorted.length;
    for (let i = 0; i < sorted.length && out.length < n; i++)
      out.push(sorted[(start + i) % sorted.length] as TierCandidate);
    this.#cursor = (start + 1) % Math.max(1, sorted.length);
    return out;
  }
}

export class LocalPolicy implements PlacementPolicy {
  readonly name: WorkerPolicy = 'local';
  readonly #rest = new RobinPolicy();

  choose(cands: readonly TierCandidate[], n: number, req: PlacementRequest): TierCandidate[] {
    const isLocal = (c: TierCandidate): boolean =>
      (req.clientHostId !== undefined &&
        req.clientHostId !== '' &&
        c.worker.address.hostId === req.clientHostId) ||
      (req.clientHost !== undefined && req.clientHost !== '' && c.worker.address.hostname === req.clientHost);
    const local = cands.filter(isLocal).sort(byId);
    const out = local.slice(0, n);
    if (out.length < n)
      out.push(
        ...this.#rest.choose(
          cands.filter((c) => !isLocal(c)),
          n - out.length,
        ),
      );
    return out;
  }
}

export class RandomPolicy implements PlacementPolicy {
  readonly name: WorkerPolicy = 'random';
  readonly #rng: Rng;
  constructor(rng: Rng = Math.random) {
    this.#rng = rng;
  }

  choose(cands: readonly TierCandidate[], n: number): TierCandidate[] {
    const a = [...cands];
    const k = Math.min(n, a.length);
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(this.#rng() * (a.length - i));
      [a[i], a[j]] = [a[j] as TierCandidate, a[i] as TierCandidate];
    }
    return a.slice(0, k);
  }
}

export class LoadBasedPolicy implements PlacementPolicy {
  readonly name: WorkerPolicy = 'load_based';
  choose(cands: readonly TierCandidate[], n: number): TierCandidate[] {
    return [...cands].sort((a, b) => b.availableBytes - a.availableBytes || byId(a, b)).slice(0, n);
  }
}

export class WeightedPolicy implements PlacementPolicy {
  readonly name: WorkerPolicy = 'weighted';
  readonly #rng: Rng;
  constructor(rng: Rng = Math.random) {
    this.#rng = rng;
  }

  choose(cands: readonly TierCandidate[], n: number): TierCandidate[] {
    const pool = [...cands];
    const out: TierCandidate[] = [];
    while (out.length < n && pool.length > 0) {
      const total = pool.reduce((s, c) => s + Math.max(0, c.availableBytes), 0);
      let idx: number;
      if (total > 0) {
        let r = this.#rng() * total;
        for (idx = 0; idx < pool.length - 1; idx++) {
          r -= Math.max(0, (pool[idx] as TierCandidate).availableBytes);
          if (r < 0) break;
        }
      } else {
        idx = Math.floor(this.#rng() * pool.length);
      }
      out.push(pool.splice(idx, 1)[0] as TierCandidate);
    }
    return out;
  }
}

export function createPlacementPolicy(name: WorkerPolicy, rng: Rng = Math.random): PlacementPolicy {
  switch (name) {
    case 'local':
      return new LocalPolicy();
    case 'robin':
      return new RobinPolicy();
    case 'random':
      return new RandomPolicy(rng);
    case 'load_based':
      return new LoadBasedPolicy();
    case 'weighted':
      return new WeightedPolicy(rng);
  }
}
