/**
 * Hash threads for upload bodies. Each upload is one session on the least busy thread; its
 * chunks are gathered into shared slabs (one memcpy, far cheaper than the MD5 it moves off the
 * main thread; posting a shared slab copies nothing, where a transferred or cloned buffer cost
 * about as much as hashing it) and hashed there in order. Slabs are reused once hashed. A
 * session with too many bytes not yet hashed makes the upload wait, so a slow thread slows
 * uploads down instead of buffering them.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { StrataError } from '../../common/errors.js';
import { InlineHasher } from './digests.js';
import type { DigestAlgorithms, Digests } from './digests.js';
import type { HashReply, HashRequest } from './hash-worker.js';

/** Most hash threads (one per core, as they run beside the main thread). */
export const MAX_HASH_THREADS = 4;
/** Bytes of one upload handed to its thread and not yet hashed before the upload waits. */
export const HASH_INFLIGHT_BYTES = 8 * 1024 * 1024;
/**
 * Chunks are gathered into slabs of this size before they are handed over: a message costs
 * tens of microseconds whatever its size, as much as hashing a 64 KiB socket chunk.
 */
export const HASH_BATCH_BYTES = 1024 * 1024;
/**
 * Bodies smaller than this are hashed on the main thread: measured here, the copy into slabs
 * and the messages cost the main thread about as much as MD5 itself for 1 MiB uploads; for
 * large ones the hashing moves to other cores.
 */
export const HASH_THREAD_MIN_BYTES = 8 * 1024 * 1024;
/** Hashed slabs kept for reuse (beyond, they are left to the garbage collector). */
const MAX_FREE_SLABS = 32;

/** Slabs of shared memory that travel to the hash threads without being copied. */
class SlabPool {
  readonly #free: SharedArrayBuffer[] = [];

  take(): SharedArrayBuffer {
    return this.#free.pop() ?? new SharedArrayBuffer(HASH_BATCH_BYTES);
  }

  give(slab: SharedArrayBuffer): void {
    if (this.#free.length < MAX_FREE_SLABS) this.#free.push(slab);
  }
}

interface SessionState {
  inflight: number;
  waiters: (() => void)[];
  done: ((d: Digests) => void) | undefined;
  fail: (err: Error) => void;
}

class HashThread {
  readonly worker: Worker;
  readonly sessions = new Map<number, SessionState>();

  constructor(
    readonly slabs: SlabPool,
    onExit: (t: HashThread) => void,
  ) {
    this.worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    this.worker.unref();
    this.worker.on('message', (m: HashReply) => {
      if (m.t === 'ack') this.slabs.give(m.slab);
      const s = this.sessions.get(m.id);
      if (s === undefined) return;
      if (m.t === 'ack') {
        s.inflight -= m.bytes;
        if (s.inflight <= HASH_INFLIGHT_BYTES) for (const w of s.waiters.splice(0)) w();
      } else {
        this.sessions.delete(m.id);
        // Buffers arrive as plain Uint8Arrays after the structured clone.
        const d = m.digests;
        s.done?.({
          ...d,
          md5: Buffer.from(d.md5),
          ...(d.sha256 === undefined ? {} : { sha256: Buffer.from(d.sha256) }),
          ...(d.sha1 === undefined ? {} : { sha1: Buffer.from(d.sha1) }),
          ...(d.crc64nvme === undefined ? {} : { crc64nvme: Buffer.from(d.crc64nvme) }),
        });
      }
    });
    const failAll = (err: Error): void => {
      for (const s of this.sessions.values()) s.fail(err);
      this.sessions.clear();
      onExit(this);
    };
    this.worker.on('error', (err) => failAll(err));
    this.worker.on('exit', (code) =>
      failAll(new StrataError('STRATA_INTERNAL', `hash thread exited (${code})`)),
    );
  }

  post(m: HashRequest): void {
    this.worker.postMessage(m);
  }
}

/** The digests of one body, computed on a hash thread. */
export class HashSession {
  readonly #thread: HashThread;
  readonly #id: number;
  readonly #state: SessionState;
  #failure: Error | undefined;
  #ended = false;
  #slab: SharedArrayBuffer | undefined;
  #batch: Buffer | undefined;
  #batched = 0;

  constructor(thread: HashThread, id: number, algos: DigestAlgorithms) {
    this.#thread = thread;
    this.#id = id;
    this.#state = {
      inflight: 0,
      waiters: [],
      done: undefined,
      fail: (err) => {
        this.#failure = err;
        for (const w of this.#state.waiters.splice(0)) w();
      },
    };
    thread.sessions.set(id, this.#state);
    thread.post({ t: 'start', id, algos });
  }

  /** Hands a chunk over; resolves at once unless too many bytes wait to be hashed. */
  async update(chunk: Buffer): Promise<void> {
    this.#checkHealthy();
    let off = 0;
    while (off < chunk.length) {
      if (this.#slab === undefined || this.#batch === undefined) {
        this.#slab = this.#thread.slabs.take();
        this.#batch = Buffer.from(this.#slab);
      }
      const n = chunk.copy(this.#batch, this.#batched, off);
      off += n;
      this.#batched += n;
      if (this.#batched === HASH_BATCH_BYTES) this.#flush();
    }
    if (this.#state.inflight > HASH_INFLIGHT_BYTES) {
      await new Promise<void>((resolve) => this.#state.waiters.push(resolve));
      this.#checkHealthy();
    }
  }

  /** Transfers the gathered bytes to the thread. */
  #flush(): void {
    const slab = this.#slab;
    if (slab === undefined || this.#batched === 0) return;
    const length = this.#batched;
    this.#slab = undefined;
    this.#batch = undefined;
    this.#batched = 0;
    this.#state.inflight += length;
    this.#thread.post({ t: 'data', id: this.#id, slab, length });
  }

  #checkHealthy(): void {
    const f = this.#failure;
    if (f !== undefined) throw f;
  }

  /** The finished digests (after every chunk handed over). */
  digest(): Promise<Digests> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.#ended = true;
    this.#flush();
    return new Promise<Digests>((resolve, reject) => {
      this.#state.done = resolve;
      this.#state.fail = reject;
      this.#thread.post({ t: 'end', id: this.#id });
    });
  }

  /** Forgets the session (an upload that failed before its end). */
  drop(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#slab !== undefined) this.#thread.slabs.give(this.#slab);
    this.#slab = undefined;
    this.#batch = undefined;
    this.#thread.sessions.delete(this.#id);
    this.#thread.post({ t: 'drop', id: this.#id });
  }
}

export class HashPool {
  readonly #size: number;
  readonly #threads: HashThread[] = [];
  readonly #slabs = new SlabPool();
  #nextId = 1;

  /** `threads` 0: every body is hashed inline. */
  constructor(threads = Math.min(MAX_HASH_THREADS, availableParallelism())) {
    this.#size = threads;
  }

  /**
   * A session on the thread with the fewest uploads (threads start on first use); a body known
   * to be small is hashed inline, where handing it over would cost about what hashing does.
   */
  session(algos: DigestAlgorithms, expectedBytes?: number): HashSession | InlineSession {
    if (this.#size === 0 || (expectedBytes !== undefined && expectedBytes < HASH_THREAD_MIN_BYTES)) {
      return new InlineSession(algos);
    }
    let thread: HashThread | undefined;
    if (this.#threads.length < this.#size) {
      thread = new HashThread(this.#slabs, (t) => {
        const i = this.#threads.indexOf(t);
        if (i >= 0) this.#threads.splice(i, 1);
      });
      this.#threads.push(thread);
    } else {
      for (const t of this.#threads)
        if (thread === undefined || t.sessions.size < thread.sessions.size) thread = t;
    }
    return new HashSession(thread as HashThread, this.#nextId++, algos);
  }

  async close(): Promise<void> {
    await Promise.all(this.#threads.splice(0).map((t) => t.worker.terminate()));
  }
}

/** The digests of a small body, computed on the main thread as the chunks pass. */
export class InlineSession {
  readonly #h: InlineHasher;
  constructor(algos: DigestAlgorithms) {
    this.#h = new InlineHasher(algos);
  }
  update(chunk: Buffer): Promise<void> {
    this.#h.update(chunk);
    return Promise.resolve();
  }
  digest(): Promise<Digests> {
    return this.#h.digest();
  }
  drop(): void {
    // nothing held
  }
}
