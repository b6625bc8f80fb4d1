/**
 * A hybrid logical clock for write versions. A version is `wallMs * 1024 + counter`: it follows
 * wall time so versions from different nodes compare sensibly (last writer wins), and it never
 * goes backwards on one node, even when the wall clock does or when more than one write lands in
 * the same millisecond. Every version a node receives from a peer pushes its clock forward, so a
 * write that causally follows another always gets a larger version.
 *
 * 1024 writes per millisecond per node before the counter borrows from the next millisecond; the
 * product stays below 2^53 until the year 2255, so a version is an exact JS number.
 */
export const HLC_COUNTER_BITS = 10;
const SCALE = 2 ** HLC_COUNTER_BITS;

export class HybridClock {
  #last = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A fresh version, larger than every version this clock issued or observed. */
  next(): number {
    const wall = this.#now() * SCALE;
    this.#last = wall > this.#last ? wall : this.#last + 1;
    return this.#last;
  }

  /** Moves the clock past a version seen from elsewhere. */
  observe(version: number): void {
    if (version > this.#last) this.#last = version;
  }

  get last(): number {
    return this.#last;
  }
}

/** The wall-clock milliseconds a version was issued at. */
export function versionWallMs(version: number): number {
  return Math.floor(version / SCALE);
}
