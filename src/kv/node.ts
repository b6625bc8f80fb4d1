/**
 * A KV node: wires the store, ring membership, engine, rebalancer, health checks, the HTTP API
 * (seed API + admin + internal + ops endpoints) and the optional RESP listener, joins the
 * cluster, and registers everything with the lifecycle for a graceful SIGTERM:
 *
 * start: listen (as "joining") → probe peers → pull owned keys from up peers → "up"
 * stop:  announce "leaving" → hand keys to their next owners (bounded) → stop health checks →
 *        close RESP → close peer pools → close HTTP.
 */
import type { AddressInfo } from 'node:net';
import { StrataError } from '../common/errors.js';
import { Lifecycle } from '../common/lifecycle.js';
import type { Logger } from '../common/logging.js';
import { formatHostPort } from '../common/net.js';
import { OpsHttpServer } from '../common/ops-http.js';
import { STRATA_VERSION } from '../common/version.js';
import type { KvConfig } from './config.js';
import { KvEngine } from './engine.js';
import { HealthChecker } from './health.js';
import { HybridClock } from './hlc.js';
import { registerHttpApi } from './http-api.js';
import { registerInternalApi } from './internal-api.js';
import { Membership } from './membership.js';
import { KvMetrics } from './metrics.js';
import { INTERNAL_PATHS, PeerSet } from './peers.js';
import { Rebalancer } from './rebalancer.js';
import { RespServer } from './resp/server.js';
import { LruStore } from './store.js';
import type { EvictionReason } from './store.js';

/** Entries expired per sweep tick at most, so a mass expiry never stalls requests. */
const SWEEP_BUDGET_ENTRIES = 20_000;
/** Share of the shutdown grace given to handing keys off; the rest closes servers. */
const HANDOFF_SHARE_OF_GRACE = 0.7;

export interface KvNode {
  config: KvConfig;
  http: AddressInfo;
  resp: AddressInfo | undefined;
  membership: Membership;
  engine: KvEngine;
  rebalancer: Rebalancer;
  lifecycle: Lifecycle;
  stop(reason: string): Promise<void>;
}

export async function startKvNode(
  config: KvConfig,
  rootLog: Logger,
  lifecycle = new Lifecycle(rootLog, config.shutdownGraceMs),
): Promise<KvNode> {
  const log = rootLog.child({ node_id: config.nodeId });
  const startedAtMs = Date.now();
  const store = new LruStore(
    {
      maxEntries: config.cacheSize,
      maxBytes: config.maxMemoryBytes,
      tombstoneTtlMs: config.tombstoneTtlMs,
      maxTombstones: config.maxTombstones,
    },
    // Evictions only happen on writes, after `metrics` below exists.
    { onEvict: (reason: EvictionReason) => metrics.eviction(reason) },
  );
  const membership = new Membership({
    selfId: config.nodeId,
    nodes: config.clusterNodes,
    virtualNodes: config.virtualNodes,
    probes: config.hashProbes,
    replicas: config.replicas,
    failureThreshold: config.failureThreshold,
    log,
  });
  const peers = new PeerSet(config.nodeId, config.requestTimeoutMs);
  for (const n of membership.peers()) peers.ensure(n.id, n.address);
  let resp: RespServer | undefined;
  const metrics: KvMetrics = new KvMetrics(config.nodeId, {
    keys: () => store.count,
    bytes: () => store.bytes,
    maxBytes: config.maxMemoryBytes,
    maxKeys: config.cacheSize,
    tombstones: () => store.tombstoneCount,
    handoffPending: (): number => rebalancer.pending,
    nodeStates: () => membership.nodes().map((n) => ({ id: n.id, state: n.state })),
    ownership: () => membership.ownership(),
    respConnections: () => resp?.connections ?? 0,
  });
  const clock = new HybridClock();
  const engine: KvEngine = new KvEngine({
    store,
    membership,
    clock,
    peers,
    metrics,
    log,
    settleWindowMs: config.settleWindowMs,
  });
  const rebalancer: Rebalancer = new Rebalancer({
    store,
    membership,
    peers,
    engine,
    metrics,
    log,
    timeoutMs: config.requestTimeoutMs,
  });
  engine.setHandoff(rebalancer);
  membership.onChange((change) => {
    for (const n of membership.peers()) peers.ensure(n.id, n.address);
    rebalancer.onViewChange(change);
  });
  const selfAdvertised = config.clusterNodes.get(config.nodeId) ?? config.listen;
  const health = new HealthChecker({
    membership,
    peers,
    selfAddress: selfAdvertised,
    intervalMs: config.healthCheckIntervalMs,
    timeoutMs: config.healthCheckTimeoutMs,
    log,
    flushVersion: () => store.floorVersion,
    onFlushVersion: (v) => engine.applyFlush(v),
  });

  const http = new OpsHttpServer({
    host: config.listen.host,
    port: config.listen.port,
    registry: metrics.registry,
    log,
    ready: () => ({ ok: membership.selfState === 'up', state: membership.selfState, node_id: config.nodeId }),
  });
  registerHttpApi(http, {
    config,
    engine,
    membership,
    health,
    rebalancer,
    peers,
    metrics,
    registry: metrics.registry,
    log,
    startedAtMs,
  });
  registerInternalApi(http, { config, engine, membership, rebalancer, peers, log });

  const httpAddr = await listenOrExplain(() => http.listen(), 'address', formatHostPort(config.listen));
  lifecycle.add('http', () => http.close());
  lifecycle.add('peers', () => peers.closeAll());
  lifecycle.add('rebalancer', () => rebalancer.stop());

  let respAddr: AddressInfo | undefined;
  if (config.resp !== undefined) {
    const server: RespServer = new RespServer({
      host: config.resp.host,
      port: config.resp.port,
      parserLimits: {
        maxBulkBytes: Math.max(config.limits.maxValueBytes, config.limits.maxKeyBytes),
        maxArrayLength: config.limits.respMaxArrayLength,
        maxInlineBytes: config.limits.respMaxInlineBytes,
      },
      maxConnections: config.limits.maxConnections,
      context: {
        engine,
        limits: config.limits,
        defaultTtlMs: config.defaultTtlMs,
        flushAll: async () => {
          await engine.flushAll();
        },
      },
      info: (section: string): string =>
        infoText(section, { config, store, metrics, membership, resp: server, startedAtMs }),
      metrics,
      log,
    });
    resp = server;
    respAddr = await listenOrExplain(() => server.listen(), 'resp_address', formatHostPort(config.resp));
    lifecycle.add('resp', () => server.close());
  }

  const sweep = setInterval(() => store.sweep(Date.now(), SWEEP_BUDGET_ENTRIES), config.ttlSweepIntervalMs);
  sweep.unref();
  lifecycle.add('ttl-sweep', () => clearInterval(sweep));
  lifecycle.add('health', () => health.stop());
  lifecycle.add('handoff', async () => {
    if (!config.handoffOnShutdown || membership.selfState !== 'up') return;
    await leave(
      membership,
      peers,
      rebalancer,
      log,
      Math.floor(config.shutdownGraceMs * HANDOFF_SHARE_OF_GRACE),
    );
  });

  // Join: learn peers' states (and the flush floor), take our keys from those up, then serve.
  await health.probeAll();
  const pulled = await rebalancer.pull();
  membership.setState(config.nodeId, 'up', pulled > 0 ? `joined with ${pulled} records` : 'joined');
  // Tell every peer at once (the probe carries our state) rather than at their next probe.
  await health.probeAll();
  health.start();
  log.info(
    {
      http: formatHostPort({ host: httpAddr.address, port: httpAddr.port }),
      resp: respAddr === undefined ? null : formatHostPort({ host: respAddr.address, port: respAddr.port }),
      nodes: membership.nodes().length,
      up: membership.aliveCount(),
      replicas: config.replicas,
      pulled,
    },
    'kv node ready',
  );
  return {
    config,
    http: httpAddr,
    resp: respAddr,
    membership,
    engine,
    rebalancer,
    lifecycle,
    stop: (reason) => lifecycle.stop(reason),
  };
}

/** Announces leaving, hands every key to its next owners, waits (bounded) for the handoff. */
async function leave(
  membership: Membership,
  peers: PeerSet,
  rebalancer: Rebalancer,
  log: Logger,
  budgetMs: number,
): Promise<void> {
  const t0 = Date.now();
  // Leaving from here on: peers told now carry this version, so no older "up" overrides it.
  membership.setState(membership.selfId, 'leaving', 'shutting down');
  await Promise.all(
    membership.peers().map(async (n) => {
      if (n.state !== 'up') return;
      try {
        await peers
          .client(n.id)
          ?.call(
            INTERNAL_PATHS.leave,
            { node_id: membership.selfId, state_version: membership.selfStateVersion },
            Math.min(1000, budgetMs),
          );
      } catch {
        // It will notice by health check.
      }
    }),
  );
  if (membership.peers().every((n) => n.state !== 'up')) {
    log.info('no peer up: nothing to hand off');
    return;
  }
  const done = await rebalancer.idle(Math.max(0, budgetMs - (Date.now() - t0)));
  log.info(
    { done, pending: rebalancer.pending, ms: Date.now() - t0 },
    done ? 'keys handed off' : 'handoff incomplete at the deadline',
  );
}

async function listenOrExplain(
  listen: () => Promise<AddressInfo>,
  key: string,
  addr: string,
): Promise<AddressInfo> {
  try {
    return await listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'address already in use'
        : code === 'EACCES'
          ? 'permission denied'
          : (err as Error).message;
    throw new StrataError('STRATA_LISTEN', `cannot listen on ${addr} (${key}): ${why}`, { cause: err });
  }
}

interface InfoSources {
  config: KvConfig;
  store: LruStore;
  metrics: KvMetrics;
  membership: Membership;
  resp: RespServer;
  startedAtMs: number;
}

/** INFO in Redis's layout (sections of key:value lines), with Strata's cluster section. */
function infoText(section: string, s: InfoSources): string {
  const uptime = Math.floor((Date.now() - s.startedAtMs) / 1000);
  const sections: Record<string, [string, string | number][]> = {
    server: [
      ['redis_version', '7.0.0'],
      ['strata_version', STRATA_VERSION],
      ['redis_mode', 'standalone'],
      ['process_id', process.pid],
      ['tcp_port', s.config.resp?.port ?? 0],
      ['uptime_in_seconds', uptime],
      ['uptime_in_days', Math.floor(uptime / 86400)],
    ],
    clients: [
      ['connected_clients', s.resp.connections],
      ['maxclients', s.config.limits.maxConnections],
    ],
    memory: [
      ['used_memory', s.store.bytes],
      ['used_memory_human', `${(s.store.bytes / 1024 / 1024).toFixed(2)}M`],
      ['maxmemory', s.config.maxMemoryBytes],
      ['maxmemory_policy', 'allkeys-lru'],
      ['used_memory_rss', process.memoryUsage().rss],
    ],
    stats: [
      ['total_commands_processed', s.resp.commandsProcessed],
      ['instantaneous_ops_per_sec', Math.round(s.metrics.qps())],
      ['keyspace_hits', s.metrics.hitCount],
      ['keyspace_misses', s.metrics.missCount],
    ],
    replication: [['role', 'master']],
    cluster: [
      ['cluster_enabled', 0],
      ['strata_node_id', s.config.nodeId],
      ['strata_node_state', s.membership.selfState],
      ['strata_nodes', s.membership.nodes().length],
      ['strata_nodes_up', s.membership.aliveCount()],
      ['strata_replicas', s.config.replicas],
    ],
    keyspace: [['db0', `keys=${s.store.count},expires=${s.store.expiringCount},avg_ttl=0`]],
  };
  const wanted =
    section === '' || section === 'all' || section === 'everything' || section === 'default'
      ? Object.keys(sections)
      : [section];
  const out: string[] = [];
  for (const name of wanted) {
    const lines = sections[name];
    if (lines === undefined) continue;
    out.push(`# ${name[0]?.toUpperCase()}${name.slice(1)}`);
    for (const [k, v] of lines) out.push(`${k}:${v}`);
    out.push('');
  }
  return out.join('\r\n');
}
