/**
 * One etcd lease kept alive, and a local, conservative answer to "is it still mine?".
 *
 * etcd counts a lease's TTL from when it receives a keepalive; we count from when we sent it.
 * So `validUntil` (monotonic clock: the send time of the last answered keepalive plus the TTL,
 * minus a margin for clock-rate drift) always ends before etcd could expire the lease, and a
 * leader that stops at `validUntil` has stopped before anyone else can be elected. A process
 * frozen (SIGSTOP, a long GC pause) past `validUntil` finds it passed the moment it runs again.
 */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logging.js';
import type { EtcdObserver } from '../../meta/etcd/index.js';

/** Share of the TTL kept as a margin against clock-rate drift between us and etcd. */
const VALIDITY_MARGIN_RATIO = 0.05;
/** Smallest margin, whatever the TTL. */
const VALIDITY_MARGIN_MIN_MS = 100;
/** Keepalives per TTL (etcd's Go client sends one every third of the TTL). */
const KEEPALIVES_PER_TTL = 3;

export class LeaseKeeper {
  readonly #client: Etcd3;
  readonly #ttlSec: number;
  readonly #log: Logger;
  readonly #observe: EtcdObserver | undefined;
  #id: string | undefined;
  #ttlMs = 0;
  #validUntil = 0;
  #stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  #opening = false;
  /** Send time of the keepalive waiting for its answer. */
  #outstanding: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lost: string | undefined;
  #onLost: ((why: string) => void) | undefined;

  constructor(client: Etcd3, ttlSec: number, log: Logger, observe?: EtcdObserver) {
    this.#client = client;
    this.#ttlSec = ttlSec;
    this.#log = log;
    this.#observe = observe;
  }

  /** The lease id (decimal, as etcd gives it); set once granted. */
  get id(): string {
    if (this.#id === undefined) throw new Error('lease not granted');
    return this.#id;
  }

  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Grants the lease and starts keeping it alive; `onLost` is called once when it is lost. */
  async grant(onLost: (why: string) => void): Promise<string> {
    this.#onLost = onLost;
    const t0 = performance.now();
    const r = await this.#client.leaseClient.leaseGrant({ TTL: this.#ttlSec });
    this.#observe?.('lease', (performance.now() - t0) / 1000, true);
    this.#id = r.ID;
    // etcd may raise a TTL below its minimum: the answer says what was granted.
    this.#ttlMs = Number(r.TTL) * 1000;
    this.#validUntil = t0 + this.#ttlMs - this.#margin();
    const everyMs = Math.max(50, Math.floor(this.#ttlMs / KEEPALIVES_PER_TTL));
    this.#timer = setInterval(() => this.#tick(), Math.min(everyMs, 250));
    this.#timer.unref();
    this.#keepalive(everyMs);
    return r.ID;
  }

  /** Whether the lease is certainly still alive in etcd (by our conservative clock). */
  isValid(): boolean {
    return this.#lost === undefined && performance.now() < this.#validUntil;
  }

  /** Milliseconds of validity left (0 when lost). */
  remainingMs(): number {
    return this.isValid() ? this.#validUntil - performance.now() : 0;
  }

  #margin(): number {
    return Math.max(VALIDITY_MARGIN_MIN_MS, this.#ttlMs * VALIDITY_MARGIN_RATIO);
  }

  #lastSent = 0;

  #tick(): void {
    if (this.#lost !== undefined) return;
    if (performance.now() >= this.#validUntil) {
      this.#lose('no keepalive answered within the lease TTL');
      return;
    }
    const everyMs = Math.max(50, Math.floor(this.#ttlMs / KEEPALIVES_PER_TTL));
    if (performance.now() - this.#lastSent >= everyMs) this.#keepalive(everyMs);
  }

  #keepalive(everyMs: number): void {
    if (this.#lost !== undefined || this.#id === undefined) return;
    // One keepalive in flight at a time; one unanswered for too long is given up and re-sent.
    if (this.#outstanding !== undefined && performance.now() - this.#outstanding < everyMs) return;
    const stream = this.#stream;
    if (stream === undefined) {
      if (!this.#opening) {
        this.#opening = true;
        void this.#open().finally(() => {
          this.#opening = false;
        });
      }
      return;
    }
    const now = performance.now();
    this.#outstanding = now;
    this.#lastSent = now;
    try {
      stream.write({ ID: this.#id });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'lease keepalive write failed');
      this.#dropStream();
    }
  }

  async #open(): Promise<void> {
    try {
      const stream = await this.#client.leaseClient.leaseKeepAlive();
      if (this.#lost !== undefined) {
        stream.end();
        return;
      }
      stream.on('data', (res) => this.#answered(res));
      stream.on('error', (err) => {
        this.#log.debug({ err: err.message }, 'lease keepalive stream failed; reopening');
        if (this.#stream === stream) this.#dropStream();
      });
      stream.on('end', () => {
        if (this.#stream === stream) this.#dropStream();
      });
      this.#stream = stream;
      this.#keepalive(0);
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'lease keepalive stream could not open');
    }
  }

  #answered(res: ILeaseKeepAliveResponse): void {
    const sent = this.#outstanding;
    this.#outstanding = undefined;
    if (sent === undefined || this.#lost !== undefined) return;
    this.#observe?.('lease', (performance.now() - sent) / 1000, true);
    const ttl = Number(res.TTL);
    if (!(ttl > 0)) {
      this.#lose('etcd says the lease has expired');
      return;
    }
    const until = sent + ttl * 1000 - this.#margin();
    if (until > this.#validUntil) this.#validUntil = until;
  }

  #dropStream(): void {
    const s = this.#stream;
    this.#stream = undefined;
    this.#outstanding = undefined;
    try {
      s?.end();
    } catch {
      // already closed
    }
  }

  #lose(why: string): void {
    if (this.#lost !== undefined) return;
    this.#lost = why;
    this.#stop();
    this.#onLost?.(why);
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#dropStream();
  }

  /** Stops keeping it alive and revokes it (its keys go at once); best effort within `timeoutMs`. */
  async revoke(timeoutMs: number): Promise<void> {
    const id = this.#id;
    this.#lost ??= 'revoked';
    this.#stop();
    if (id === undefined) return;
    try {
      await this.#client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + timeoutMs });
    } catch (err) {
      this.#log.debug({ err: (err as Error).message }, 'lease revoke failed; it expires on its own');
    }
  }
}
