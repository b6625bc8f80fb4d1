/**
 * A binary min-heap of entries by expiry time, for the periodic sweep. Entries change their TTL
 * or leave the store without being removed from the heap (that would cost O(n) to find); instead
 * each item remembers the expiry it was pushed with and is skipped when it no longer matches.
 * The owner rebuilds the heap when stale items outnumber live ones, so it stays O(live TTLs).
 */
import type { Entry } from './entry.js';

interface Item {
  atMs: number;
  entry: Entry;
}

export class ExpiryHeap {
  #items: Item[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(entry: Entry): void {
    const items = this.#items;
    items.push({ atMs: entry.expiresAtMs, entry });
    let i = items.length - 1;
    const item = items[i] as Item;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as Item;
      if (p.atMs <= item.atMs) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  /** Whether a heap item still describes its entry's current expiry. */
  static isCurrent(item: Item): boolean {
    return item.entry.live && item.entry.expiresAtMs === item.atMs;
  }

  /**
   * Removes and returns the entries whose expiry is at or before `nowMs`, at most `limit` of
   * them, dropping stale items on the way.
   */
  popExpired(nowMs: number, limit: number): Entry[] {
    const out: Entry[] = [];
    while (out.length < limit && this.#items.length > 0) {
      const top = this.#items[0] as Item;
      if (ExpiryHeap.isCurrent(top) && top.atMs > nowMs) break;
      this.#popTop();
      if (ExpiryHeap.isCurrent(top)) out.push(top.entry);
    }
    return out;
  }

  /** Replaces the contents with the given live entries (used to shed stale items). */
  rebuild(entries: Iterable<Entry>): void {
    this.#items = [];
    for (const e of entries) if (e.expiresAtMs > 0) this.#items.push({ atMs: e.expiresAtMs, entry: e });
    this.#items.sort((a, b) => a.atMs - b.atMs);
  }

  clear(): void {
    this.#items = [];
  }

  #popTop(): void {
    const items = this.#items;
    const last = items.pop() as Item;
    if (items.length === 0) return;
    let i = 0;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (items[r] as Item).atMs < (items[l] as Item).atMs ? r : l;
      if ((items[c] as Item).atMs >= last.atMs) break;
      items[i] = items[c] as Item;
      i = c;
    }
    items[i] = last;
  }
}
