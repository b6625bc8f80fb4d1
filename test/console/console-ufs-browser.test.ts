// Proves the Mounts and Jobs pages in a real browser (headless Chromium) against a MiniCluster with
// data and UFS mounts (a file:// directory and an s3rver bucket with credentials): each page shows
// what /api/mounts and /api/jobs report, secrets never reach the page, the mount list pages, a
// load job's progress matches the API, and cancelling a running job (its worker paused with
// SIGSTOP so the job cannot finish first) is refused without the admin token and applied with it.
// Screenshots at 1280×800 and 390×844 are saved under test-artifacts/console/.
import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { formatBytes, formatCount, formatDuration } from '../../src/console-ui/format.js';
import { MOUNTS_PAGE } from '../../src/console-ui/limits.js';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { S3RVER_ACCESS_KEY, S3Server } from '../ufs/s3-server.js';
import { DESKTOP, PHONE, openBrowser, openRoute, screenshot, textOf } from './browser.js';

const skip = requireTools('chromium');

const ADMIN_TOKEN = 'console-ufs-test-admin-token-3c9d';
/** s3rver checks the access key only, so any secret is accepted: this one must never show. */
const S3_SECRET = 'console-ufs-test-s3-secret-e7a2';
const KiB = 1024;
const MiB = 1024 * KiB;
/** Extra empty file mounts, so the mount list needs a second page. */
const EXTRA_MOUNTS = MOUNTS_PAGE + 5;

interface MountRow {
  mountId: number;
  path: string;
  uri: string;
  options: Record<string, string>;
  writeType: string;
  autoCache: boolean;
  ttlMs: number;
  ttlAction: string;
  replicas: number;
  readOnly: boolean;
}

interface Job {
  jobId: string;
  path: string;
  state: string;
  totalFiles: number;
  totalBytes: number;
  doneFiles: number;
  doneBytes: number;
  loadedBytes: number;
  failedBlocks: number;
}

/** Waits until the console has rendered the current route (see console-browser.test.ts). */
async function waitRendered(page: Page): Promise<void> {
  await waitFor(
    'the console to render the route',
    async () =>
      (await page.evaluate(
        `(() => { const m = document.querySelector('main'); return m !== null && m.dataset.route === location.hash && !m.hasAttribute('aria-busy'); })()`,
      )) === true,
    15_000,
    25,
  );
}

async function overflowPx(page: Page): Promise<number> {
  return page.evaluate<number>(`document.documentElement.scrollWidth - document.documentElement.clientWidth`);
}

test(
  'the Mounts and Jobs pages show what the API reports; cancel needs the admin token',
  { skip, timeout: 150_000 },
  async (t) => {
    const s3 = await S3Server.start(['datasets']);
    t.after(() => s3.stop());
    const mc = await MiniCluster.start(t, {
      workers: 1,
      // Long liveness intervals: the worker is paused (SIGSTOP) while a job is cancelled and must
      // not be declared lost meanwhile.
      masterToml: `heartbeat_interval = 200\nworker_blacklist_interval = 600000\nworker_lost_interval = 900000\nadmin_token = "${ADMIN_TOKEN}"`,
      clientToml: 'block_size = "1MB"\n',
    });
    const master = mc.masters[0];
    const worker = mc.workers[0];
    assert.ok(master !== undefined && worker !== undefined);
    const base = `http://127.0.0.1:${master.webPort}`;
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(base + path);
      assert.equal(res.status, 200, `${path}: HTTP ${res.status}`);
      return (await res.json()) as T;
    };
    const fs = FileSystem.create({ config: loadConfig({ path: mc.clientConfPath, env: {} }).config });
    t.after(() => fs.close());

    // The UFS: a directory loaded to completion (warm) and one whose load is cancelled (cold).
    const ufs = tempDir(t, 'strata-console-ufs-');
    const sizes = { warm: [3 * MiB + 5, 200 * KiB, 0], cold: [2 * MiB, 2 * MiB, MiB + 1, 300 * KiB] };
    for (const [dir, list] of Object.entries(sizes)) {
      mkdirSync(join(ufs, dir), { recursive: true });
      list.forEach((n, i) => writeFileSync(join(ufs, dir, `f${i}.bin`), Buffer.alloc(n, i + 1)));
    }
    await fs.mount(`file://${ufs}`, '/ufs', { options: {}, writeType: 'cache' });
    await fs.mount('s3://datasets/train', '/s3', {
      options: s3.options({ 's3.credentials.secret': S3_SECRET }),
      writeType: 'through',
      ttlMs: 2 * 3600_000,
      ttlAction: 'free',
      replicas: 2,
      autoCache: false,
    });
    const many = tempDir(t, 'strata-console-many-');
    for (let i = 0; i < EXTRA_MOUNTS; i++) {
      const d = join(many, `d${i}`);
      mkdirSync(d, { recursive: true });
      await fs.mount(`file://${d}`, `/zz/${String(i).padStart(3, '0')}`, { options: {}, check: false });
    }
    const warm = await fs.load('/ufs/warm');
    const warmDone = await waitFor(
      'the warm load job to complete',
      async () => {
        const j = await fs.loadStatus(warm.jobId);
        return j.state === 'completed' ? j : undefined;
      },
      30_000,
      100,
    );
    assert.equal(warmDone.totalFiles, 3);
    assert.equal(warmDone.doneBytes, 3 * MiB + 5 + 200 * KiB);

    const problems: string[] = [];
    const { page } = await openBrowser(t, DESKTOP, problems);

    await t.test('mounts: every row shows what /api/mounts reports, secrets masked, two pages', async () => {
      await openRoute(page, base, '/mounts');
      const r = await api<{ total: number; mounts: MountRow[] }>(`/api/mounts?limit=${MOUNTS_PAGE}`);
      assert.equal(r.total, EXTRA_MOUNTS + 2);
      assert.equal(await textOf(page, 'mount-count'), formatCount(r.total));
      assert.equal(await textOf(page, 'range'), `Mounts 1–${MOUNTS_PAGE}`);
      assert.equal(await page.locator('[data-k="range"]').count(), 2, 'a pager above and below the table');
      assert.equal(await textOf(page, 'total'), formatCount(r.total));
      assert.equal(await page.locator('tr[data-mount]').count(), MOUNTS_PAGE);
      for (const m of r.mounts.slice(0, 12)) {
        const row = `tr[data-mount="${m.path}"]`;
        assert.equal(await textOf(page, 'path', row), m.path);
        assert.equal(await textOf(page, 'uri', row), m.uri);
        assert.equal(await textOf(page, 'write-type', row), m.writeType);
        assert.equal(
          await textOf(page, 'ttl', row),
          m.ttlMs === 0 ? 'none' : `${formatDuration(m.ttlMs)}, then ${m.ttlAction}`,
        );
        assert.equal(await textOf(page, 'auto-cache', row), m.autoCache ? 'yes' : 'no');
        assert.equal(await textOf(page, 'replicas', row), m.replicas === 0 ? 'default' : String(m.replicas));
        const shown: Record<string, string> = {};
        for (const li of await page.locator(`${row} li[data-option]`).all())
          shown[(await li.getAttribute('data-option')) ?? ''] = (
            (await li.locator('[data-k="option-value"]').textContent()) ?? ''
          ).trim();
        const want = Object.fromEntries(
          Object.entries(m.options).map(([k, v]) => [k, v === '***' ? '*** (secret)' : v]),
        );
        assert.deepEqual(shown, want, `${m.path} options`);
      }
      const s3Row = r.mounts.find((m) => m.path === '/s3');
      assert.ok(s3Row !== undefined);
      assert.equal(s3Row.options['s3.credentials.secret'], '***');
      assert.equal(s3Row.options['s3.credentials.access'], '***');
      assert.equal(s3Row.options['s3.endpoint_url'], s3.endpoint);
      assert.equal(await textOf(page, 'ttl', 'tr[data-mount="/s3"]'), '2 h 0 min, then free');
      assert.equal(await textOf(page, 'replicas', 'tr[data-mount="/s3"]'), '2');
      const html = await page.content();
      for (const secret of [S3_SECRET, S3RVER_ACCESS_KEY, ADMIN_TOKEN])
        assert.ok(!html.includes(secret), secret);
      await screenshot(page, 'mounts-1280x800', { fullPage: false });
      await page.locator('a[data-k="next"]').first().click();
      await waitRendered(page);
      assert.equal(await textOf(page, 'range'), `Mounts ${MOUNTS_PAGE + 1}–${formatCount(r.total)}`);
      const rest = await api<{ mounts: MountRow[] }>(
        `/api/mounts?offset=${MOUNTS_PAGE}&limit=${MOUNTS_PAGE}`,
      );
      assert.deepEqual(
        await page.locator('[data-k="path"]').allTextContents(),
        rest.mounts.map((m) => m.path),
      );
      // Browse lists a mounted directory from its UFS (cold/ was never listed before) …
      await openRoute(page, base, `/browse?path=${encodeURIComponent('/ufs')}`);
      const dir = await api<{ entries: { name: string; ufsPath?: string }[] }>('/api/browse?path=/ufs');
      assert.deepEqual(
        dir.entries.map((e) => e.name),
        ['cold', 'warm'],
      );
      assert.ok(dir.entries.every((e) => e.ufsPath?.endsWith(`/${e.name}`) === true));
      assert.deepEqual(await page.locator('[data-k="name"]').allTextContents(), ['cold/', 'warm/']);
      // … and a file under the mount shows its UFS origin.
      await openRoute(page, base, `/browse?path=${encodeURIComponent('/ufs/warm/f0.bin')}`);
      const f = await api<{ status: { ufsPath?: string } }>('/api/browse?path=/ufs/warm/f0.bin');
      assert.match(f.status.ufsPath ?? '', /^file:\/\/.*\/warm\/f0\.bin$/);
      assert.equal(await textOf(page, 'ufs'), f.status.ufsPath);
      assert.equal(await textOf(page, 'file-cached'), '100.0%');
    });

    const checkJobRow = async (j: Job): Promise<void> => {
      const row = `tr[data-job-id="${j.jobId}"]`;
      assert.equal(await textOf(page, 'path', row), j.path);
      assert.equal(await textOf(page, 'state', row), j.state);
      assert.equal(await textOf(page, 'files-done', row), formatCount(j.doneFiles));
      assert.equal(await textOf(page, 'files-total', row), formatCount(j.totalFiles));
      assert.equal(await textOf(page, 'bytes-done', row), formatBytes(j.doneBytes));
      assert.equal(await textOf(page, 'bytes-total', row), formatBytes(j.totalBytes));
      assert.equal(await textOf(page, 'loaded', row), formatBytes(j.loadedBytes));
      assert.equal(
        await textOf(page, 'failed-blocks', row),
        `${formatCount(j.failedBlocks)} failed block${j.failedBlocks === 1 ? '' : 's'}`,
      );
    };

    await t.test('jobs: a completed load job shows the progress the API reports', async () => {
      await openRoute(page, base, '/jobs');
      const r = await api<{ total: number; jobs: Job[] }>('/api/jobs');
      assert.equal(r.total, 1);
      assert.equal(await textOf(page, 'job-count'), '1');
      const j = r.jobs[0];
      assert.ok(j !== undefined);
      assert.equal(j.state, 'completed');
      assert.equal(j.loadedBytes, 3 * MiB + 5 + 200 * KiB, 'every byte came from the UFS');
      await checkJobRow(j);
      assert.equal(await page.locator(`tr[data-job-id="${j.jobId}"] [data-k="cancel-job"]`).count(), 0);
      await screenshot(page, 'jobs-completed-1280x800');
    });

    await t.test('jobs: cancel is refused without the admin token and applied with it', async () => {
      // Paused, the worker never answers the load tasks: the job stays running until cancelled.
      const pid = worker.proc?.child.pid;
      assert.ok(pid !== undefined);
      process.kill(pid, 'SIGSTOP');
      t.after(() => {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // already gone
        }
      });
      const cold = await fs.load('/ufs/cold');
      const running = await waitFor(
        'the cold job to scan and start loading',
        async () => {
          const { jobs } = await api<{ jobs: Job[] }>('/api/jobs');
          const j = jobs.find((x) => x.jobId === cold.jobId);
          return j?.state === 'running' && j.totalFiles === 4 ? j : undefined;
        },
        30_000,
        100,
      );
      assert.equal(running.totalBytes, 5 * MiB + 1 + 300 * KiB);
      assert.equal(running.doneFiles, 0);
      // A fresh load (the page is on /jobs already: the same URL again would not reload it).
      await page.goto('about:blank');
      await openRoute(page, base, '/jobs');
      const { jobs } = await api<{ jobs: Job[] }>('/api/jobs');
      const shownIds: (string | null)[] = [];
      for (const r of await page.locator('tr[data-job-id]').all())
        shownIds.push(await r.getAttribute('data-job-id'));
      assert.deepEqual(
        shownIds,
        jobs.map((j) => j.jobId),
        'newest first, as the API lists them',
      );
      const now = jobs.find((j) => j.jobId === cold.jobId);
      assert.ok(now !== undefined);
      await checkJobRow(now);
      const row = `tr[data-job-id="${cold.jobId}"]`;
      await screenshot(page, 'jobs-running-1280x800');

      // The dialog can be left without acting.
      await page.click(`${row} [data-k="cancel-job"]`);
      await page.waitForSelector('dialog[data-k="action-dialog"][open]');
      assert.equal(await textOf(page, 'cancel'), 'Keep running');
      await page.click('[data-k="cancel"]');
      await page.waitForSelector('dialog[data-k="action-dialog"]', { state: 'detached' });
      assert.equal((await fs.loadStatus(cold.jobId)).state, 'running');
      await page.click(`${row} [data-k="cancel-job"]`);
      await page.waitForSelector('dialog[data-k="action-dialog"][open]');
      await page.click('[data-k="confirm"]');
      await page.waitForSelector('[data-k="action-error"]:not(:empty)');
      assert.match(await textOf(page, 'action-error'), /Refused: admin token required \(HTTP 401\)/);
      assert.equal((await fs.loadStatus(cold.jobId)).state, 'running');
      await page.fill('[data-k="admin-token"]', 'not-the-token');
      await page.click('[data-k="confirm"]');
      await page.waitForSelector('[data-k="action-error"]:has-text("HTTP 403")');
      assert.equal((await fs.loadStatus(cold.jobId)).state, 'running');
      await screenshot(page, 'jobs-cancel-refused-1280x800');
      await page.fill('[data-k="admin-token"]', ADMIN_TOKEN);
      await page.click('[data-k="confirm"]');
      await page.waitForSelector('dialog[data-k="action-dialog"]', { state: 'detached' });
      assert.match(await textOf(page, 'toast'), /is cancelled/);
      assert.equal((await fs.loadStatus(cold.jobId)).state, 'cancelled');
      await page.waitForSelector(`${row} [data-k="state"]:text-is("cancelled")`);
      assert.equal(await page.locator(`${row} [data-k="cancel-job"]`).count(), 0);
      await screenshot(page, 'jobs-cancelled-1280x800');
      process.kill(pid, 'SIGCONT');
    });

    await t.test('phone width: Mounts and Jobs fit 390 px', async () => {
      const phone = await openBrowser(t, PHONE, problems);
      for (const route of ['/mounts', '/jobs']) {
        await openRoute(phone.page, base, route);
        const overflow = await overflowPx(phone.page);
        assert.ok(overflow <= 0, `${route} overflows the phone width by ${overflow} px`);
        await screenshot(phone.page, `${route.slice(1)}-390x844`, { fullPage: route === '/jobs' });
      }
      await phone.context.close();
    });

    const unexpected = problems.filter((p) => !/status of (401|403)/.test(p));
    assert.deepEqual(unexpected, [], 'no script errors or CSP violations in the console');
    const logs = `${master.proc?.stdout ?? ''}${master.proc?.stderr ?? ''}`;
    for (const secret of [S3_SECRET, ADMIN_TOKEN, 'not-the-token'])
      assert.ok(!logs.includes(secret), `${secret} in the master's log`);
  },
);
