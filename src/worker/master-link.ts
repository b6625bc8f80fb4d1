/**
 * The worker's side of master coordination: register with a full block report (paged), then
 * heartbeat every interval with tier usage and the block changes since the last heartbeat, and
 * carry out the commands the master answers with. The master's addresses come from
 * `client.master_addrs`; the RPC client fails over between them (only the leader serves).
 *
 * Registration happens at start, whenever the master answers `register` (it restarted and lost
 * its soft state) or refuses a heartbeat as coming from an unknown worker, and after too many
 * changes piled up while the master was away.
 */
import type { Logger } from '../common/logging.js';
import { toStrataError } from '../common/errors.js';
import { MasterCalls } from '../protocol/index.js';
import type { TierUsage, WorkerAddress, WorkerCommand } from '../protocol/index.js';
import type { CallOptions, UnaryCall } from '../rpc/api.js';
import type { BlockDelta } from './block-delta.js';
import type { BlockStore } from './block-store.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** Blocks per BlockReport page (the protocol allows 100,000). */
export const REPORT_PAGE_BLOCKS = 10_000;
/** Changes per heartbeat list; more pile up → full report instead. */
export const MAX_DELTA_PER_HEARTBEAT = 100_000;
/** Shortest deadline of one heartbeat call (intervals in tests can be a few ms). */
const MIN_HEARTBEAT_DEADLINE_MS = 1_000;
/** Pause before retrying a failed registration. */
const REGISTER_RETRY_MIN_MS = 200;

/** The part of the RPC client the link uses (the master's RpcClient, or a test double). */
export interface MasterClient {
  call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, opts?: CallOptions): Promise<Res>;
}

export interface MasterLinkOptions {
  client: MasterClient;
  clusterId: string;
  address: WorkerAddress;
  version: string;
  store: BlockStore;
  delta: BlockDelta;
  tierUsage: () => TierUsage[];
  /** Until the master says otherwise (`master.heartbeat_interval`). */
  heartbeatIntervalMs: number;
  /** Runs one command; errors are logged, never stop the loop. */
  onCommand: (cmd: WorkerCommand) => Promise<void>;
  /** Drop candidates to ask about in the next heartbeat (see Evictor). */
  takeEvictCandidates: () => number[];
  /** Replication tasks that failed since the last heartbeat; given back when it fails. */
  failedReplications?: { take: () => number[]; restore: (ids: readonly number[]) => void };
  metrics?: WorkerMetrics;
  log: Logger;
  reportPageBlocks?: number;
}

export class MasterLink {
  readonly #o: MasterLinkOptions;
  #intervalMs: number;
  #registered = false;
  #everRegistered = false;
  #stopped = false;
  #wake: (() => void) | undefined;
  #soon = false;
  #loop: Promise<void> | undefined;
  #lastOkMs = 0;
  #lastError: string | undefined;
  readonly #commandsInFlight = new Set<Promise<void>>();
  /** Aborts a call in flight when the link stops (a dead master must not hold up shutdown). */
  readonly #abort = new AbortController();

  constructor(opts: MasterLinkOptions) {
    this.#o = opts;
    this.#intervalMs = opts.heartbeatIntervalMs;
  }

  get registered(): boolean {
    return this.#registered;
  }

  /** Registered at least once: the master knows this worker and its blocks. */
  get everRegistered(): boolean {
    return this.#everRegistered;
  }

  get lastHeartbeatOkMs(): number {
    return this.#lastOkMs;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  get heartbeatIntervalMs(): number {
    return this.#intervalMs;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Sends the next heartbeat now (e.g. drop candidates are waiting). */
  heartbeatSoon(): void {
    this.#soon = true;
    this.#wake?.();
  }

  /** Stops the loop and waits for commands being carried out. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort(new Error('the worker is stopping'));
    this.#wake?.();
    await this.#loop;
    await Promise.allSettled([...this.#commandsInFlight]);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (!this.#registered) await this.#register();
        else await this.#heartbeat();
        failures = 0;
        this.#lastError = undefined;
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        const e = toStrataError(err);
        this.#lastError = e.message;
        // Log the first failure and then one in ten, so a long master outage does not flood.
        if (failures === 1 || failures % 10 === 0) {
          const what = this.#registered ? 'heartbeat failed' : 'registration failed';
          // A refusal (another cluster, a bad request) needs an operator; an outage is transient.
          if (e.retryable) this.#o.log.warn({ err: e, failures }, what);
          else this.#o.log.error({ err: e, failures }, `${what}: refused by the master`);
        }
        if (this.#registered && !e.retryable) {
          // The master refused us outright (e.g. it does not know this worker): start over.
          this.#registered = false;
        }
      }
      if (this.#stopped) break;
      const wait = this.#registered
        ? this.#intervalMs
        : Math.max(REGISTER_RETRY_MIN_MS, Math.min(this.#intervalMs, 1000));
      await this.#sleep(this.#soon && this.#registered ? 0 : wait);
    }
  }

  async #register(): Promise<void> {
    const o = this.#o;
    o.delta.resetForFullReport();
    // Snapshot in one synchronous step: later changes land in the delta for the next heartbeat.
    const blocks = [...o.store.list()].map((b) => ({
      blockId: b.blockId,
      length: b.lengthBytes,
      storageType: b.storageType,
    }));
    const opts = { signal: this.#abort.signal };
    const res = await o.client.call(
      MasterCalls.RegisterWorker,
      { clusterId: o.clusterId, address: o.address, tiers: o.tierUsage(), version: o.version },
      opts,
    );
    this.#intervalMs = res.heartbeatIntervalMs;
    const page = o.reportPageBlocks ?? REPORT_PAGE_BLOCKS;
    for (let i = 0; i === 0 || i < blocks.length; i += page) {
      const slice = blocks.slice(i, i + page);
      await o.client.call(
        MasterCalls.BlockReport,
        { workerId: o.address.workerId, blocks: slice, last: i + page >= blocks.length },
        opts,
      );
    }
    this.#registered = true;
    this.#everRegistered = true;
    this.#lastOkMs = Date.now();
    o.log.info(
      { workerId: o.address.workerId, blocks: blocks.length, heartbeatIntervalMs: this.#intervalMs },
      'registered with the master',
    );
  }

  async #heartbeat(): Promise<void> {
    const o = this.#o;
    this.#soon = false;
    if (o.delta.size > MAX_DELTA_PER_HEARTBEAT) {
      // Too much piled up while the master was away: one full report says it all.
      this.#registered = false;
      return;
    }
    const batch = o.delta.take(MAX_DELTA_PER_HEARTBEAT);
    const candidates = o.takeEvictCandidates();
    const failed = o.failedReplications?.take() ?? [];
    let res: { commands: WorkerCommand[] };
    try {
      res = await o.client.call(
        MasterCalls.Heartbeat,
        {
          workerId: o.address.workerId,
          tiers: o.tierUsage(),
          ...(batch.added.length > 0 ? { addedBlocks: batch.added } : {}),
          ...(batch.removed.length > 0 ? { removedBlocks: batch.removed } : {}),
          ...(batch.corrupt.length > 0 ? { corruptBlocks: batch.corrupt } : {}),
          ...(failed.length > 0 ? { failedReplications: failed } : {}),
          ...(candidates.length > 0 ? { evictCandidates: candidates } : {}),
        },
        // A heartbeat that takes longer than an interval is stale: the next one says more.
        { signal: this.#abort.signal, deadlineMs: Math.max(this.#intervalMs, MIN_HEARTBEAT_DEADLINE_MS) },
      );
    } catch (err) {
      o.delta.restore(batch);
      o.failedReplications?.restore(failed);
      o.metrics?.heartbeats.inc({ outcome: 'failed' });
      throw err;
    }
    o.metrics?.heartbeats.inc({ outcome: 'ok' });
    this.#lastOkMs = Date.now();
    for (const cmd of res.commands) {
      if (cmd.type === 'register') {
        o.log.info('the master asked for a new registration');
        this.#registered = false;
        continue;
      }
      const p = o.onCommand(cmd).catch((err: unknown) => {
        o.log.error({ err, command: cmd.type }, 'worker command failed');
      });
      this.#commandsInFlight.add(p);
      void p.finally(() => this.#commandsInFlight.delete(p));
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}
