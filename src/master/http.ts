/**
 * The master's JSON API beside /metrics and the health endpoints (all on `master.web_port`):
 *   GET /api/overview                          cluster totals, counts, workers by state, store
 *   GET /api/workers                           every worker with tiers and state
 *   GET /api/browse?path=/a&startAfter=&limit= a directory page, or a file with its blocks (under a
 *                                              mount: the unified namespace, with UFS origins)
 *   GET /api/config                            the effective configuration, secrets masked
 * Errors are JSON `{ error: { code, message } }` with the status of the code (404 for ENOENT…).
 * The web console (./console/) adds its page, assets and API routes beside these.
 */
import type { Registry } from 'prom-client';
import type { ClusterConfig } from '../common/config/index.js';
import { maskSecrets } from '../common/config/index.js';
import { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { OpsHttpServer } from '../common/ops-http.js';
import { sendJson } from '../common/ops-http.js';
import { STRATA_VERSION } from '../common/version.js';
import type { MetaStore } from '../meta/index.js';
import { MAX_LIST_PAGE } from '../protocol/types.js';
import type { MasterInfo } from '../protocol/types.js';
import { browseStatus, syncBrowsedDir, withUfsOrigins } from './console/browse-ufs.js';
import { apiRoute, mountConsole } from './console/index.js';
import type { ConsoleHandle } from './console/index.js';
import type { MasterCore } from './core.js';
import { clusterTotals } from './service.js';

export interface MasterHttpDeps {
  /** The core of the current term; throws "not leader" (HTTP 503, naming the leader) on a standby. */
  core: () => MasterCore;
  /** The masters and their roles (one leader, standbys), for the overview. */
  masters: () => MasterInfo[];
  store: MetaStore;
  config: ClusterConfig;
  rpcAddress: () => string;
  registry: Registry;
  log: Logger;
}

/** Adds the JSON API and the console; the handle starts and stops the console's sampler. */
export function addMasterRoutes(http: OpsHttpServer, d: MasterHttpDeps): ConsoleHandle {
  const route = (path: string, handler: Parameters<typeof apiRoute>[3]): void =>
    apiRoute(http, 'GET', path, handler);
  route('/api/overview', (_req, res) => {
    const core = d.core();
    const counts = core.namespace.counts();
    sendJson(res, 200, {
      clusterId: d.config.cluster_id,
      version: STRATA_VERSION,
      role: 'leader',
      rpcAddress: d.rpcAddress(),
      masters: d.masters(),
      startedAtMs: core.startedAtMs,
      uptimeMs: Date.now() - core.startedAtMs,
      ...clusterTotals(core.registry),
      workers: core.registry.countByState(),
      namespace: counts,
      cachedBlocks: core.blocks.map.size,
      replicas: core.blocks.map.replicaCount,
      replication: core.blocks.stats(),
      leasesOpen: core.namespace.openLeases().length,
      metaStore: d.store.stats(),
      cache: core.namespace.cache.stats(),
    });
  });
  route('/api/workers', (_req, res) => {
    const core = d.core();
    sendJson(res, 200, {
      workers: core.registry.all().map((w) => core.registry.info(w, core.blocks.map.blocksOf(w.id).size)),
    });
  });
  route('/api/browse', async (_req, res, url) => {
    const core = d.core();
    const path = url.searchParams.get('path') ?? '/';
    const startAfter = url.searchParams.get('startAfter') ?? undefined;
    const limitText = url.searchParams.get('limit');
    const limit = limitText === null ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_PAGE)
      throw new StrataError('STRATA_BAD_REQUEST', `limit must be an integer from 1 to ${MAX_LIST_PAGE}`);
    // Under a UFS mount: entered from the UFS when needed, with each entry's UFS origin.
    let status = await browseStatus(core, path);
    if (status.type === 'dir' && startAfter === undefined && (await syncBrowsedDir(core, path, d.log)))
      status = await browseStatus(core, path); // its child count as synced
    if (status.type === 'file') {
      const { blocks } = await core.namespace.getBlocks(path);
      sendJson(res, 200, {
        status,
        blocks: blocks.map((b) => ({
          ...b,
          workers: core.blocks.readableReplicas(b.blockId).map((r) => ({
            workerId: r.address.workerId,
            address: `${r.address.hostname}:${r.address.rpcPort}`,
            storageType: r.replica.storageType,
          })),
        })),
      });
      return;
    }
    if (status.type === 'symlink') {
      sendJson(res, 200, { status });
      return;
    }
    const page = await core.namespace.list(path, {
      limit,
      ...(startAfter === undefined ? {} : { startAfter }),
    });
    sendJson(res, 200, { status, ...page, entries: withUfsOrigins(core, path, page.entries) });
  });
  route('/api/config', (_req, res) => {
    sendJson(res, 200, { config: maskSecrets(d.config) });
  });
  return mountConsole({
    http,
    core: d.core,
    masters: d.masters,
    config: d.config,
    registry: d.registry,
    log: d.log,
    rpcAddress: d.rpcAddress,
  });
}
