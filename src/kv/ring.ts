/**
 * The consistent-hash ring: `virtual_nodes` tokens per node, placed by murmur3 of "<id>#<i>", so
 * a node's tokens depend on its id alone and adding or removing a node moves only the keys that
 * go to or come from it.
 *
 * Keys are placed by multi-probe consistent hashing (Appleton & O'Reilly, 2015): a key is hashed
 * to `probes` points on the ring and belongs to the node whose token is nearest (clockwise) to
 * any of them. With one probe this is the classic ring; with 150 virtual nodes per node the
 * classic ring leaves a node's share with a standard deviation near 7% of the mean (the sum of
 * 150 random arcs), while five probes bring it near 2% at five binary searches per lookup,
 * keeping the ring's monotonicity. The replica order generalises the same rule: nodes ranked by
 * their nearest token to any probe, so removing a node shifts every list by one and nothing else.
 */
import { fmix32, murmur3Bytes, murmur3String } from './hash.js';

/** Probe spacing seed: the golden-ratio constant decorrelates the second hash from the first. */
const PROBE_SEED = 0x9e3779b9;
/** Tokens are bucketed by their top 16 bits so a successor search is one lookup and a short scan. */
const BUCKET_BITS = 16;
const BUCKETS = 1 << BUCKET_BITS;
/** Sample size for ownership shares: 2^16 synthetic keys estimate each share within ~0.3%. */
const SHARE_SAMPLES = 1 << 16;
export const MAX_RING_NODES = 4096;

export interface RingOptions {
  virtualNodes: number;
  probes: number;
}

export class HashRing {
  readonly nodeIds: readonly string[];
  readonly virtualNodes: number;
  readonly probes: number;
  readonly #indexOf = new Map<string, number>();
  readonly #positions: Uint32Array;
  readonly #owners: Uint16Array;
  readonly #bucketStart: Uint32Array;
  /** Scratch space for preference lists: best distance per node and a stamp per walk. */
  readonly #best: Float64Array;
  readonly #seenStamp: Uint32Array;
  #stamp = 0;
  #shares: Map<string, number> | undefined;

  constructor(nodeIds: readonly string[], opts: RingOptions) {
    if (nodeIds.length === 0) throw new RangeError('a ring needs at least one node');
    if (nodeIds.length > MAX_RING_NODES) throw new RangeError(`a ring holds at most ${MAX_RING_NODES} nodes`);
    if (opts.virtualNodes < 1 || opts.probes < 1) throw new RangeError('virtualNodes and probes must be ≥ 1');
    // Sorted so that every node builds the same indices whatever order its config lists nodes in.
    const ids = [...new Set(nodeIds)].sort();
    this.nodeIds = ids;
    this.virtualNodes = opts.virtualNodes;
    this.probes = opts.probes;
    ids.forEach((id, i) => this.#indexOf.set(id, i));

    const total = ids.length * opts.virtualNodes;
    const pos = new Float64Array(total);
    const own = new Uint16Array(total);
    let t = 0;
    for (let n = 0; n < ids.length; n++) {
      for (let v = 0; v < opts.virtualNodes; v++) {
        pos[t] = murmur3String(`${ids[n]}#${v}`);
        own[t] = n;
        t++;
      }
    }
    // Sort token indices by position; equal positions (rare) tie-break by node index.
    const order = Array.from({ length: total }, (_, i) => i);
    order.sort((a, b) => (pos[a] as number) - (pos[b] as number) || (own[a] as number) - (own[b] as number));
    this.#positions = new Uint32Array(total);
    this.#owners = new Uint16Array(total);
    order.forEach((src, dst) => {
      this.#positions[dst] = pos[src] as number;
      this.#owners[dst] = own[src] as number;
    });
    this.#bucketStart = new Uint32Array(BUCKETS + 1);
    let i = 0;
    for (let b = 0; b <= BUCKETS; b++) {
      const floor = b * 2 ** (32 - BUCKET_BITS);
      while (i < total && (this.#positions[i] as number) < floor) i++;
      this.#bucketStart[b] = i;
    }
    this.#best = new Float64Array(ids.length);
    this.#seenStamp = new Uint32Array(ids.length);
  }

  get size(): number {
    return this.nodeIds.length;
  }

  indexOf(id: string): number | undefined {
    return this.#indexOf.get(id);
  }

  /** The 32-bit position of a key given as a string (hashed as UTF-8). */
  static hashKey(key: string): number {
    return murmur3String(key);
  }

  /** The 32-bit position of a key given as bytes, e.g. straight from a RESP buffer. */
  static hashKeyBytes(buf: Uint8Array, start: number, end: number): number {
    return murmur3Bytes(buf, start, end);
  }

  /** Index of the first token at or after `h`, wrapping to 0. */
  #successor(h: number): number {
    let i = this.#bucketStart[h >>> (32 - BUCKET_BITS)] as number;
    const n = this.#positions.length;
    while (i < n && (this.#positions[i] as number) < h) i++;
    return i === n ? 0 : i;
  }

  /**
   * The node index that owns `hash` among nodes with `alive[i] !== 0` (all nodes when `alive` is
   * undefined); -1 when none is alive.
   */
  primary(hash: number, alive?: Uint8Array): number {
    const step = fmix32(hash ^ PROBE_SEED) | 1;
    const n = this.#positions.length;
    let bestNode = -1;
    let bestDist = Infinity;
    for (let p = 0; p < this.probes; p++) {
      const h = (hash + Math.imul(p, step)) >>> 0;
      let i = this.#successor(h);
      for (let walked = 0; walked < n; walked++) {
        const node = this.#owners[i] as number;
        if (alive === undefined || alive[node] !== 0) {
          const d = ((this.#positions[i] as number) - h) >>> 0;
          if (d < bestDist || (d === bestDist && node < bestNode)) {
            bestDist = d;
            bestNode = node;
          }
          break;
        }
        i = i + 1 === n ? 0 : i + 1;
      }
    }
    return bestNode;
  }

  /**
   * The first `count` node indices for `hash`, nearest first, among alive nodes; fewer when fewer
   * are alive. `out` is cleared and filled (pass one to avoid allocating on hot paths).
   */
  preference(hash: number, count: number, alive?: Uint8Array, out: number[] = []): number[] {
    out.length = 0;
    if (count <= 0) return out;
    if (count === 1) {
      const p = this.primary(hash, alive);
      if (p >= 0) out.push(p);
      return out;
    }
    const step = fmix32(hash ^ PROBE_SEED) | 1;
    const n = this.#positions.length;
    const best = this.#best;
    best.fill(Infinity);
    for (let p = 0; p < this.probes; p++) {
      const h = (hash + Math.imul(p, step)) >>> 0;
      // A node not among the first `count` distinct alive nodes of this probe cannot enter the
      // overall top `count` through this probe, so each walk stops there.
      const stamp = this.#nextStamp();
      let distinct = 0;
      let i = this.#successor(h);
      for (let walked = 0; walked < n && distinct < count; walked++) {
        const node = this.#owners[i] as number;
        if ((alive === undefined || alive[node] !== 0) && this.#seenStamp[node] !== stamp) {
          this.#seenStamp[node] = stamp;
          distinct++;
          const d = ((this.#positions[i] as number) - h) >>> 0;
          if (d < (best[node] as number)) best[node] = d;
        }
        i = i + 1 === n ? 0 : i + 1;
      }
    }
    for (let node = 0; node < best.length; node++) if (best[node] !== Infinity) out.push(node);
    out.sort((a, b) => (best[a] as number) - (best[b] as number) || a - b);
    if (out.length > count) out.length = count;
    return out;
  }

  #nextStamp(): number {
    this.#stamp = (this.#stamp + 1) >>> 0;
    if (this.#stamp === 0) {
      this.#seenStamp.fill(0);
      this.#stamp = 1;
    }
    return this.#stamp;
  }

  /** Preference list by node id, for callers off the hot path. */
  owners(key: string, count: number, alive?: Uint8Array): string[] {
    return this.preference(HashRing.hashKey(key), count, alive).map((i) => this.nodeIds[i] as string);
  }

  /**
   * Each node's share of the key space (all nodes alive), estimated from 2^16 synthetic key
   * hashes spread by a bijective mix so the estimate is deterministic.
   */
  ownershipShares(): Map<string, number> {
    if (this.#shares !== undefined) return this.#shares;
    const counts = new Array<number>(this.nodeIds.length).fill(0);
    for (let s = 0; s < SHARE_SAMPLES; s++) {
      const idx = this.primary(fmix32(Math.imul(s, 0x9e3779b1) ^ 0x5bd1e995));
      counts[idx] = (counts[idx] ?? 0) + 1;
    }
    this.#shares = new Map(this.nodeIds.map((id, i) => [id, (counts[i] ?? 0) / SHARE_SAMPLES]));
    return this.#shares;
  }
}

/** Standard deviation of the values divided by their mean: 0 is perfectly even. */
export function relativeStdDev(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (mean === 0) return 0;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return Math.sqrt(variance) / mean;
}
