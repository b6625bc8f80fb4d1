// Proves the shared ops HTTP server answers /metrics, /health, /ready and /live as documented
// (readiness follows the role's callback), and that Lifecycle closes components in reverse order
// exactly once and reports the exit code a signal should produce.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Lifecycle } from '../../src/common/lifecycle.js';
import { silentLogger } from '../../src/common/logging.js';
import { Counter, createRegistry } from '../../src/common/metrics.js';
import { OpsHttpServer, readJsonBody, sendError, sendJson } from '../../src/common/ops-http.js';
import { FsError, StrataError, toStrataError } from '../../src/common/errors.js';

test('ops server serves metrics, health and readiness', async (t) => {
  const registry = createRegistry('test');
  const hits = new Counter({ name: 'strata_test_hits_total', help: 'test counter', registers: [registry] });
  hits.inc(3);
  let ready = false;
  const ops = new OpsHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry,
    log: silentLogger(),
    ready: () => (ready ? { ok: true } : { ok: false, reason: 'store not open' }),
    healthAliases: ['/healthz'],
  });
  ops.route('POST', '/api/echo', async (req, res) => sendJson(res, 200, { got: await readJsonBody(req) }));
  ops.route('GET', '/api/fail', (_req, res) =>
    sendError(res, new FsError('ENOENT', '/x: no such file or directory')),
  );
  const { port } = await ops.listen();
  t.after(() => ops.close());
  const base = `http://127.0.0.1:${port}`;

  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  assert.match(text, /strata_test_hits_total\{role="test"\} 3/);
  assert.match(text, /process_cpu_user_seconds_total/);

  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'healthy' });
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/live`)).status, 200);

  const notReady = await fetch(`${base}/ready`);
  assert.equal(notReady.status, 503);
  assert.deepEqual(await notReady.json(), { status: 'unhealthy', reason: 'store not open' });
  ready = true;
  assert.equal((await fetch(`${base}/ready`)).status, 200);

  const echo = await fetch(`${base}/api/echo`, { method: 'POST', body: '{"a":1}' });
  assert.deepEqual(await echo.json(), { got: { a: 1 } });
  const bad = await fetch(`${base}/api/echo`, { method: 'POST', body: '{nope' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /not valid JSON/);
  const fail = await fetch(`${base}/api/fail`);
  assert.equal(fail.status, 404);
  assert.equal(((await fail.json()) as { error: { code: string } }).error.code, 'ENOENT');
  assert.equal((await fetch(`${base}/nowhere`)).status, 404);
});

test('lifecycle closes in reverse order once, and a signal exits 0', async () => {
  const order: string[] = [];
  const lc = new Lifecycle(silentLogger(), 1000);
  lc.add('store', () => {
    order.push('store');
  });
  lc.add('server', async () => {
    await new Promise((r) => setTimeout(r, 10));
    order.push('server');
  });
  lc.add('broken', () => {
    throw new Error('close failed');
  });
  await Promise.all([lc.stop('test'), lc.stop('again')]);
  assert.deepEqual(
    order,
    ['server', 'store'],
    'reverse order, a failing closer does not stop the rest, once only',
  );

  const lc2 = new Lifecycle(silentLogger(), 1000);
  const exit = new Promise<number>((resolve) => lc2.installSignalHandlers(resolve));
  lc2.add('x', () => undefined);
  process.emit('SIGTERM', 'SIGTERM');
  assert.equal(await exit, 0);
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
});

test('errors keep stable codes and causes', () => {
  const e = toStrataError(Object.assign(new Error('gone'), { code: 'ENOENT' }));
  assert.ok(e instanceof FsError);
  assert.equal(e.code, 'ENOENT');
  assert.equal(e.errno, 2);
  const i = toStrataError(new TypeError('boom'));
  assert.equal(i.code, 'STRATA_INTERNAL');
  assert.ok(i.cause instanceof TypeError);
  assert.equal(new StrataError('STRATA_NOT_LEADER', 'x').retryable, true);
  assert.equal(new FsError('EEXIST', 'x').retryable, false);
});
