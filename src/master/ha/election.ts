/**
 * Leader election of the masters on etcd.
 *
 * Every master campaigns: it takes a lease (TTL `etcd.lease_ttl`) and creates its candidate key
 * `<prefix><lease id>` = its addresses, attached to the lease. The candidate with the smallest
 * create_revision leads. A candidate's key lives exactly as long as its lease: it vanishes when
 * the master resigns (lease revoked), dies or is cut off (lease expired), and the next candidate
 * in line sees it go (watch, with polling as a fallback) and leads.
 *
 * The leadership key and its create_revision are the fence: every metadata commit of the leader
 * compares them (EtcdStore.setFence), so once the key is gone nothing the old leader still has
 * in flight can land. A leader steps down by itself when its lease is no longer certainly valid
 * (lease-keeper.ts), which is before etcd could let anyone else lead.
 *
 * Each term of leadership uses a fresh lease and key: a master that lost leadership campaigns
 * again as a new candidate, so commits of an old term can never pass for commits of a new one.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { Logger } from '../../common/logging.js';
import { prefixEnd } from '../../meta/index.js';
import type { EtcdFence, EtcdObserver } from '../../meta/etcd/index.js';
import { LeaseKeeper } from './lease-keeper.js';

/** How often candidates are listed even without a watch event (the watch is the fast path). */
export const ELECTION_POLL_MS = 500;
/** Longest pause between failed campaign attempts (etcd unreachable). */
const CAMPAIGN_BACKOFF_MAX_MS = 2_000;
const CAMPAIGN_BACKOFF_MIN_MS = 100;
/** Bound on revoking a lease when stepping down (it expires on its own otherwise). */
const REVOKE_TIMEOUT_MS = 2_000;

/** What a master publishes in its candidate key. */
export interface MasterIdentity {
  /** Unique per process. */
  id: string;
  /** "host:port" of its RPC and web servers. */
  rpcAddress: string;
  webAddress: string;
  startedAtMs: number;
}

export interface Candidate extends MasterIdentity {
  key: string;
  createRevision: number;
}

export type ElectionState = 'starting' | 'candidate' | 'electing' | 'leader' | 'stopped';

export interface LeaderElectionOptions {
  client: Etcd3;
  /** Key prefix of the candidates, e.g. "/strata/<cluster>/election/". */
  prefix: string;
  ttlSec: number;
  self: MasterIdentity;
  log: Logger;
  observe?: EtcdObserver;
  /** Called when this master has won; resolves when it serves. A throw gives leadership up. */
  onElected(fence: EtcdFence): Promise<void>;
  /** Called when it has lost or given up leadership (after `isLeader()` turned false). */
  onDeposed(reason: string): Promise<void>;
  pollMs?: number;
}

export class LeaderElection {
  readonly #o: LeaderElectionOptions;
  readonly #log: Logger;
  #state: ElectionState = 'starting';
  #keeper: LeaseKeeper | undefined;
  #mine: Candidate | undefined;
  #candidates: Candidate[] = [];
  #loop: Promise<void> | undefined;
  #stopped = false;
  /** Wakes the campaign loop: a watch event, a poll, a lost lease, a step-down. */
  #wake: (() => void) | undefined;
  #interrupt: string | undefined;
  #changes = 0;

  constructor(opts: LeaderElectionOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'master.election' });
  }

  get state(): ElectionState {
    return this.#state;
  }

  /** Times this master became leader. */
  get leadershipChanges(): number {
    return this.#changes;
  }

  /** Leader now, with a lease that is certainly still valid. */
  isLeader(): boolean {
    return this.#state === 'leader' && this.#keeper?.isValid() === true;
  }

  /** The current leader as last listed (undefined while nobody leads). */
  leader(): Candidate | undefined {
    return this.#candidates[0];
  }

  /** Every master campaigning, leader first. */
  candidates(): readonly Candidate[] {
    return this.#candidates;
  }

  /** This master's candidate key, while it campaigns. */
  get self(): Candidate | undefined {
    return this.#mine;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Gives leadership up now (the master stays a candidate and may lead again later). */
  stepDown(reason: string): void {
    if (this.#state !== 'leader' && this.#state !== 'electing') return;
    this.#interrupt = reason;
    this.#wake?.();
  }

  /** Stops campaigning: resigns if leading (the lease is revoked, so a standby takes over at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#interrupt ??= 'resigned';
    this.#wake?.();
    await this.#loop;
    this.#state = 'stopped';
  }

  async #run(): Promise<void> {
    let backoffMs = CAMPAIGN_BACKOFF_MIN_MS;
    while (!this.#stopped) {
      try {
        await this.#campaign();
        backoffMs = CAMPAIGN_BACKOFF_MIN_MS;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'campaign failed; trying again');
        await sleep(backoffMs);
        backoffMs = Math.min(CAMPAIGN_BACKOFF_MAX_MS, backoffMs * 2);
      }
    }
  }

  /** One candidacy: a lease, a key, and leadership when it comes; returns when the lease is gone. */
  async #campaign(): Promise<void> {
    const o = this.#o;
    const keeper = new LeaseKeeper(o.client, o.ttlSec, this.#log, o.observe);
    this.#keeper = keeper;
    let lost: string | undefined;
    const leaseId = await keeper.grant((why) => {
      lost = why;
      this.#wake?.();
    });
    let watcher: Watcher | undefined;
    let reason = 'lease lost';
    try {
      const key = `${o.prefix}${leaseId}`;
      const keyBytes = Buffer.from(key);
      const r = await o.client.kv.txn({
        compare: [{ key: keyBytes, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [
          { request_put: { key: keyBytes, value: Buffer.from(JSON.stringify(o.self)), lease: leaseId } },
        ],
      });
      if (!r.succeeded) throw new Error(`candidate key ${key} exists already`);
      this.#mine = { ...o.self, key, createRevision: Number(r.header.revision) };
      this.#state = 'candidate';
      this.#interrupt = undefined;
      watcher = await o.client
        .watch()
        .prefix(o.prefix)
        .create()
        .catch(() => undefined);
      watcher?.on('put', () => this.#wake?.());
      watcher?.on('delete', () => this.#wake?.());
      watcher?.on('error', () => undefined);
      for (;;) {
        if (this.#stopped) {
          reason = 'resigned';
          break;
        }
        if (lost !== undefined) {
          reason = `lease lost: ${lost}`;
          break;
        }
        if (this.#interrupt !== undefined) {
          reason = this.#interrupt;
          break;
        }
        try {
          if (!(await this.#evaluate())) {
            reason = 'candidate key deleted (lease expired or revoked)';
            break;
          }
        } catch (err) {
          if ((err as { fatal?: boolean }).fatal === true) throw err;
          this.#log.debug({ err: (err as Error).message }, 'listing candidates failed');
        }
        await this.#sleepOrWake(o.pollMs ?? ELECTION_POLL_MS);
      }
    } finally {
      await watcher?.cancel().catch(() => undefined);
      await this.#depose(reason);
      await keeper.revoke(REVOKE_TIMEOUT_MS);
      this.#mine = undefined;
      if (this.#state !== 'stopped') this.#state = 'starting';
    }
  }

  /** Lists the candidates and takes leadership when first in line; false when our key is gone. */
  async #evaluate(): Promise<boolean> {
    const o = this.#o;
    const p = Buffer.from(o.prefix);
    const r = await o.client.kv.range({ key: p, range_end: Buffer.from(prefixEnd(p) as Uint8Array) });
    const list: Candidate[] = [];
    for (const kv of r.kvs) {
      try {
        const id = JSON.parse(kv.value.toString('utf8')) as MasterIdentity;
        list.push({ ...id, key: kv.key.toString('utf8'), createRevision: Number(kv.create_revision) });
      } catch {
        this.#log.warn({ key: kv.key.toString('utf8') }, 'ignoring a malformed candidate key');
      }
    }
    list.sort((a, b) => a.createRevision - b.createRevision);
    this.#candidates = list;
    const mine = this.#mine;
    if (mine === undefined || !list.some((c) => c.key === mine.key)) return false;
    if (this.#state === 'candidate' && list[0]?.key === mine.key && this.#keeper?.isValid() === true) {
      this.#state = 'electing';
      const t0 = Date.now();
      try {
        await o.onElected({ key: Buffer.from(mine.key), createRevision: mine.createRevision });
      } catch (err) {
        this.#log.error({ err }, 'could not take over as leader; giving leadership up');
        throw Object.assign(new Error(`taking over failed: ${(err as Error).message}`), { fatal: true });
      }
      this.#state = 'leader';
      this.#changes++;
      this.#log.info({ key: mine.key, tookMs: Date.now() - t0 }, 'this master is the leader');
    }
    return true;
  }

  async #depose(reason: string): Promise<void> {
    const was = this.#state;
    this.#state = this.#stopped ? 'stopped' : 'starting';
    if (was === 'leader' || was === 'electing') {
      this.#log.warn({ reason }, 'this master is no longer the leader');
      await this.#o
        .onDeposed(reason)
        .catch((err: unknown) => this.#log.error({ err }, 'stepping down failed'));
    }
  }

  #sleepOrWake(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
