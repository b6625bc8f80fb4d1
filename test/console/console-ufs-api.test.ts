// Proves the console's mounts and jobs API on an in-process master (real HTTP on loopback): mounts
// listed a page at a time with secret options masked (never in an answer or a log line), jobs with
// their progress newest first, cancel refused without / with a wrong admin token and applied with
// the right one, and a standby answering 503 like every console API (HA terms).
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import { StrataError } from '../../src/common/errors.js';
import { createLogger, silentLogger } from '../../src/common/logging.js';
import type { Logger } from '../../src/common/logging.js';
import { createRegistry } from '../../src/common/metrics.js';
import { OpsHttpServer } from '../../src/common/ops-http.js';
import { MasterServer } from '../../src/master/master.js';
import { AdminGuard } from '../../src/master/console/security.js';
import { DEFAULT_UFS_PAGE, MAX_UFS_PAGE, addUfsApi, jobsPage } from '../../src/master/console/ufs-api.js';
import type { LoadJobStatus } from '../../src/protocol/ufs-types.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'ufs-api-test-admin-token-5e1f';
const S3_ACCESS = 'AKIAUFSAPITEST0000001';
const S3_SECRET = 'ufs-api-test-s3-secret-a11ce';
const HEADER_SECRET = 'Bearer ufs-api-test-origin-token-0b0e';
/** File mounts made for paging: more than one default page. */
const FILE_MOUNTS = DEFAULT_UFS_PAGE + 20;

interface Master {
  server: MasterServer;
  base: string;
  dir: string;
  log: Logger;
  logFile: string;
}

async function startMaster(t: TestContext): Promise<Master> {
  const dir = tempDir(t, 'strata-console-ufs-');
  const toml = `cluster_id = "ufs-api"
[master]
hostname = "127.0.0.1"
bind_host = "127.0.0.1"
rpc_port = 0
web_port = 0
meta_dir = "${join(dir, 'meta')}"
admin_token = "${TOKEN}"
`;
  const { config } = parseConfigText(toml, 'test', { env: {} });
  const logDir = join(dir, 'logs');
  const log = createLogger({ level: 'DEBUG', logDir, role: 'master' });
  const server = await MasterServer.start({ config, log });
  t.after(() => server.stop());
  return {
    server,
    base: `http://127.0.0.1:${server.http.address().port}`,
    dir,
    log,
    logFile: join(logDir, 'master.log'),
  };
}

async function getJson<T>(m: { base: string }, path: string, status = 200): Promise<T> {
  const res = await fetch(m.base + path);
  const text = await res.text();
  assert.equal(res.status, status, `${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

async function cancel(m: { base: string }, body: unknown, token?: string): Promise<Response> {
  return fetch(`${m.base}/api/jobs/cancel`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
  });
}

async function logText(m: Master): Promise<string> {
  await new Promise<void>((resolve) => m.log.flush(() => resolve()));
  return readFileSync(m.logFile, 'utf8');
}

/** A TCP server that accepts and never answers: a worker whose load tasks hang until cancelled. */
async function silentWorker(t: TestContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  return addr.port;
}

interface MountsAnswer {
  total: number;
  offset: number;
  limit: number;
  mounts: {
    path: string;
    uri: string;
    options: Record<string, string>;
    writeType: string;
    ttlMs: number;
    ttlAction: string;
    autoCache: boolean;
    replicas: number;
  }[];
}

interface JobsAnswer {
  total: number;
  byState: Record<string, number>;
  jobs: LoadJobStatus[];
}

test('mounts: paged, sorted by path, secret options masked everywhere', async (t) => {
  const m = await startMaster(t);
  const core = m.server.core;
  assert.ok(core !== undefined);
  await core.ufs.mounts.mount({
    uri: 's3://bucket/datasets',
    path: '/s3',
    options: {
      's3.endpoint_url': 'http://127.0.0.1:9',
      's3.region_name': 'eu-west-1',
      's3.credentials.access': S3_ACCESS,
      's3.credentials.secret': S3_SECRET,
    },
    writeType: 'through',
    ttlMs: 3_600_000,
    ttlAction: 'free',
    replicas: 2,
    autoCache: false,
    check: false,
  });
  await core.ufs.mounts.mount({
    uri: 'https://origin.example/site',
    path: '/web',
    options: { 'http.header.Authorization': HEADER_SECRET },
    check: false,
  });
  for (let i = 0; i < FILE_MOUNTS; i++) {
    const ufs = join(m.dir, 'ufs', `d${i}`);
    mkdirSync(ufs, { recursive: true });
    await core.ufs.mounts.mount({
      uri: `file://${ufs}`,
      path: `/m/${String(i).padStart(3, '0')}`,
      options: {},
      check: false,
    });
  }
  const total = FILE_MOUNTS + 2;
  const first = await getJson<MountsAnswer>(m, '/api/mounts');
  assert.equal(first.total, total);
  assert.equal(first.mounts.length, DEFAULT_UFS_PAGE);
  const second = await getJson<MountsAnswer>(m, `/api/mounts?offset=${DEFAULT_UFS_PAGE}`);
  assert.equal(second.mounts.length, total - DEFAULT_UFS_PAGE);
  const paths = [...first.mounts, ...second.mounts].map((x) => x.path);
  assert.deepEqual(paths, [...paths].sort(), 'sorted by path');
  assert.equal(new Set(paths).size, total, 'no mount twice across pages');
  const small = await getJson<MountsAnswer>(m, '/api/mounts?offset=5&limit=3');
  assert.deepEqual(
    small.mounts.map((x) => x.path),
    paths.slice(5, 8),
  );
  const s3 = second.mounts.find((x) => x.path === '/s3');
  assert.ok(s3 !== undefined);
  assert.equal(s3.uri, 's3://bucket/datasets');
  assert.deepEqual(s3.options, {
    's3.endpoint_url': 'http://127.0.0.1:9',
    's3.region_name': 'eu-west-1',
    's3.credentials.access': '***',
    's3.credentials.secret': '***',
  });
  assert.equal(s3.writeType, 'through');
  assert.equal(s3.ttlMs, 3_600_000);
  assert.equal(s3.ttlAction, 'free');
  assert.equal(s3.autoCache, false);
  assert.equal(s3.replicas, 2);
  const web = second.mounts.find((x) => x.path === '/web');
  assert.deepEqual(web?.options, { 'http.header.Authorization': '***' });

  for (const bad of ['limit=0', `limit=${MAX_UFS_PAGE + 1}`, 'offset=-1', 'offset=x', 'limit=1.5']) {
    const e = await getJson<{ error: { code: string; message: string } }>(m, `/api/mounts?${bad}`, 400);
    assert.equal(e.error.code, 'STRATA_BAD_REQUEST');
    assert.match(e.error.message, /must be an integer from \d+ to \d+/);
  }
  // Nothing secret in any answer or log line.
  const everything = [
    JSON.stringify(first),
    JSON.stringify(second),
    await (await fetch(`${m.base}/api/config`)).text(),
    await logText(m),
  ].join('\n');
  for (const secret of [S3_ACCESS, S3_SECRET, HEADER_SECRET, 'origin-token'])
    assert.ok(!everything.includes(secret), secret);
});

test('jobs: progress newest first; cancel needs the admin token', async (t) => {
  const m = await startMaster(t);
  const core = m.server.core;
  assert.ok(core !== undefined);
  const rpcPort = await silentWorker(t);
  core.registry.register({
    clusterId: 'ufs-api',
    address: { workerId: 'w-silent', hostname: '127.0.0.1', rpcPort, webPort: 0, hostId: 'host-silent' },
    tiers: [
      {
        storageType: 'DISK',
        dir: '/mnt/disk',
        capacityBytes: 1 << 30,
        usedBytes: 0,
        availableBytes: 1 << 30,
        blocks: 0,
        highWatermark: 0.9,
        lowWatermark: 0.8,
      },
    ],
    version: 'test',
  });
  const ufs = join(m.dir, 'ufs');
  mkdirSync(join(ufs, 'empty'), { recursive: true });
  mkdirSync(join(ufs, 'data', 'sub'), { recursive: true });
  writeFileSync(join(ufs, 'data', 'a.bin'), Buffer.alloc(3000, 1));
  writeFileSync(join(ufs, 'data', 'sub', 'b.bin'), Buffer.alloc(5000, 2));
  await core.ufs.mounts.mount({ uri: `file://${ufs}`, path: '/ufs', options: {} });

  // Two quick jobs (nothing to load) and one whose tasks hang on the silent worker.
  const quick1 = await core.ufs.loads.submit('/ufs/empty');
  await core.ufs.loads.wait(quick1.jobId);
  const quick2 = await core.ufs.loads.submit('/ufs/empty');
  await core.ufs.loads.wait(quick2.jobId);
  const slow = await core.ufs.loads.submit('/ufs/data');
  const running = await waitFor('the load job to scan and dispatch', async () => {
    const { jobs } = await getJson<JobsAnswer>(m, '/api/jobs');
    const j = jobs.find((x) => x.jobId === slow.jobId);
    return j?.state === 'running' && j.totalFiles === 2 ? j : undefined;
  });
  assert.equal(running.totalBytes, 8000);
  assert.equal(running.doneBytes, 0);
  assert.equal(running.doneFiles, 0);

  const all = await getJson<JobsAnswer>(m, '/api/jobs');
  assert.equal(all.total, 3);
  assert.deepEqual(all.byState, { running: 1, completed: 2 });
  // Newest first, and pages follow on from one another.
  assert.equal(all.jobs[0]?.jobId, slow.jobId);
  const page2 = await getJson<JobsAnswer>(m, '/api/jobs?offset=1&limit=1');
  assert.deepEqual(
    page2.jobs.map((j) => j.jobId),
    [all.jobs[1]?.jobId],
  );
  assert.equal(page2.total, 3);

  // Refusals: no token, a wrong one, a bad body; an unknown job is a 404 even with the token.
  let res = await cancel(m, { jobId: slow.jobId });
  assert.equal(res.status, 401);
  res = await cancel(m, { jobId: slow.jobId }, 'wrong-token');
  assert.equal(res.status, 403);
  assert.equal(core.ufs.loads.get(slow.jobId).state, 'running', 'refused cancels change nothing');
  res = await cancel(m, { job: slow.jobId }, TOKEN);
  assert.equal(res.status, 400);
  res = await cancel(m, { jobId: 'no-such-job' }, TOKEN);
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'STRATA_NOT_FOUND');

  res = await cancel(m, { jobId: slow.jobId }, TOKEN);
  assert.equal(res.status, 200);
  const { job } = (await res.json()) as { job: LoadJobStatus };
  assert.equal(job.state, 'cancelled');
  const ended = await core.ufs.loads.wait(slow.jobId);
  assert.equal(ended.state, 'cancelled');
  // Ended jobs cannot be cancelled again: a conflict that says why.
  res = await cancel(m, { jobId: quick1.jobId }, TOKEN);
  assert.equal(res.status, 409);
  assert.match(
    ((await res.json()) as { error: { message: string } }).error.message,
    /already ended \(completed\)/,
  );

  // The log is written asynchronously: wait for the action's line rather than read it once.
  await waitFor(
    'the cancel logged',
    async () => /console action: load job cancelled/.test(await logText(m)),
    10_000,
  );
  const log = await logText(m);
  assert.match(
    log,
    /"action":"cancel-load".*"code":"STRATA_UNAUTHORIZED"|"code":"STRATA_UNAUTHORIZED".*"action":"cancel-load"/,
  );
  assert.ok(!log.includes(TOKEN), 'the token is never logged');
  assert.ok(!log.includes('wrong-token'), 'a wrong token is never logged');
});

test('a standby answers 503 naming the leader on every mounts and jobs route', async (t) => {
  // Nothing here reads the log: a file logger in a temp dir could still be opening its file
  // when the test ends and the dir goes (an uncaught ENOENT after the test).
  const log = silentLogger();
  const http = new OpsHttpServer({ host: '127.0.0.1', port: 0, registry: createRegistry('master'), log });
  addUfsApi(http, {
    core: () => {
      throw new StrataError('STRATA_NOT_LEADER', 'not the leader: the leader is 10.0.0.1:19998');
    },
    guard: new AdminGuard(TOKEN),
    log,
  });
  const { port } = await http.listen();
  t.after(() => http.close());
  const base = `http://127.0.0.1:${port}`;
  for (const path of ['/api/mounts', '/api/jobs']) {
    const e = await getJson<{ error: { code: string; message: string } }>({ base }, path, 503);
    assert.equal(e.error.code, 'STRATA_NOT_LEADER');
    assert.match(e.error.message, /10\.0\.0\.1:19998/);
  }
  assert.equal((await cancel({ base }, { jobId: 'x' }, TOKEN)).status, 503);
  assert.equal((await cancel({ base }, { jobId: 'x' })).status, 401, 'the token is checked first');
});

test('jobsPage sorts newest first (submission order within a millisecond) and counts every state', () => {
  const job = (jobId: string, startedAtMs: number, state: LoadJobStatus['state']): LoadJobStatus => ({
    jobId,
    path: '/p',
    state,
    totalFiles: 0,
    totalBytes: 0,
    doneFiles: 0,
    doneBytes: 0,
    loadedBytes: 0,
    failedBlocks: 0,
    startedAtMs,
  });
  const all = [
    job('a', 1, 'completed'),
    job('c', 3, 'running'),
    job('b', 3, 'failed'),
    job('d', 2, 'cancelled'),
  ];
  const p = jobsPage(all, { offset: 0, limit: 10 });
  assert.deepEqual(
    p.jobs.map((j) => j.jobId),
    ['b', 'c', 'd', 'a'],
  );
  assert.deepEqual(p.byState, { running: 1, failed: 1, cancelled: 1, completed: 1 });
  assert.deepEqual(
    jobsPage(all, { offset: 3, limit: 10 }).jobs.map((j) => j.jobId),
    ['a'],
  );
  assert.equal(jobsPage(all, { offset: 10, limit: 10 }).jobs.length, 0);
});
