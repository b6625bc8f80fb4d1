/**
 * The console's additions to the master's JSON API (beside /api/overview, /api/workers,
 * /api/browse and /api/config in ../http.ts):
 *   GET  /api/console                      what the console needs to start: cluster, version, actions on/off, refresh
 *   GET  /api/masters                      the masters and which one leads
 *   GET  /api/alerts                       the Overview's alerts (./alerts.ts)
 *   GET  /api/metrics/history?sinceMs=     samples of the last hour (./sampler.ts)
 *   POST /api/workers/decommission         {"worker": "<id or host:port>"}; admin token required
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { ClusterConfig } from '../../common/config/index.js';
import { StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { OpsHttpServer, RouteHandler } from '../../common/ops-http.js';
import { readJsonBody, sendError, sendJson } from '../../common/ops-http.js';
import { STRATA_VERSION } from '../../common/version.js';
import type { MasterInfo } from '../../protocol/types.js';
import type { MasterCore } from '../core.js';
import { computeAlerts } from './alerts.js';
import type { RecentIncreases } from './alerts.js';
import type { ConsoleSampler } from './sampler.js';
import { FAILED_AUTH_WINDOW_MS, requireJson, setHardeningHeaders } from './security.js';
import type { AdminGuard } from './security.js';

/** How often the console's pages refresh their data. */
export const CONSOLE_REFRESH_MS = 5_000;
/** Largest action body. */
const MAX_ACTION_BODY_BYTES = 16 * 1024;

export interface ConsoleApiDeps {
  /** The core of the current term; throws "not leader" on a standby. */
  core: () => MasterCore;
  masters: () => MasterInfo[];
  config: ClusterConfig;
  sampler: ConsoleSampler;
  guard: AdminGuard;
  /** Blocks found without a readable copy, as recent increases of the block manager's count. */
  missingBlocks: RecentIncreases;
  log: Logger;
  rpcAddress: () => string;
  webAddress: () => string;
  clock?: () => number;
}

/** Registers a JSON route whose answers (errors included) carry the API hardening headers. */
export function apiRoute(http: OpsHttpServer, method: string, path: string, handler: RouteHandler): void {
  http.route(method, path, (req, res, url) => {
    setHardeningHeaders(res, 'api');
    return handler(req, res, url);
  });
}

const decommissionBody = z.object({ worker: z.string().min(1).max(300) }).strict();

export function addConsoleApi(http: OpsHttpServer, d: ConsoleApiDeps): void {
  const clock = d.clock ?? Date.now;
  apiRoute(http, 'GET', '/api/console', (_req, res) => {
    sendJson(res, 200, {
      clusterId: d.config.cluster_id,
      version: STRATA_VERSION,
      actionsEnabled: d.guard.enabled,
      refreshMs: CONSOLE_REFRESH_MS,
      sampleIntervalMs: d.sampler.intervalMs,
    });
  });
  apiRoute(http, 'GET', '/api/masters', (_req, res) => {
    sendJson(res, 200, {
      masters: d.masters(),
    });
  });
  apiRoute(http, 'GET', '/api/alerts', (_req, res) => {
    const core = d.core();
    const stats = core.blocks.stats();
    const nowMs = clock();
    d.missingBlocks.observe(stats.missing, nowMs);
    sendJson(res, 200, {
      alerts: computeAlerts({
        workers: core.registry.all().map((w) => core.registry.info(w, core.blocks.map.blocksOf(w.id).size)),
        replication: {
          needed: stats.needed,
          inflight: stats.inflight,
          missingRecent: d.missingBlocks.recent(nowMs),
        },
        history: d.sampler.ring.toArray(),
        nowMs,
      }),
    });
  });
  apiRoute(http, 'GET', '/api/metrics/history', (_req, res, url) => {
    const sinceText = url.searchParams.get('sinceMs');
    const sinceMs = sinceText === null ? 0 : Number(sinceText);
    if (!Number.isFinite(sinceMs) || sinceMs < 0)
      throw new StrataError(
        'STRATA_BAD_REQUEST',
        'sinceMs must be a time in ms since the epoch (a number ≥ 0)',
      );
    sendJson(res, 200, {
      intervalMs: d.sampler.intervalMs,
      capacity: d.sampler.ring.capacity,
      samples: d.sampler.ring.toArray().filter((s) => s.tMs > sinceMs),
    });
  });
  apiRoute(
    http,
    'POST',
    '/api/workers/decommission',
    action(d, 'decommission', async (req, res) => {
      const body = decommissionBody.safeParse(await readJsonBody(req, MAX_ACTION_BODY_BYTES));
      if (!body.success)
        throw new StrataError('STRATA_BAD_REQUEST', 'expected {"worker": "<worker id or host:port>"}');
      let w;
      try {
        w = d.core().registry.decommission(body.data.worker);
      } catch (err) {
        // The registry's codes have no HTTP status of their own: an unknown worker is a 404,
        // a lost one a conflict with its state.
        const code = err instanceof StrataError ? err.code : '';
        if (code === 'STRATA_WORKER_UNKNOWN' || code === 'STRATA_WORKER_LOST') {
          sendJson(res, code === 'STRATA_WORKER_UNKNOWN' ? 404 : 409, {
            error: { code, message: (err as Error).message },
          });
          return;
        }
        throw err;
      }
      d.log.info(
        { action: 'decommission', workerId: w.id, remote: req.socket.remoteAddress },
        'console action: worker decommissioning',
      );
      sendJson(res, 200, { workerId: w.id, state: w.state });
    }),
  );
}

/** An action: JSON body, admin token, refusals logged without the token. */
export function action(
  d: Pick<ConsoleApiDeps, 'guard' | 'log'>,
  name: string,
  run: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
): RouteHandler {
  return async (req, res) => {
    try {
      d.guard.check(req);
    } catch (err) {
      // Drain the body so the connection stays usable for the refusal.
      req.resume();
      const code = err instanceof StrataError ? err.code : 'STRATA_INTERNAL';
      d.log.warn({ action: name, remote: req.socket.remoteAddress, code }, 'console action refused');
      if (code === 'STRATA_TOO_MANY_ATTEMPTS') {
        res.setHeader('retry-after', String(Math.ceil(FAILED_AUTH_WINDOW_MS / 1000)));
        sendJson(res, 429, { error: { code, message: (err as Error).message } });
        return;
      }
      sendError(res, err);
      return;
    }
    requireJson(req);
    await run(req, res);
  };
}
