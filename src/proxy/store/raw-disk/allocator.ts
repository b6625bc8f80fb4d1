/**
 * Free-space map of the raw-disk data region, in blocks. Free extents are kept three ways: by
 * start and by end (so a freed extent merges with both neighbours in O(1)) and in segregated
 * size classes (power-of-two bins), so finding room for n blocks looks at a handful of extents
 * instead of scanning the disk. Allocation prefers one contiguous extent; when free space is
 * fragmented it takes several, up to a caller-given limit.
 */

export type Extent = readonly [start: number, count: number];

/** How many candidates of the first fitting bin are examined for a contiguous fit. */
const BIN_PROBE_LIMIT = 32;

function binOf(count: number): number {
  return 31 - Math.clz32(count);
}

export class ExtentAllocator {
  readonly totalBlocks: number;
  readonly #byStart = new Map<number, number>();
  readonly #byEnd = new Map<number, number>();
  readonly #bins: Set<number>[] = [];
  #freeBlocks = 0;

  constructor(totalBlocks: number, used: readonly Extent[] = []) {
    this.totalBlocks = totalBlocks;
    for (let i = 0; i < 32; i++) this.#bins.push(new Set());
    // Free space = the gaps between used extents.
    const sorted = [...used].sort((a, b) => a[0] - b[0]);
    let cursor = 0;
    for (const [s, c] of sorted) {
      if (s > cursor) this.#insert(cursor, s - cursor);
      cursor = Math.max(cursor, s + c);
    }
    if (cursor < totalBlocks) this.#insert(cursor, totalBlocks - cursor);
  }

  get freeBlocks(): number {
    return this.#freeBlocks;
  }

  get usedBlocks(): number {
    return this.totalBlocks - this.#freeBlocks;
  }

  get freeExtentCount(): number {
    return this.#byStart.size;
  }

  largestFree(): number {
    for (let b = 31; b >= 0; b--) {
      const bin = this.#bins[b] as Set<number>;
      if (bin.size === 0) continue;
      let best = 0;
      for (const s of bin) best = Math.max(best, this.#byStart.get(s) ?? 0);
      return best;
    }
    return 0;
  }

  /** 0 when all free space is one extent, towards 1 as it splinters (seed metric). */
  fragmentationRate(): number {
    if (this.#freeBlocks === 0) return 0;
    return 1 - this.largestFree() / this.#freeBlocks;
  }

  /** Free extents sorted by start (for defragmentation planning; O(n log n)). */
  freeExtents(): Extent[] {
    return [...this.#byStart.entries()].sort((a, b) => a[0] - b[0]);
  }

  /**
   * Allocates `n` blocks as at most `maxExtents` extents, contiguous when possible. Returns
   * undefined (and allocates nothing) when that is not possible.
   */
  allocate(n: number, maxExtents: number): Extent[] | undefined {
    if (n <= 0) return [];
    if (n > this.#freeBlocks) return undefined;
    const one = this.#findContiguous(n);
    if (one !== undefined) {
      this.#take(one, n);
      return [[one, n]];
    }
    if (maxExtents <= 1) return undefined;
    // Fragmented: take the largest extents first so the count of pieces stays small.
    const picked: Extent[] = [];
    let remaining = n;
    for (let b = 31; b >= 0 && remaining > 0; b--) {
      const bin = this.#bins[b] as Set<number>;
      for (const s of bin) {
        if (picked.length >= maxExtents) break;
        const c = this.#byStart.get(s) ?? 0;
        picked.push([s, Math.min(c, remaining)]);
        remaining -= Math.min(c, remaining);
        if (remaining === 0) break;
      }
      if (picked.length >= maxExtents) break;
    }
    if (remaining > 0) return undefined;
    for (const [s, c] of picked) this.#take(s, c);
    return picked.sort((a, b) => a[0] - b[0]);
  }

  /** Allocates the first `count` blocks of the free extent that starts at `start` (defragmentation). */
  allocateAt(start: number, count: number): boolean {
    const c = this.#byStart.get(start);
    if (c === undefined || c < count) return false;
    this.#take(start, count);
    return true;
  }

  /** Returns blocks to the free map, merging with free neighbours. */
  free(start: number, count: number): void {
    if (count <= 0) return;
    if (start < 0 || start + count > this.totalBlocks)
      throw new RangeError(`free of blocks [${start}, ${start + count}) outside 0..${this.totalBlocks}`);
    let s = start;
    let c = count;
    const before = this.#byEnd.get(s);
    if (before !== undefined) {
      const bc = this.#byStart.get(before) ?? 0;
      this.#remove(before);
      s = before;
      c += bc;
    }
    const afterCount = this.#byStart.get(start + count);
    if (afterCount !== undefined) {
      this.#remove(start + count);
      c += afterCount;
    }
    this.#insert(s, c);
  }

  #findContiguous(n: number): number | undefined {
    const first = binOf(n);
    // The first bin holds extents of [2^b, 2^(b+1)): some may be too small, probe a few.
    const bin = this.#bins[first] as Set<number>;
    let probes = 0;
    for (const s of bin) {
      if ((this.#byStart.get(s) ?? 0) >= n) return s;
      if (++probes >= BIN_PROBE_LIMIT) break;
    }
    // Any extent of a higher bin fits; take the smallest such bin to keep big extents whole.
    for (let b = first + 1; b < 32; b++) {
      const higher = this.#bins[b] as Set<number>;
      const it = higher.values().next();
      if (it.done !== true) return it.value;
    }
    return undefined;
  }

  /** Takes `n` blocks from the start of the free extent at `s`. */
  #take(s: number, n: number): void {
    const c = this.#byStart.get(s);
    if (c === undefined || c < n) throw new Error(`allocator: no free extent of ${n} at ${s}`);
    this.#remove(s);
    if (c > n) this.#insert(s + n, c - n);
  }

  #insert(s: number, c: number): void {
    this.#byStart.set(s, c);
    this.#byEnd.set(s + c, s);
    (this.#bins[binOf(c)] as Set<number>).add(s);
    this.#freeBlocks += c;
  }

  #remove(s: number): void {
    const c = this.#byStart.get(s);
    if (c === undefined) return;
    this.#byStart.delete(s);
    this.#byEnd.delete(s + c);
    (this.#bins[binOf(c)] as Set<number>).delete(s);
    this.#freeBlocks -= c;
  }
}
