/**
 * `strata master`: the metadata server process. Opens the store, serves the cluster RPC on
 * `rpc_port` and the ops HTTP (metrics, health, JSON API) on `web_port`.
 *
 * Two kinds of store (`master.meta_store`):
 * - `lmdb`: the store under `<meta_dir>/<cluster_id>/`, one master, which leads from start to stop.
 * - `etcd`: several masters share the store in etcd and elect a leader (ha/election.ts). Only the
 *   leader serves; a standby answers every call with "not leader" and the leader's address (the
 *   RPC gate), and clients and workers follow it. Each term of leadership gets a fresh core: the
 *   namespace caches, leases and counts are loaded from etcd when the term starts (never kept
 *   from an earlier term), worker state is rebuilt as workers re-register, and every commit of
 *   the term is fenced by the leadership key. See docs/ha.md.
 *
 * Ready (HTTP 200 on /ready) once the store is open and the RPC server listens — on a standby
 * too (it can take over); `/leader` answers 200 only on the serving leader. Stopping: the RPC
 * server stops accepting and lets in-flight calls finish, periodic work stops, leadership is
 * resigned (a standby takes over at once), the store closes, then the HTTP server goes.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { ClusterConfig } from '../common/config/index.js';
import { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { createRegistry } from '../common/metrics.js';
import { OpsHttpServer, sendJson } from '../common/ops-http.js';
import { formatHostPort } from '../common/net.js';
import { LmdbStore, MetaError } from '../meta/index.js';
import type { MetaStore } from '../meta/index.js';
import { EtcdStore, createEtcdClient } from '../meta/etcd/index.js';
import type { EtcdFence } from '../meta/etcd/index.js';
import { MASTER_CALLS } from '../protocol/master-calls.js';
import { MOUNT_CALLS } from '../protocol/mount-calls.js';
import type { MasterInfo } from '../protocol/types.js';
import { NotLeaderError, RetryCache, RpcServer, UnavailableError } from '../rpc/index.js';
import type { CallContext, RemoteAddress, UnaryCall, UnaryHandler } from '../rpc/api.js';
import { MasterCore } from './core.js';
import { LOCK_FILE, lockDir } from './dir-lock.js';
import type { DirLock } from './dir-lock.js';
import { LeaderElection } from './ha/election.js';
import { registerHaMetrics } from './ha/metrics.js';
import type { HaMetrics } from './ha/metrics.js';
import { RetryRecords } from './ha/retry-records.js';
import { attachRequestScope } from './request-scope.js';
import { KnownWorkersRecorder, loadKnownWorkers } from './ha/known-workers.js';
import { WorkerWindow, reregisterWindowMs } from './ha/worker-window.js';
import type { ConsoleHandle } from './console/index.js';
import { addMasterRoutes } from './http.js';
import { registerMasterMetrics } from './metrics.js';

/** How long a stopping master lets in-flight calls finish. */
export const MASTER_STOP_GRACE_MS = 5_000;

export interface MasterServerOptions {
  config: ClusterConfig;
  log: Logger;
  registry?: Registry;
}

type Handler = UnaryHandler<unknown, unknown>;

/** One term of leadership: everything that lives only while this master leads. */
interface Term {
  readonly core: MasterCore;
  readonly handlers: ReadonlyMap<number, Handler>;
  /** Records the known workers for the next leader (HA only). */
  readonly knownWorkersTimer?: NodeJS.Timeout;
}

export class MasterServer {
  readonly store: MetaStore;
  readonly rpc: RpcServer;
  readonly http: OpsHttpServer;
  readonly registry: Registry;
  readonly #config: ClusterConfig;
  readonly #log: Logger;
  readonly #lock: DirLock | undefined;
  readonly #identity = randomUUID();
  readonly #startedAtMs = Date.now();
  #election: LeaderElection | undefined;
  #ha: HaMetrics | undefined;
  #term: Term | undefined;
  #termStopping: Promise<void> | undefined;
  #listening = false;
  #stopping: Promise<void> | undefined;
  #webConsole: ConsoleHandle | undefined;

  private constructor(
    config: ClusterConfig,
    store: MetaStore,
    registry: Registry,
    log: Logger,
    lock: DirLock | undefined,
  ) {
    this.#config = config;
    this.store = store;
    this.registry = registry;
    this.#log = log;
    this.#lock = lock;
    const m = config.master;
    this.rpc = new RpcServer({ log, registry, gate: () => this.#admit() });
    this.http = new OpsHttpServer({
      host: m.bind_host,
      port: m.web_port,
      registry,
      log: log.child({ component: 'master.http' }),
      ready: () => this.#readiness(),
    });
  }

  /** The core of the current term (undefined on a standby or between terms). */
  get core(): MasterCore | undefined {
    return this.#term?.core;
  }

  /** Serving as leader now. */
  get isLeader(): boolean {
    return this.#term !== undefined && (this.#election === undefined || this.#election.isLeader());
  }

  static async start(opts: MasterServerOptions): Promise<MasterServer> {
    const { config, log } = opts;
    const m = config.master;
    const registry = opts.registry ?? createRegistry('master', { cluster: config.cluster_id });
    let server: MasterServer;
    if (m.meta_store === 'etcd') {
      if (config.format_master)
        throw new StrataError(
          'STRATA_BAD_CONFIG',
          'format_master = true is refused with master.meta_store = "etcd": several masters share the ' +
            `store; to wipe it, delete the keys under ${etcdRoot(config)} (etcdctl del --prefix)`,
        );
      const ha = registerHaMetrics(registry, {
        isLeader: () => server.isLeader,
        etcdCache: () =>
          server.store instanceof EtcdStore ? server.store.cacheStats() : { entries: 0, hits: 0, misses: 0 },
      });
      const e = config.etcd;
      const client = createEtcdClient({
        endpoints: e.endpoints,
        dialTimeoutMs: e.dial_timeout,
        username: e.username,
        password: e.password,
        tlsCa: e.tls_ca,
        tlsCert: e.tls_cert,
        tlsKey: e.tls_key,
      });
      const store = await EtcdStore.open({
        client,
        prefix: `${etcdRoot(config)}meta/`,
        ownsClient: true,
        maxTxnOps: e.max_txn_ops,
        maxRequestBytes: e.max_request_bytes,
        observe: ha.observeEtcd,
        log: log.child({ component: 'meta.etcd' }),
      }).catch((err: unknown) => {
        client.close();
        throw new StrataError(
          'STRATA_META_UNAVAILABLE',
          `etcd at ${e.endpoints.join(', ')} cannot be reached: ${(err as Error).message}`,
          { cause: err },
        );
      });
      server = new MasterServer(config, store, registry, log, undefined);
      server.#ha = ha;
      server.#election = new LeaderElection({
        client,
        prefix: `${etcdRoot(config)}election/`,
        ttlSec: Math.max(1, Math.round(e.lease_ttl / 1000)),
        self: {
          id: server.#identity,
          rpcAddress: server.#rpcAddress(),
          webAddress: server.#webAddress(),
          startedAtMs: server.#startedAtMs,
        },
        log,
        observe: ha.observeEtcd,
        onElected: (fence) => server.#beginTerm(fence),
        onDeposed: (reason) => server.#endTerm(reason),
      });
    } else {
      const { store, lock } = await openLmdb(config, log);
      server = new MasterServer(config, store, registry, log, lock);
    }
    try {
      server.#registerHandlers();
      registerMasterMetrics(registry, () => server.core, server.store);
      server.#webConsole = addMasterRoutes(server.http, {
        core: () => server.#termOrRefuse().core,
        masters: () => server.#masters(),
        store: server.store,
        config,
        rpcAddress: () => server.#rpcAddress(),
        registry,
        log,
      });
      server.http.route('GET', '/leader', (_req, res) => {
        const leader = server.#election?.leader();
        sendJson(res, server.isLeader ? 200 : 503, {
          role: server.isLeader ? 'leader' : 'standby',
          leader: server.isLeader ? server.#rpcAddress() : (leader?.rpcAddress ?? null),
          masters: server.#masters(),
        });
      });
      await server.http.listen();
      await server.rpc.listen(m.bind_host, m.rpc_port);
      server.#listening = true;
      server.#webConsole.start();
      const election = server.#election;
      if (election === undefined) await server.#beginTerm(undefined);
      else {
        // The election publishes our addresses: now that we listen, the ports are known.
        election.start();
      }
      log.info(
        { rpc: server.#rpcAddress(), web: server.#webAddress(), store: m.meta_store },
        election === undefined ? 'master ready' : 'master ready (campaigning for leadership)',
      );
      return server;
    } catch (err) {
      await server.#shutdown().catch(() => undefined);
      throw err;
    }
  }

  // ---- terms --------------------------------------------------------------------------------

  /** Becomes the serving leader: a fresh core loaded from the store, fenced by `fence`. */
  async #beginTerm(fence: EtcdFence | undefined): Promise<void> {
    await this.#termStopping;
    const config = this.#config;
    const m = config.master;
    const store = this.store;
    if (store instanceof EtcdStore) {
      store.setFence(fence);
      // Nothing cached in an earlier term (or by someone else's term) is trusted.
      store.clearCache();
      await store.settle();
    }
    const records = new RetryRecords({
      store,
      ttlMs: m.retry_cache_ttl,
      log: this.#log.child({ component: 'master.retries' }),
    });
    const core = await MasterCore.open({
      config,
      store,
      log: this.#log,
      rpcAddress: () => this.#rpcAddress(),
      webAddress: () => this.#webAddress(),
      retryRecords: records,
      registry: this.registry,
      ...(this.#election === undefined ? {} : { masters: () => this.#masters() }),
    });
    const retries = new RetryCache({ ttlMs: m.retry_cache_ttl });
    // A leader taking over from another (etcd) has no worker state yet: answers that depend on
    // it wait for the workers to re-register (ha/worker-window.ts). Inside the retry cache, so a
    // held-back answer is never remembered as the request's outcome.
    // It waits longer for workers the previous leaders knew that have not reported yet.
    const known = this.#election === undefined ? undefined : await loadKnownWorkers(store);
    const window =
      known === undefined
        ? undefined
        : new WorkerWindow(reregisterWindowMs(m.heartbeat_interval), Date.now, {
            ids: known,
            reported: (id) => {
              const w = core.registry.get(id);
              return w !== undefined && w.state !== 'lost' && !w.reporting;
            },
            maxWindowMs: m.worker_lost_interval,
          });
    const handlers = new Map<number, Handler>();
    for (const b of core.bindings()) {
      const code = b.def.code;
      const handler =
        window === undefined ? (b.handler as Handler) : window.guard(code, b.handler as Handler);
      // Store failures are mapped before the retry cache sees them: "etcd unavailable" must
      // reach the client as a retryable STRATA_UNAVAILABLE, never be remembered as the outcome.
      const mapped: Handler = async (req, ctx) => {
        try {
          return await handler(req, ctx);
        } catch (err) {
          throw this.#mapError(err);
        }
      };
      handlers.set(
        code,
        b.def.mutating
          ? (req, ctx) => {
              const key = `${code}:${ctx.requestId}`;
              return retries.run(key, () => {
                attachRequestScope(ctx, key);
                return mapped(req, ctx);
              });
            }
          : mapped,
      );
    }
    let knownWorkersTimer: NodeJS.Timeout | undefined;
    if (known !== undefined) {
      const recorder = new KnownWorkersRecorder({
        store,
        registry: core.registry,
        stored: known,
        lostIntervalMs: m.worker_lost_interval,
        log: this.#log.child({ component: 'master.ha' }),
      });
      knownWorkersTimer = setInterval(() => void recorder.sync(), m.heartbeat_interval);
      knownWorkersTimer.unref();
    }
    this.#term = { core, handlers, ...(knownWorkersTimer === undefined ? {} : { knownWorkersTimer }) };
    core.start();
    this.#ha?.elected();
    const c = core.namespace.counts();
    this.#log.info(
      { files: c.files, dirs: c.dirs, blocks: c.blocks, fence: fence?.createRevision },
      'leading: namespace loaded',
    );
  }

  /** Stops serving as leader (the gate refuses at once; in-flight calls end as they can). */
  #endTerm(reason: string): Promise<void> {
    const term = this.#term;
    if (term === undefined) return this.#termStopping ?? Promise.resolve();
    this.#term = undefined;
    clearInterval(term.knownWorkersTimer);
    this.#ha?.deposed(reason);
    this.#log.warn({ reason }, 'no longer leading: standing by');
    this.#termStopping = term.core.stop().catch((err: unknown) => {
      this.#log.error({ err }, 'stopping the term failed');
    });
    return this.#termStopping;
  }

  // ---- serving ------------------------------------------------------------------------------

  #registerHandlers(): void {
    // Every call a term's core may bind (namespace, workers, mounts and jobs).
    for (const def of [...MASTER_CALLS, ...MOUNT_CALLS]) {
      const code = def.code;
      const dispatch: Handler = async (req: unknown, ctx: CallContext) => {
        const term = this.#termOrRefuse();
        const handler = term.handlers.get(code);
        if (handler === undefined) throw new StrataError('STRATA_INTERNAL', `no handler for call ${code}`);
        let res: unknown;
        try {
          res = await handler(req, ctx);
        } catch (err) {
          throw this.#mapError(err);
        }
        // A read answered from memory is only true if we were still the leader after reading it
        // (a leader frozen past its lease must not answer from a stale cache).
        if (this.#term !== term || !this.isLeader) throw this.#notLeader();
        return res;
      };
      this.rpc.handle(def as UnaryCall<unknown, unknown>, dispatch);
    }
  }

  /** The RPC gate: only a leader with a valid lease serves. */
  #admit(): void {
    if (!this.isLeader) throw this.#notLeader();
  }

  #termOrRefuse(): Term {
    const term = this.#term;
    if (term === undefined || !this.isLeader) throw this.#notLeader();
    return term;
  }

  #notLeader(): NotLeaderError {
    const leader = this.#election?.leader();
    const hint =
      leader === undefined || leader.id === this.#identity ? undefined : parseAddress(leader.rpcAddress);
    return new NotLeaderError(hint);
  }

  /** Store failures as the client should see them (and what they mean for our leadership). */
  #mapError(err: unknown): unknown {
    // By code: an error may have lost its class on the way (the retry cache rebuilds outcomes).
    if (!(err instanceof MetaError || (err instanceof StrataError && err.code.startsWith('STRATA_META_'))))
      return err;
    switch (err.code) {
      case 'STRATA_META_FENCED':
        this.#ha?.fenced();
        this.#election?.stepDown('fenced: another master holds leadership');
        return this.#notLeader();
      case 'STRATA_META_OUTCOME_UNKNOWN':
        // Whatever we hold in memory may now disagree with etcd: start a fresh term. The client
        // retries with its request id; the recorded outcome (if the commit landed) answers it.
        this.#election?.stepDown('a commit outcome is unknown');
        return new UnavailableError(`${err.message}; retry`, { cause: err });
      case 'STRATA_META_UNAVAILABLE':
      case 'STRATA_META_CLOSED':
        return new UnavailableError(err.message, { cause: err });
      default:
        return err;
    }
  }

  #readiness(): { ok: boolean; reason?: string; role?: string; leader?: string | null } {
    if (!this.#listening || !this.store.isOpen) return { ok: false, reason: 'starting' };
    if (this.#stopping !== undefined) return { ok: false, reason: 'stopping' };
    const election = this.#election;
    // A lone master (LMDB) listens a moment before its term has loaded the namespace.
    if (election === undefined)
      return this.#term === undefined ? { ok: false, reason: 'starting' } : { ok: true, role: 'leader' };
    // A standby is ready: it answers (with "not leader" and where the leader is) and can take
    // over. It is not ready while it cannot reach etcd (no candidacy).
    const state = election.state;
    if (state === 'starting' || state === 'stopped')
      return { ok: false, reason: 'not campaigning (etcd unreachable?)', role: 'standby' };
    return {
      ok: true,
      role: this.isLeader ? 'leader' : 'standby',
      leader: election.leader()?.rpcAddress ?? null,
    };
  }

  #masters(): MasterInfo[] {
    const election = this.#election;
    if (election === undefined)
      return [{ address: this.#rpcAddress(), role: 'leader', webAddress: this.#webAddress() }];
    const leaderId = this.isLeader ? this.#identity : election.leader()?.id;
    return election.candidates().map((c) => ({
      address: c.rpcAddress,
      role: c.id === leaderId ? ('leader' as const) : ('standby' as const),
      webAddress: c.webAddress,
    }));
  }

  #rpcAddress(): string {
    const m = this.#config.master;
    try {
      return formatHostPort({ host: m.hostname, port: this.rpc.address().port });
    } catch {
      return formatHostPort({ host: m.hostname, port: m.rpc_port });
    }
  }

  #webAddress(): string {
    const m = this.#config.master;
    try {
      return formatHostPort({ host: m.hostname, port: this.http.address().port });
    } catch {
      return formatHostPort({ host: m.hostname, port: m.web_port });
    }
  }

  // ---- stopping -----------------------------------------------------------------------------

  /** Graceful stop (idempotent). */
  stop(graceMs = MASTER_STOP_GRACE_MS): Promise<void> {
    this.#stopping ??= this.#shutdown(graceMs);
    return this.#stopping;
  }

  async #shutdown(graceMs = MASTER_STOP_GRACE_MS): Promise<void> {
    this.#log.info('master stopping');
    await this.rpc.close(graceMs);
    this.#listening = false;
    await this.#webConsole?.stop();
    if (this.#election !== undefined) await this.#election.stop();
    else await this.#endTerm('stopping');
    await this.#termStopping;
    await this.store.close();
    this.#lock?.release();
    await this.http.close();
  }
}

/** The etcd key prefix of a cluster: `<etcd.prefix>/<cluster_id>/`. */
export function etcdRoot(config: ClusterConfig): string {
  const p = config.etcd.prefix.replace(/\/+$/, '');
  return `${p}/${config.cluster_id}/`;
}

async function openLmdb(config: ClusterConfig, log: Logger): Promise<{ store: MetaStore; lock: DirLock }> {
  const m = config.master;
  const dir = join(m.meta_dir, config.cluster_id);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new StrataError('STRATA_META_DIR', `master.meta_dir: cannot create ${dir} (${code})`, {
      cause: err,
    });
  }
  // The lock comes first: a second master (even one told to format) must not touch the store.
  const lock = lockDir(dir);
  try {
    if (config.format_master) {
      log.warn({ dir }, 'format_master = true: wiping the metadata store');
      for (const name of readdirSync(dir))
        if (name !== LOCK_FILE) rmSync(join(dir, name), { recursive: true, force: true });
    }
    const store = await LmdbStore.open({
      dir,
      durability: m.meta_sync ? 'flush' : 'commit',
      wal: m.meta_wal,
      log: log.child({ component: 'meta.lmdb' }),
    });
    return { store, lock };
  } catch (err) {
    lock.release();
    throw err;
  }
}

function parseAddress(hostPort: string): RemoteAddress | undefined {
  const i = hostPort.lastIndexOf(':');
  if (i <= 0) return undefined;
  const port = Number(hostPort.slice(i + 1));
  let host = hostPort.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : undefined;
}
