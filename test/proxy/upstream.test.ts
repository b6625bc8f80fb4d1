// Proves the origin client's headers hook: `onResponse` sees the response synchronously when its
// headers arrive (before the promise resolves and before the origin sent any body byte), a hook
// that throws does not break the response, and a refused connection is an UpstreamError.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { UpstreamError } from '../../src/proxy/errors.js';
import { Upstream } from '../../src/proxy/upstream.js';
import type { UpstreamResponse } from '../../src/proxy/upstream.js';
import { freePorts } from '../helpers/ports.js';
import { startOrigin } from './helpers.js';

const BODY = Buffer.alloc(256 * 1024, 7);

async function readAll(up: UpstreamResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of up.body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('onResponse runs when the headers arrive, before the promise and before any body byte', async (t) => {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const origin = await startOrigin(t, async (_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length, etag: '"x"' });
    res.flushHeaders();
    await released; // the body only once the hook has run
    res.end(BODY);
  });
  const upstream = new Upstream(origin.address, { timeoutMs: 10_000, maxConnections: 2 });
  t.after(() => upstream.close());
  const order: string[] = [];
  let seen: UpstreamResponse | undefined;
  const p = upstream.request({
    method: 'GET',
    path: '/a',
    headers: {},
    onResponse: (up) => {
      order.push('hook');
      seen = up;
      release();
    },
  });
  const up = await p.then((r) => {
    order.push('resolved');
    return r;
  });
  assert.deepEqual(order, ['hook', 'resolved']);
  assert.equal(seen, up);
  assert.equal(up.status, 200);
  assert.ok(up.headers.some(([k, v]) => k === 'etag' && v === '"x"'));
  assert.equal(up.hookError, undefined);
  assert.deepEqual(await readAll(up), BODY);
});

test('a hook that throws leaves the response intact and is reported in hookError', async (t) => {
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    res.end(BODY);
  });
  const upstream = new Upstream(origin.address, { timeoutMs: 10_000, maxConnections: 2 });
  t.after(() => upstream.close());
  const up = await upstream.request({
    method: 'GET',
    path: '/b',
    headers: {},
    onResponse: () => {
      throw new Error('hook failed');
    },
  });
  assert.equal((up.hookError as Error).message, 'hook failed');
  assert.deepEqual(await readAll(up), BODY);
  // The pooled connection is still usable.
  const again = await upstream.request({ method: 'GET', path: '/c', headers: {} });
  assert.deepEqual(await readAll(again), BODY);
});

test('a refused connection rejects with an UpstreamError and never calls the hook', async (t) => {
  const [port] = await freePorts(1);
  const upstream = new Upstream(`127.0.0.1:${port}`, { timeoutMs: 5_000, maxConnections: 1 });
  t.after(() => upstream.close());
  let called = false;
  await assert.rejects(
    upstream.request({ method: 'GET', path: '/', headers: {}, onResponse: () => (called = true) }),
    (err: unknown) => err instanceof UpstreamError && /request failed/.test(err.message),
  );
  assert.equal(called, false);
});
