// Proves the console's server side on an in-process master (real HTTP on a loopback port): the
// page and assets with their hardening headers and caching, no way out of the asset folder, the
// API additions, and the protection of actions — read-only without a token, 401/403/429 with
// one, applied only with the right token — with no secret in any page, answer or log line.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import { createLogger } from '../../src/common/logging.js';
import type { Logger } from '../../src/common/logging.js';
import { MasterServer } from '../../src/master/master.js';
import { API_CSP, PAGE_CSP, MAX_FAILED_AUTH_PER_WINDOW } from '../../src/master/console/security.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'api-test-admin-token-c0ffee';
const S3_SECRET = 'api-test-s3-secret-beef';
const ETCD_PASSWORD = 'api-test-etcd-password-f00d';

interface Master {
  server: MasterServer;
  base: string;
  log: Logger;
  logFile: string;
}

async function startMaster(t: TestContext, token: string | undefined): Promise<Master> {
  const dir = tempDir(t, 'strata-console-api-');
  const toml = `cluster_id = "api"
[master]
hostname = "127.0.0.1"
bind_host = "127.0.0.1"
rpc_port = 0
web_port = 0
meta_dir = "${join(dir, 'meta')}"
${token === undefined ? '' : `admin_token = "${token}"`}
[s3_gateway]
secret_key = "${S3_SECRET}"
[etcd]
password = "${ETCD_PASSWORD}"
`;
  const { config } = parseConfigText(toml, 'test', { env: {} });
  const logDir = join(dir, 'logs');
  const log = createLogger({ level: 'DEBUG', logDir, role: 'master' });
  const server = await MasterServer.start({ config, log });
  t.after(() => server.stop());
  // Two workers, registered as if they had called in (no web port: the sampler leaves them be).
  for (const [id, port] of [
    ['w-one', 7001],
    ['w-two', 7002],
  ] as const) {
    server.core!.registry.register({
      clusterId: 'api',
      address: { workerId: id, hostname: '127.0.0.1', rpcPort: port, webPort: 0, hostId: `host-${id}` },
      tiers: [
        {
          storageType: 'MEM',
          dir: '/mnt/mem',
          capacityBytes: 1000,
          usedBytes: id === 'w-one' ? 990 : 10,
          availableBytes: 10,
          blocks: 0,
          highWatermark: 0.95,
          lowWatermark: 0.85,
        },
      ],
      version: 'test',
    });
  }
  return {
    server,
    base: `http://127.0.0.1:${server.http.address().port}`,
    log,
    logFile: join(logDir, 'master.log'),
  };
}

async function post(
  m: Master,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(m.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

async function logText(m: Master): Promise<string> {
  await new Promise<void>((resolve) => m.log.flush(() => resolve()));
  return readFileSync(m.logFile, 'utf8');
}

test('the page and its assets carry the hardening headers and no inline script', async (t) => {
  const m = await startMaster(t, TOKEN);
  for (const path of ['/', '/console', '/console/']) {
    const res = await fetch(m.base + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('content-security-policy'), PAGE_CSP);
    assert.match(PAGE_CSP, /script-src 'self'(;|$)/);
    assert.match(PAGE_CSP, /frame-ancestors 'none'/);
    assert.doesNotMatch(PAGE_CSP, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const html = await res.text();
    // Every script is a file from this origin; no inline handlers or styles.
    for (const tag of html.match(/<script\b[^>]*>/g) ?? [])
      assert.match(tag, /src="\/console\/main\.js\?v=[0-9a-f]{16}"/);
    assert.doesNotMatch(html, /<script\b[^>]*>[^<]+<\/script>/);
    assert.doesNotMatch(html, /\son[a-z]+=|\sstyle=/i);
  }
  const html = await (await fetch(m.base + '/')).text();
  const js = /src="(\/console\/main\.js\?v=([0-9a-f]{16}))"/.exec(html);
  const css = /href="(\/console\/styles\.css\?v=([0-9a-f]{16}))"/.exec(html);
  assert.ok(js !== null && css !== null);
  const jsRes = await fetch(m.base + (js[1] as string));
  assert.equal(jsRes.status, 200);
  assert.equal(jsRes.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(jsRes.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(jsRes.headers.get('etag'), `"${js[2]}"`);
  assert.equal(jsRes.headers.get('content-security-policy'), PAGE_CSP);
  assert.ok((await jsRes.text()).length > 1000);
  const cssRes = await fetch(m.base + (css[1] as string));
  assert.equal(cssRes.headers.get('content-type'), 'text/css; charset=utf-8');
  // Without the matching hash: revalidated by ETag.
  const plain = await fetch(`${m.base}/console/main.js`);
  assert.equal(plain.headers.get('cache-control'), 'no-cache');
  await plain.arrayBuffer();
  const again = await fetch(`${m.base}/console/main.js`, { headers: { 'if-none-match': `"${js[2]}"` } });
  assert.equal(again.status, 304);
  // Nothing outside the built files, however the path is spelled.
  for (const path of [
    '/console/format.js',
    '/console/../package.json',
    '/console/%2e%2e/package.json',
    '/console/..%2f..%2fpackage.json',
    '/console/sub/main.js',
    '/console/',
  ]) {
    const res = await fetch(m.base + path);
    const body = await res.text();
    if (path === '/console/') assert.equal(res.status, 200);
    else assert.equal(res.status, 404, `${path} → ${res.status}`);
    assert.doesNotMatch(body, /"name":\s*"strata"/, path);
  }
});

test('API answers carry no-store, nosniff and a CSP that loads nothing', async (t) => {
  const m = await startMaster(t, undefined);
  for (const path of [
    '/api/overview',
    '/api/workers',
    '/api/browse?path=/',
    '/api/config',
    '/api/console',
    '/api/masters',
    '/api/alerts',
    '/api/metrics/history',
    '/api/browse?path=/missing',
  ]) {
    const res = await fetch(m.base + path);
    assert.equal(res.headers.get('content-security-policy'), API_CSP, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('cache-control'), 'no-store', path);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, path);
    await res.arrayBuffer();
  }
  const info = (await (await fetch(`${m.base}/api/console`)).json()) as Record<string, unknown>;
  assert.deepEqual(
    { ...info, version: 'v' },
    { clusterId: 'api', version: 'v', actionsEnabled: false, refreshMs: 5000, sampleIntervalMs: 5000 },
  );
  const masters = (await (await fetch(`${m.base}/api/masters`)).json()) as {
    masters: { address: string; role: string }[];
  };
  assert.deepEqual(
    masters.masters.map((x) => x.role),
    ['leader'],
  );
  assert.equal(masters.masters[0]?.address, `127.0.0.1:${m.server.rpc.address().port}`);
  const alerts = (await (await fetch(`${m.base}/api/alerts`)).json()) as {
    alerts: { id: string; severity: string }[];
  };
  assert.deepEqual(alerts.alerts, [
    {
      id: 'tier-high:w-one:MEM:/mnt/mem',
      severity: 'warning',
      title: 'MEM tier of 127.0.0.1:7001 above its high watermark',
      detail: '99.0% used (high 95.0%, low 85.0%) in /mnt/mem.',
    },
  ]);
  assert.equal((await fetch(`${m.base}/api/metrics/history?sinceMs=soon`)).status, 400);
  const hist = (await (await fetch(`${m.base}/api/metrics/history?sinceMs=0`)).json()) as {
    intervalMs: number;
    capacity: number;
  };
  assert.equal(hist.intervalMs, 5000);
  assert.equal(hist.capacity, 720);
});

test('read-only without master.admin_token: every action is refused with 403', async (t) => {
  const m = await startMaster(t, undefined);
  const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer anything' }];
  for (const headers of attempts) {
    const res = await post(m, '/api/workers/decommission', { worker: 'w-one' }, headers);
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'STRATA_FORBIDDEN');
    assert.match(body.error.message, /read-only.*master\.admin_token/);
  }
  assert.equal(m.server.core!.registry.get('w-one')?.state, 'live');
  // Actions are POSTs only.
  assert.equal((await fetch(`${m.base}/api/workers/decommission?worker=w-one`)).status, 404);
});

test('with a token: missing → 401, wrong → 403, repeated → 429, right → applied; no secret anywhere', async (t) => {
  const m = await startMaster(t, TOKEN);
  const path = '/api/workers/decommission';
  const missing = await post(m, path, { worker: 'w-one' });
  assert.equal(missing.status, 401);
  assert.match(
    ((await missing.json()) as { error: { message: string } }).error.message,
    /Authorization: Bearer/,
  );
  for (const auth of [`Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN, `Bearer`]) {
    const res = await post(m, path, { worker: 'w-one' }, { authorization: auth });
    assert.ok(res.status === 401 || res.status === 403, `${auth} → ${res.status}`);
    await res.arrayBuffer();
  }
  assert.equal(m.server.core!.registry.get('w-one')?.state, 'live');
  // Only a JSON body is an action (a cross-site form cannot send one with the header anyway).
  const form = await fetch(m.base + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'worker=w-one',
  });
  assert.equal(form.status, 400);
  const bad = await post(m, path, { worker: 'w-one', extra: 1 }, { authorization: `Bearer ${TOKEN}` });
  assert.equal(bad.status, 400);
  const unknown = await post(m, path, { worker: 'nope:1' }, { authorization: `Bearer ${TOKEN}` });
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'STRATA_WORKER_UNKNOWN');

  const ok = await post(m, path, { worker: '127.0.0.1:7001' }, { authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { workerId: 'w-one', state: 'decommissioning' });
  assert.equal(m.server.core!.registry.get('w-one')?.state, 'decommissioning');

  // Wrong tokens from one address are slowed down, the right one included, until the window passes.
  let last = 0;
  for (let i = 0; i < MAX_FAILED_AUTH_PER_WINDOW + 1; i++) {
    const res = await post(m, path, { worker: 'w-two' }, { authorization: `Bearer wrong-${i}` });
    last = res.status;
    await res.arrayBuffer();
  }
  assert.equal(last, 429);
  const throttled = await post(m, path, { worker: 'w-two' }, { authorization: `Bearer ${TOKEN}` });
  assert.equal(throttled.status, 429);
  assert.ok(Number(throttled.headers.get('retry-after')) > 0);
  assert.equal(m.server.core!.registry.get('w-two')?.state, 'live');

  // No secret in any page, asset or answer, nor in the log after all of the above.
  const bodies: string[] = [];
  const html = await (await fetch(`${m.base}/`)).text();
  bodies.push(html);
  for (const p of [
    '/console/main.js',
    '/console/styles.css',
    '/api/overview',
    '/api/workers',
    '/api/config',
    '/api/console',
    '/api/masters',
    '/api/alerts',
    '/api/metrics/history',
    '/api/browse?path=/',
    '/metrics',
  ])
    bodies.push(await (await fetch(m.base + p)).text());
  const log = await logText(m);
  assert.match(log, /console action refused/);
  assert.match(log, /console action: worker decommissioning/);
  for (const secret of [TOKEN, S3_SECRET, ETCD_PASSWORD]) {
    for (const b of bodies) assert.ok(!b.includes(secret), `a response contains ${secret}`);
    assert.ok(!log.includes(secret), `the log contains ${secret}`);
  }
  assert.match(bodies.find((b) => b.includes('"admin_token"')) ?? '', /"admin_token":"\*\*\*"/);
});
