/**
 * The `strata proxy` process: the proxy listener, the health listener (`/health`, `/ready`,
 * `/live`), the Prometheus listener, the cache tiers and the origin pool, wired from one
 * configuration. `reload` applies what a SIGHUP may change and names the keys that need a
 * restart; `stop` drains: no new connections, in-flight responses get `drain_timeout_seconds`.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/logging.js';
import { parseHostPort } from '../common/net.js';
import { OpsHttpServer } from '../common/ops-http.js';
import { LIVE_KEYS, changedKeys } from './config.js';
import type { ProxyConfig } from './config.js';
import { ProxyHandler } from './handler.js';
import type { LiveSettings } from './handler.js';
import { ProxyMetrics } from './metrics.js';
import { ClusterStore, defaultSpoolDir } from './store/cluster.js';
import { FileStore } from './store/file.js';
import { MemoryStore } from './store/memory.js';
import { RawDiskStore } from './store/raw-disk/store.js';
import type { ProxyStore } from './store/types.js';
import { TieredCache } from './tiered.js';
import { Upstream } from './upstream.js';

/** Idle client keep-alive connections are closed after this. */
export const CLIENT_KEEPALIVE_MS = 65_000;
/** Bound on receiving request headers. */
export const CLIENT_HEADERS_TIMEOUT_MS = 30_000;
/** Bound on receiving a whole request (uploads passed through included). */
export const CLIENT_REQUEST_TIMEOUT_MS = 600_000;

export interface BoundAddresses {
  proxy: AddressInfo;
  health: AddressInfo;
  metrics: AddressInfo | undefined;
}

export function liveSettings(c: ProxyConfig): LiveSettings {
  return {
    enableCache: c.enable_cache,
    cacheTtlSeconds: c.cache_ttl,
    cacheTtlFallback: c.cache_ttl_fallback,
    slicePatterns: c.slice_patterns.map((p) => new RegExp(p)),
    sliceSizeBytes: c.slice_size,
    maxConcurrentSubrequests: c.max_concurrent_subrequests,
    maxRetries: c.max_retries,
    purgeEnabled: c.purge.enabled,
    purgeToken: c.purge.auth_token,
  };
}

function makeL2(c: ProxyConfig, log: Logger): ProxyStore | undefined {
  if (!c.enable_l2_cache) return undefined;
  switch (c.l2_backend) {
    case 'file':
      return new FileStore({ dir: c.l2_cache_dir, capacityBytes: c.l2_cache_max_size_bytes, log });
    case 'raw_disk':
      return new RawDiskStore({
        devicePath: c.raw_disk_cache.device_path ?? '',
        totalBytes: c.raw_disk_cache.total_size,
        blockSizeBytes: c.raw_disk_cache.block_size,
        compression: c.raw_disk_cache.enable_compression,
        prefetch: c.raw_disk_cache.enable_prefetch,
        directIo: c.raw_disk_cache.use_direct_io,
        log,
      });
    case 'cluster':
      return new ClusterStore({
        root: c.cluster_cache.root,
        masterAddrs: c.cluster_cache.master_addrs.map((a) => {
          const hp = parseHostPort(a);
          if (hp === undefined) throw new Error(`unreachable: validated address ${a}`);
          return { host: hp.host, port: hp.port };
        }),
        replicas: c.cluster_cache.replicas,
        capacityBytes: c.l2_cache_max_size_bytes,
        spoolDir: c.cluster_cache.spool_dir ?? defaultSpoolDir(),
        log,
      });
  }
}

export class ProxyServer {
  #config: ProxyConfig;
  #settings: LiveSettings;
  readonly #log: Logger;
  readonly cache: TieredCache;
  readonly upstream: Upstream;
  readonly metrics: ProxyMetrics;
  readonly handler: ProxyHandler;
  readonly #server: Server;
  readonly #health: OpsHttpServer;
  readonly #metricsServer: OpsHttpServer | undefined;
  #ready = false;
  #stopping: Promise<void> | undefined;

  constructor(config: ProxyConfig, log: Logger) {
    this.#config = config;
    this.#settings = liveSettings(config);
    this.#log = log;
    const l1 = new MemoryStore(config.l1_cache_size_bytes, config.l1_max_object_size_bytes);
    const l2 = makeL2(config, log.child({ component: 'proxy.l2' }));
    this.metrics = new ProxyMetrics({
      l1: () => l1.stats(),
      rawDisk: () => (l2 instanceof RawDiskStore ? l2.rawStats() : undefined),
    });
    this.cache = new TieredCache(l1, l2, log.child({ component: 'proxy.cache' }), {
      onError: (store, op) => this.metrics.cacheErrors.inc({ store, op }),
    });
    this.upstream = new Upstream(config.upstream_address, {
      timeoutMs: config.upstream_timeout_seconds * 1000,
      maxConnections: config.upstream_max_connections,
    });
    this.handler = new ProxyHandler({
      cache: this.cache,
      upstream: this.upstream,
      metrics: this.metrics,
      log: log.child({ component: 'proxy.http' }),
      settings: () => this.#settings,
    });
    this.#server = createServer({ noDelay: true }, (req, res) => this.handler.handle(req, res));
    this.#server.keepAliveTimeout = CLIENT_KEEPALIVE_MS;
    this.#server.headersTimeout = CLIENT_HEADERS_TIMEOUT_MS;
    this.#server.requestTimeout = CLIENT_REQUEST_TIMEOUT_MS;
    this.#server.on('clientError', (err, socket) => {
      if (socket.writable)
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy(err);
    });
    const health = parseHostPort(config.health_address);
    const ready = (): { ok: boolean; reason?: string; l2?: string } => {
      if (!this.#ready) return { ok: false, reason: this.#stopping === undefined ? 'starting' : 'draining' };
      const l2 = this.cache.l2State;
      // Not ready while the L2 recovers its index: traffic would only bypass it. A failed L2
      // does not hold readiness back (the proxy serves without it).
      if (l2 === 'starting') return { ok: false, reason: 'L2 cache starting', l2 };
      return { ok: true, l2 };
    };
    this.#health = new OpsHttpServer({
      host: health?.host ?? '0.0.0.0',
      port: health?.port ?? 8081,
      registry: this.metrics.registry,
      log,
      live: () => ({ ok: true }),
      ready,
    });
    if (config.metrics_endpoint.enabled) {
      const m = parseHostPort(config.metrics_endpoint.address);
      this.#metricsServer = new OpsHttpServer({
        host: m?.host ?? '0.0.0.0',
        port: m?.port ?? 9090,
        registry: this.metrics.registry,
        log,
        live: () => ({ ok: true }),
        ready,
      });
    }
  }

  get config(): ProxyConfig {
    return this.#config;
  }

  async start(): Promise<BoundAddresses> {
    const listen = parseHostPort(this.#config.listen_address);
    const healthAddr = await this.#health.listen();
    const metricsAddr = await this.#metricsServer?.listen();
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(listen?.port ?? 8080, listen?.host ?? '0.0.0.0', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#ready = true;
    const proxyAddr = this.#server.address() as AddressInfo;
    this.#log.info(
      {
        proxy: `${proxyAddr.address}:${proxyAddr.port}`,
        health: `${healthAddr.address}:${healthAddr.port}`,
        metrics: metricsAddr === undefined ? null : `${metricsAddr.address}:${metricsAddr.port}`,
        upstream: this.#config.upstream_address,
        l2: this.#config.enable_l2_cache ? this.#config.l2_backend : 'none',
      },
      'proxy listening',
    );
    return { proxy: proxyAddr, health: healthAddr, metrics: metricsAddr };
  }

  /**
   * Applies a new configuration: live keys at once, the others only after a restart (logged).
   * Returns the keys in each group.
   */
  reload(next: ProxyConfig): { applied: string[]; needRestart: string[] } {
    const changed = changedKeys(this.#config, next);
    const applied = changed.filter((k) => LIVE_KEYS.has(k));
    const needRestart = changed.filter((k) => !LIVE_KEYS.has(k));
    // Restart-only keys keep their running values so the effective config stays truthful.
    const effective: ProxyConfig = structuredClone(this.#config);
    const target = effective as unknown as Record<string, unknown>;
    const source = next as unknown as Record<string, unknown>;
    for (const key of applied) {
      const [a, b] = key.split('.') as [string, string | undefined];
      if (b === undefined) target[a] = structuredClone(source[a]);
      else
        (target[a] as Record<string, unknown>)[b] = structuredClone(
          (source[a] as Record<string, unknown>)[b],
        );
    }
    this.#config = effective;
    this.#settings = liveSettings(effective);
    if (applied.includes('upstream_address')) this.upstream.setAddress(effective.upstream_address);
    if (applied.includes('l1_cache_size_bytes') || applied.includes('l1_max_object_size_bytes'))
      this.cache.l1.resize(effective.l1_cache_size_bytes, effective.l1_max_object_size_bytes);
    if (applied.includes('l2_cache_max_size_bytes') && this.cache.l2 instanceof FileStore)
      this.cache.l2.resize(effective.l2_cache_max_size_bytes);
    if (applied.includes('l2_cache_max_size_bytes') && this.cache.l2 instanceof ClusterStore)
      this.cache.l2.setCapacity(effective.l2_cache_max_size_bytes);
    if (applied.includes('log_level')) this.#log.level = effective.log_level;
    return { applied, needRestart };
  }

  /** Drains and closes everything; idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    this.#ready = false;
    this.handler.startDraining();
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    this.#server.closeIdleConnections();
    const graceMs = this.#config.drain_timeout_seconds * 1000;
    const active = this.handler.activeRequests;
    if (active > 0) this.#log.info({ active, graceMs }, 'draining in-flight responses');
    let timer: NodeJS.Timeout | undefined;
    // Connections that finish their response meanwhile are closed as soon as they go idle.
    const sweeper = setInterval(() => this.#server.closeIdleConnections(), 100);
    const timedOut = await Promise.race([
      this.handler.idle().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    clearInterval(sweeper);
    if (timedOut)
      this.#log.warn({ active: this.handler.activeRequests }, 'drain timeout: closing remaining connections');
    this.#server.closeAllConnections();
    await closed;
    await this.#metricsServer?.close();
    await this.#health.close();
    await this.upstream.close();
    await this.cache.close();
  }
}
