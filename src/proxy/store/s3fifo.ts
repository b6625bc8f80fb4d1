/**
 * S3-FIFO eviction (Yang et al., SOSP 2023): a small FIFO that filters one-hit wonders, a main
 * FIFO with lazy promotion (a 2-bit access counter, reinserted instead of moved on hit), and a
 * ghost FIFO of recently evicted keys that sends a returning key straight to main. Every
 * operation is O(1): intrusive doubly-linked lists and a Map, never a scan. Sizes are bytes, so
 * one large object displaces many small ones.
 *
 * The policy only decides; the store owning the data removes what `evict` returns.
 */

/** Share of the capacity given to the small (probationary) queue, as in the paper. */
export const SMALL_QUEUE_FRACTION = 0.1;
/** The access counter saturates here (2 bits). */
const MAX_FREQ = 3;

interface Node<K> {
  key: K;
  sizeBytes: number;
  freq: number;
  queue: Queue<K>;
  prev: Node<K> | undefined;
  next: Node<K> | undefined;
}

/** A FIFO as a doubly-linked list: push at head, pop at tail, unlink anywhere. */
class Queue<K> {
  head: Node<K> | undefined;
  tail: Node<K> | undefined;
  bytes = 0;
  count = 0;

  push(n: Node<K>): void {
    n.queue = this;
    n.prev = undefined;
    n.next = this.head;
    if (this.head !== undefined) this.head.prev = n;
    this.head = n;
    if (this.tail === undefined) this.tail = n;
    this.bytes += n.sizeBytes;
    this.count++;
  }

  unlink(n: Node<K>): void {
    if (n.prev !== undefined) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next !== undefined) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = undefined;
    n.next = undefined;
    this.bytes -= n.sizeBytes;
    this.count--;
  }
}

/** Keys recently evicted from the small queue, bounded in count; FIFO with O(1) membership. */
class Ghost<K> {
  readonly #keys = new Map<K, number>();
  #order: { key: K; seq: number }[] = [];
  #head = 0;
  #seq = 0;
  limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(key: K): void {
    const seq = ++this.#seq;
    this.#keys.set(key, seq);
    this.#order.push({ key, seq });
    while (
      (this.#keys.size > this.limit || this.#order.length - this.#head > 2 * this.limit) &&
      this.#head < this.#order.length
    ) {
      const old = this.#order[this.#head++];
      // A key re-added since has a newer sequence number: only its latest position counts.
      if (old !== undefined && this.#keys.get(old.key) === old.seq) this.#keys.delete(old.key);
    }
    // Compact the backing array now and then so it does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  take(key: K): boolean {
    return this.#keys.delete(key);
  }

  get size(): number {
    return this.#keys.size;
  }
}

export class S3FifoPolicy<K> {
  readonly #nodes = new Map<K, Node<K>>();
  readonly #small = new Queue<K>();
  readonly #main = new Queue<K>();
  readonly #ghost: Ghost<K>;
  #capacityBytes: number;

  constructor(capacityBytes: number) {
    this.#capacityBytes = capacityBytes;
    this.#ghost = new Ghost<K>(1024);
  }

  get capacityBytes(): number {
    return this.#capacityBytes;
  }

  get bytes(): number {
    return this.#small.bytes + this.#main.bytes;
  }

  get count(): number {
    return this.#nodes.size;
  }

  has(key: K): boolean {
    return this.#nodes.has(key);
  }

  /** Records a hit: lazy promotion, the entry is not moved. */
  touch(key: K): void {
    const n = this.#nodes.get(key);
    if (n !== undefined && n.freq < MAX_FREQ) n.freq++;
  }

  /**
   * Inserts (or resizes) an entry and returns the keys that must be evicted to stay within
   * capacity. The new key itself may be among them when it alone exceeds the capacity.
   */
  insert(key: K, sizeBytes: number): K[] {
    const existing = this.#nodes.get(key);
    if (existing !== undefined) {
      existing.queue.bytes += sizeBytes - existing.sizeBytes;
      existing.sizeBytes = sizeBytes;
      return this.#evictUntilFits();
    }
    const node: Node<K> = {
      key,
      sizeBytes,
      freq: 0,
      queue: this.#small,
      prev: undefined,
      next: undefined,
    };
    this.#nodes.set(key, node);
    if (this.#ghost.take(key)) this.#main.push(node);
    else this.#small.push(node);
    return this.#evictUntilFits();
  }

  /** Forgets a key the store removed for its own reasons (delete, purge, corruption). */
  remove(key: K): boolean {
    const n = this.#nodes.get(key);
    if (n === undefined) return false;
    n.queue.unlink(n);
    this.#nodes.delete(key);
    return true;
  }

  /** Changes the capacity (SIGHUP); returns what must go to fit. */
  resize(capacityBytes: number): K[] {
    this.#capacityBytes = capacityBytes;
    return this.#evictUntilFits();
  }

  /** Picks victims until at least `bytes` are free below capacity (raw disk: make room first). */
  evictFor(bytes: number): K[] {
    const out: K[] = [];
    while (this.#nodes.size > 0 && this.bytes + bytes > this.#capacityBytes) {
      const victim = this.#evictOne();
      if (victim === undefined) break;
      out.push(victim);
    }
    return out;
  }

  /** Picks one victim regardless of capacity (the raw-disk allocator needs contiguous room). */
  evictAny(): K | undefined {
    return this.#evictOne();
  }

  #evictUntilFits(): K[] {
    const out: K[] = [];
    while (this.bytes > this.#capacityBytes && this.#nodes.size > 0) {
      const victim = this.#evictOne();
      if (victim === undefined) break;
      out.push(victim);
    }
    return out;
  }

  #evictOne(): K | undefined {
    // Bounded: each reinsertion lowers a counter, so at most MAX_FREQ passes over main.
    for (let guard = 0; guard < 4 * (this.#nodes.size + 1); guard++) {
      const fromSmall =
        this.#small.bytes >= this.#capacityBytes * SMALL_QUEUE_FRACTION || this.#main.count === 0;
      if (fromSmall && this.#small.tail !== undefined) {
        const t = this.#small.tail;
        this.#small.unlink(t);
        if (t.freq > 0) {
          t.freq = 0;
          this.#main.push(t);
          continue;
        }
        this.#nodes.delete(t.key);
        this.#ghost.limit = Math.max(1024, this.#main.count);
        this.#ghost.add(t.key);
        return t.key;
      }
      const t = this.#main.tail;
      if (t === undefined) return undefined;
      this.#main.unlink(t);
      if (t.freq > 0) {
        t.freq--;
        this.#main.push(t);
        continue;
      }
      this.#nodes.delete(t.key);
      return t.key;
    }
    return undefined;
  }
}
