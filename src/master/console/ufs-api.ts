/**
 * The console's API for UFS mounts and load jobs:
 *   GET  /api/mounts?offset=&limit=   the mount table a page at a time, secret option values masked
 *   GET  /api/jobs?offset=&limit=     load jobs, newest first, with their progress and counts by state
 *   POST /api/jobs/cancel             {"jobId": "<id>"}; admin token required
 * Everything reads the core of the current term (`core()`), so a standby answers 503 naming the
 * leader, like every other console API. Mounts are shown through the mount table's own wire
 * view (`mountInfo`, which masks secrets with `maskUfsOptions`): this file never sees a secret
 * it would have to hide itself.
 */
import { z } from 'zod';
import { StrataError } from '../../common/errors.js';
import type { Logger } from '../../common/logging.js';
import type { OpsHttpServer } from '../../common/ops-http.js';
import { readJsonBody, sendJson } from '../../common/ops-http.js';
import type { LoadJobState, LoadJobStatus } from '../../protocol/ufs-types.js';
import type { MasterCore } from '../core.js';
import { mountInfo } from '../mounts/mount-table.js';
import { action, apiRoute } from './api.js';
import type { AdminGuard } from './security.js';

/** Rows a page of mounts or jobs holds unless the request asks for fewer. */
export const DEFAULT_UFS_PAGE = 100;
/** Most rows one request may ask for (a page renders fast whatever the table's size). */
export const MAX_UFS_PAGE = 500;
/** Largest cancel body. */
const MAX_CANCEL_BODY_BYTES = 4 * 1024;

const FINISHED: ReadonlySet<LoadJobState> = new Set(['completed', 'failed', 'cancelled']);

export interface UfsApiDeps {
  /** The core of the current term; throws "not leader" on a standby. */
  core: () => MasterCore;
  guard: AdminGuard;
  log: Logger;
}

export interface Paging {
  offset: number;
  limit: number;
}

/** `offset` and `limit` from the query, checked: a bad value is a 400 that says what is allowed. */
export function pagingOf(url: URL): Paging {
  const read = (name: string, dflt: number, min: number, max: number): number => {
    const text = url.searchParams.get(name);
    if (text === null || text === '') return dflt;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new StrataError('STRATA_BAD_REQUEST', `${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  return {
    offset: read('offset', 0, 0, Number.MAX_SAFE_INTEGER),
    limit: read('limit', DEFAULT_UFS_PAGE, 1, MAX_UFS_PAGE),
  };
}

/**
 * Jobs newest first, and how many are in each state. `all` is in submission order (the jobs'
 * own order): jobs started in the same millisecond keep it, newest first (the sort is stable).
 */
export function jobsPage(
  all: readonly LoadJobStatus[],
  p: Paging,
): { total: number; byState: Record<string, number>; jobs: LoadJobStatus[] } {
  const sorted = [...all].reverse().sort((a, b) => b.startedAtMs - a.startedAtMs);
  const byState: Record<string, number> = {};
  for (const j of sorted) byState[j.state] = (byState[j.state] ?? 0) + 1;
  return { total: sorted.length, byState, jobs: sorted.slice(p.offset, p.offset + p.limit) };
}

const cancelBody = z.object({ jobId: z.string().min(1).max(128) }).strict();

export function addUfsApi(http: OpsHttpServer, d: UfsApiDeps): void {
  apiRoute(http, 'GET', '/api/mounts', (_req, res, url) => {
    const p = pagingOf(url);
    const all = d.core().ufs.mounts.table.list();
    sendJson(res, 200, {
      total: all.length,
      offset: p.offset,
      limit: p.limit,
      mounts: all.slice(p.offset, p.offset + p.limit).map(mountInfo),
    });
  });
  apiRoute(http, 'GET', '/api/jobs', (_req, res, url) => {
    const p = pagingOf(url);
    sendJson(res, 200, { offset: p.offset, limit: p.limit, ...jobsPage(d.core().ufs.loads.list(), p) });
  });
  apiRoute(
    http,
    'POST',
    '/api/jobs/cancel',
    action(d, 'cancel-load', async (req, res) => {
      const body = cancelBody.safeParse(await readJsonBody(req, MAX_CANCEL_BODY_BYTES));
      if (!body.success) throw new StrataError('STRATA_BAD_REQUEST', 'expected {"jobId": "<load job id>"}');
      const loads = d.core().ufs.loads;
      let before: LoadJobStatus;
      try {
        before = loads.get(body.data.jobId);
      } catch (err) {
        // The jobs' codes have no HTTP status of their own: an unknown (or forgotten) job is a 404.
        if (err instanceof StrataError && err.code === 'STRATA_NOT_FOUND') {
          sendJson(res, 404, { error: { code: err.code, message: err.message } });
          return;
        }
        throw err;
      }
      if (FINISHED.has(before.state)) {
        sendJson(res, 409, {
          error: {
            code: 'STRATA_JOB_FINISHED',
            message: `load job ${before.jobId} has already ended (${before.state}); only a scanning or running job can be cancelled`,
          },
        });
        return;
      }
      const job = await loads.cancel(before.jobId);
      d.log.info(
        { action: 'cancel-load', jobId: job.jobId, path: job.path, remote: req.socket.remoteAddress },
        'console action: load job cancelled',
      );
      sendJson(res, 200, { job });
    }),
  );
}
