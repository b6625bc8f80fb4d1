/**
 * Jobs: load jobs (`strata load <path>`) newest first, a page at a time, with their progress —
 * files and bytes cached against what the walk found so far, bytes fetched from the UFS, failed
 * blocks and the first error — and *Cancel* (confirmation and admin token) on a job still going.
 */
import type { JobsPage, LoadJob } from '../api.js';
import { getJson } from '../api.js';
import { runAction } from '../admin.js';
import { JOBS_PAGE } from '../limits.js';
import type { Ctx, Page } from '../app.js';
import { h } from '../dom.js';
import { formatAgo, formatBytes, formatCount, formatDuration, formatTime, ratio } from '../format.js';
import { badge, empty, offsetPager, offsetParam, progress, table } from '../widgets.js';

/** States of a job that has not ended (the only ones that can be cancelled). */
const GOING: ReadonlySet<string> = new Set(['scanning', 'running']);

export const jobsPage: Page = {
  id: 'jobs',
  title: 'Jobs',
  auto: true,
  async load(ctx) {
    const offset = offsetParam(ctx.params, JOBS_PAGE);
    const q = new URLSearchParams({ offset: String(offset), limit: String(JOBS_PAGE) });
    const r = await getJson<JobsPage>(`/api/jobs?${q.toString()}`);
    const now = Date.now();
    const summary = Object.entries(r.byState)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    // A function: the pager shows above and below the table (one element cannot be in two places).
    const pager = (): HTMLElement =>
      offsetPager({
        route: '/jobs',
        offset,
        shown: r.jobs.length,
        total: r.total,
        pageSize: JOBS_PAGE,
        noun: 'jobs',
      });
    return h(
      'div',
      { class: 'page jobs' },
      h(
        'p',
        { class: 'summary' },
        h('span', { 'data-k': 'job-count' }, formatCount(r.total)),
        ` load job${r.total === 1 ? '' : 's'}${summary === '' ? '' : `: ${summary}`}`,
        h(
          'span',
          { class: 'sub' },
          ' · recorded in the master’s store: an interrupted job resumes after a restart or failover',
        ),
      ),
      r.total === 0
        ? empty('No load job. Start one with: strata load <path under a mount>')
        : [
            r.total > JOBS_PAGE || offset > 0 ? pager() : null,
            table<LoadJob>(
              [
                {
                  label: 'Job',
                  cell: (j) =>
                    h(
                      'div',
                      null,
                      h('div', { class: 'mono', 'data-k': 'path' }, j.path),
                      h('div', { class: 'sub mono', 'data-k': 'job-id' }, j.jobId),
                    ),
                },
                { label: 'State', cell: (j) => badge(j.state, { 'data-k': 'state' }) },
                {
                  label: 'Files',
                  cell: (j) =>
                    progress(
                      formatCount(j.doneFiles),
                      formatCount(j.totalFiles),
                      ratio(j.doneFiles, j.totalFiles),
                      'files',
                    ),
                },
                {
                  label: 'Bytes',
                  cell: (j) =>
                    h(
                      'div',
                      null,
                      progress(
                        formatBytes(j.doneBytes),
                        formatBytes(j.totalBytes),
                        ratio(j.doneBytes, j.totalBytes),
                        'bytes',
                      ),
                      h(
                        'div',
                        { class: 'sub' },
                        h('span', { 'data-k': 'loaded' }, formatBytes(j.loadedBytes)),
                        ' fetched from the UFS',
                      ),
                    ),
                },
                {
                  label: 'Errors',
                  cell: (j) =>
                    h(
                      'div',
                      null,
                      h(
                        'span',
                        { 'data-k': 'failed-blocks' },
                        `${formatCount(j.failedBlocks)} failed block${j.failedBlocks === 1 ? '' : 's'}`,
                      ),
                      j.error === undefined
                        ? null
                        : h('div', { class: 'sub job-error', 'data-k': 'error' }, j.error),
                    ),
                },
                {
                  label: 'Time',
                  cell: (j) =>
                    h(
                      'div',
                      null,
                      h(
                        'span',
                        { 'data-k': 'started', title: formatTime(j.startedAtMs) },
                        formatTime(j.startedAtMs),
                      ),
                      h(
                        'div',
                        { class: 'sub', 'data-k': 'duration' },
                        j.endedAtMs === undefined
                          ? `for ${formatDuration(now - j.startedAtMs)}`
                          : `took ${formatDuration(j.endedAtMs - j.startedAtMs)}`,
                      ),
                      j.resumedAtMs === undefined
                        ? null
                        : h(
                            'div',
                            { class: 'sub', 'data-k': 'resumed', title: formatTime(j.resumedAtMs) },
                            `resumed ${formatAgo(j.resumedAtMs, now)}`,
                          ),
                    ),
                },
                { label: 'Actions', cell: (j) => cancelButton(ctx, j) },
              ],
              r.jobs,
              (j) => ({ 'data-job-id': j.jobId }),
            ),
            r.total > JOBS_PAGE || offset > 0 ? pager() : null,
          ],
    );
  },
};

function cancelButton(ctx: Ctx, j: LoadJob): HTMLElement | string {
  if (!GOING.has(j.state)) return '—';
  const enabled = ctx.info.actionsEnabled;
  return h(
    'button',
    {
      type: 'button',
      class: 'danger small',
      'data-k': 'cancel-job',
      disabled: !enabled,
      title: enabled
        ? 'Stop loading: blocks already loaded stay cached'
        : 'Read-only console: set master.admin_token on the master to enable actions',
      onclick: () => {
        void runAction(ctx, {
          title: `Cancel load job ${j.jobId}?`,
          detail:
            `Loading ${j.path} stops: tasks in flight are abandoned, blocks already loaded stay cached. ` +
            'A cancelled job cannot be resumed; start a new one with strata load.',
          confirm: 'Cancel job',
          dismiss: 'Keep running',
          path: '/api/jobs/cancel',
          body: { jobId: j.jobId },
          done: `Load job ${j.jobId} is cancelled.`,
        });
      },
    },
    'Cancel',
  );
}
