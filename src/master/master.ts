/**
 * `strata master`: the metadata server process. Opens (or formats) the store under
 * `<meta_dir>/<cluster_id>/`, builds the core, serves the cluster RPC on `rpc_port` and the ops
 * HTTP (metrics, health, JSON API) on `web_port`.
 *
 * Ready (HTTP 200 on /ready) only when the store is open and the RPC server listens. Stopping:
 * the RPC server stops accepting and lets in-flight calls finish, periodic work stops, the store
 * commits what is pending and closes, then the HTTP server goes.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { ClusterConfig } from '../common/config/index.js';
import { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { createRegistry } from '../common/metrics.js';
import { OpsHttpServer } from '../common/ops-http.js';
import { formatHostPort } from '../common/net.js';
import { LmdbStore } from '../meta/index.js';
import type { MetaStore } from '../meta/index.js';
import { RetryCache, RpcServer } from '../rpc/index.js';
import type { UnaryHandler } from '../rpc/api.js';
import { MasterCore } from './core.js';
import { LOCK_FILE, lockDir } from './dir-lock.js';
import type { DirLock } from './dir-lock.js';
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

export class MasterServer {
  readonly core: MasterCore;
  readonly store: MetaStore;
  readonly rpc: RpcServer;
  readonly http: OpsHttpServer;
  readonly registry: Registry;
  readonly webConsole: ConsoleHandle;
  readonly #log: Logger;
  readonly #lock: DirLock;
  #listening = false;
  #stopping: Promise<void> | undefined;

  private constructor(
    core: MasterCore,
    store: MetaStore,
    rpc: RpcServer,
    http: OpsHttpServer,
    registry: Registry,
    webConsole: ConsoleHandle,
    log: Logger,
    lock: DirLock,
  ) {
    this.core = core;
    this.store = store;
    this.rpc = rpc;
    this.http = http;
    this.registry = registry;
    this.webConsole = webConsole;
    this.#log = log;
    this.#lock = lock;
  }

  static async start(opts: MasterServerOptions): Promise<MasterServer> {
    const { config, log } = opts;
    const m = config.master;
    if (m.meta_store !== 'lmdb') {
      throw new StrataError(
        'STRATA_NOT_IMPLEMENTED',
        `master.meta_store = "${m.meta_store}" is not available in this build yet; use "lmdb"`,
      );
    }
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
    let store: MetaStore | undefined;
    let core: MasterCore | undefined;
    try {
      if (config.format_master) {
        log.warn({ dir }, 'format_master = true: wiping the metadata store');
        for (const name of readdirSync(dir))
          if (name !== LOCK_FILE) rmSync(join(dir, name), { recursive: true, force: true });
      }
      store = await LmdbStore.open({
        dir,
        durability: m.meta_sync ? 'flush' : 'commit',
        log: log.child({ component: 'meta.lmdb' }),
      });
      const openStore = store;
      const registry = opts.registry ?? createRegistry('master', { cluster: config.cluster_id });
      const rpc = new RpcServer({ log, registry });
      // Readiness asks the server, which exists only once everything below is built.
      const late: { server?: MasterServer } = {};
      const http = new OpsHttpServer({
        host: m.bind_host,
        port: m.web_port,
        registry,
        log: log.child({ component: 'master.http' }),
        ready: () =>
          late.server === undefined || !late.server.#listening || !openStore.isOpen
            ? { ok: false, reason: 'starting' }
            : late.server.#stopping !== undefined
              ? { ok: false, reason: 'stopping' }
              : { ok: true },
      });
      const rpcAddress = (): string => {
        try {
          return formatHostPort({ host: m.hostname, port: rpc.address().port });
        } catch {
          return formatHostPort({ host: m.hostname, port: m.rpc_port });
        }
      };
      const webAddress = (): string => formatHostPort({ host: m.hostname, port: http.address().port });
      core = await MasterCore.open({
        config,
        store: openStore,
        log,
        rpcAddress,
        webAddress,
      });
      const retries = new RetryCache({ ttlMs: m.retry_cache_ttl });
      for (const b of core.bindings()) {
        const handler = b.handler as UnaryHandler<unknown, unknown>;
        rpc.handle(b.def, b.def.mutating ? retries.wrap(b.def, handler) : handler);
      }
      registerMasterMetrics(registry, core, openStore);
      const web = addMasterRoutes(http, { core, store: openStore, config, rpcAddress, registry, log });
      const server = new MasterServer(core, openStore, rpc, http, registry, web, log, lock);
      late.server = server;
      await http.listen();
      await rpc.listen(m.bind_host, m.rpc_port);
      server.#listening = true;
      core.start();
      web.start();
      const c = core.namespace.counts();
      log.info(
        { rpc: rpcAddress(), web: webAddress(), dir, files: c.files, dirs: c.dirs, blocks: c.blocks },
        'master ready',
      );
      return server;
    } catch (err) {
      await core?.stop().catch(() => undefined);
      await store?.close().catch(() => undefined);
      lock.release();
      throw err;
    }
  }

  /** Graceful stop (idempotent). */
  stop(graceMs = MASTER_STOP_GRACE_MS): Promise<void> {
    this.#stopping ??= this.#stop(graceMs);
    return this.#stopping;
  }

  async #stop(graceMs: number): Promise<void> {
    this.#log.info('master stopping');
    await this.rpc.close(graceMs);
    this.#listening = false;
    await this.webConsole.stop();
    await this.core.stop();
    await this.store.close();
    this.#lock.release();
    await this.http.close();
  }
}
