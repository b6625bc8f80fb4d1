// Proves the HTTP caching behaviour of a real `strata proxy` against a scripted origin: PURGE
// with its bearer token, stale-while-revalidate and stale-if-error, revalidation with stored
// validators (a 304 refreshes stored headers), byte ranges from cache, what is and is not
// stored, query strings in the key, hop-by-hop headers, and unsafe methods passing through.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { get, pattern, scratch, serveRanged, startOrigin, startProxy } from './helpers.js';

const TOKEN = 'purge-secret-0123';

test('PURGE needs the bearer token, then drops the URL with its variants', async (t) => {
  const dir = scratch(t);
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      vary: 'accept-language',
      'content-type': 'text/plain',
    });
    res.end(`hello ${String(req.headers['accept-language'])}`);
  });
  const proxy = await startProxy(t, dir, {
    upstream_address: origin.address,
    purge: { enabled: true, auth_token: TOKEN },
  });
  for (const lang of ['en', 'fr']) await get(proxy.url('/doc'), { 'accept-language': lang });
  assert.equal((await get(proxy.url('/doc'), { 'accept-language': 'fr' })).headers['x-strata-cache'], 'HIT');
  assert.equal((await get(proxy.url('/doc'), {}, 'PURGE')).status, 401, 'no token');
  assert.equal((await get(proxy.url('/doc'), { authorization: 'Bearer wrong-token' }, 'PURGE')).status, 403);
  assert.equal((await get(proxy.url('/doc'), { authorization: `Basic ${TOKEN}` }, 'PURGE')).status, 401);
  assert.equal((await get(proxy.url('/doc'), { 'accept-language': 'en' })).headers['x-strata-cache'], 'HIT');
  const ok = await get(proxy.url('/doc'), { authorization: `Bearer ${TOKEN}` }, 'PURGE');
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body.toString()) as { purged: number }).purged, 3, 'marker and two variants');
  const after = await get(proxy.url('/doc'), { 'accept-language': 'en' });
  assert.equal(after.headers['x-strata-cache'], 'MISS');
  assert.equal(origin.count('/doc'), 3);
  assert.equal((await get(proxy.url('/none'), { authorization: `Bearer ${TOKEN}` }, 'PURGE')).status, 404);
  assert.equal(origin.seen.filter((s) => s.method === 'PURGE').length, 0, 'PURGE never reaches the origin');
});

test('PURGE is refused when disabled', async (t) => {
  const dir = scratch(t);
  const origin = await startOrigin(t, (_req, res) => {
    res.end('x');
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  assert.equal((await get(proxy.url('/x'), { authorization: `Bearer ${TOKEN}` }, 'PURGE')).status, 405);
});

test('stale-while-revalidate: the stale copy is served at once while a background refresh runs', async (t) => {
  const dir = scratch(t);
  let version = 1;
  let delayMs = 0;
  const origin = await startOrigin(t, async (_req, res) => {
    const v = version;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    // Age 5 > max-age 1: stale on arrival, within the stale-while-revalidate window.
    res.writeHead(200, {
      'cache-control': 'max-age=1, stale-while-revalidate=600',
      age: '5',
      etag: `"v${v}"`,
    });
    res.end(`version ${v}`);
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  assert.equal((await get(proxy.url('/swr'))).body.toString(), 'version 1');
  version = 2;
  delayMs = 1500; // the refresh is slow; the client must not wait for it
  const t0 = Date.now();
  const stale = await get(proxy.url('/swr'));
  const waited = Date.now() - t0;
  assert.equal(stale.body.toString(), 'version 1');
  assert.equal(stale.headers['x-strata-cache'], 'STALE');
  assert.ok(waited < 1000, `served without waiting for the origin (${waited} ms)`);
  await waitFor('background refresh reached the origin', () => origin.count('/swr') === 2);
  await waitFor(
    'refreshed copy stored',
    async () => (await get(proxy.url('/swr'))).body.toString() === 'version 2',
    10_000,
    100,
  );
  const revalidation = origin.seen[1];
  assert.equal(revalidation?.headers['if-none-match'], '"v1"', 'the refresh is conditional');
});

test('stale-if-error: a stale copy answers when the origin fails, only within its window', async (t) => {
  const dir = scratch(t);
  let failing = false;
  const origin = await startOrigin(t, (req, res) => {
    if (failing) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down');
      return;
    }
    const sie = req.url === '/sie' ? ', stale-if-error=600' : '';
    res.writeHead(200, {
      'cache-control': `max-age=1${sie}`,
      age: '5',
      'last-modified': 'Wed, 01 Jan 2020 00:00:00 GMT',
    });
    res.end(`body of ${req.url}`);
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  await get(proxy.url('/sie'));
  await get(proxy.url('/plain'));
  failing = true;
  const saved = await get(proxy.url('/sie'));
  assert.equal(saved.status, 200);
  assert.equal(saved.body.toString(), 'body of /sie');
  assert.equal(saved.headers['x-strata-cache'], 'STALE-IF-ERROR');
  const notSaved = await get(proxy.url('/plain'));
  assert.equal(notSaved.status, 503, 'no stale-if-error: the origin error is passed on');
  // The origin going away entirely counts as an error too.
  origin.server.closeAllConnections();
  await new Promise<void>((r) => origin.server.close(() => r()));
  const gone = await get(proxy.url('/sie'));
  assert.equal(gone.status, 200);
  assert.equal(gone.body.toString(), 'body of /sie');
  assert.equal((await get(proxy.url('/never-seen'))).status, 502);
});

test('revalidation sends the stored validators; a 304 refreshes the stored headers', async (t) => {
  const dir = scratch(t);
  let stamp = 'one';
  const origin = await startOrigin(t, (req, res) => {
    if (req.headers['if-none-match'] === '"abc"') {
      res.writeHead(304, { etag: '"abc"', 'cache-control': 'max-age=600', 'x-stamp': stamp });
      res.end();
      return;
    }
    res.writeHead(200, {
      etag: '"abc"',
      'cache-control': 'max-age=0',
      'x-stamp': stamp,
      'content-type': 'text/plain',
    });
    res.end('the body');
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  await get(proxy.url('/r'));
  stamp = 'two';
  const r = await get(proxy.url('/r'));
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'the body', 'body from the cache');
  assert.equal(r.headers['x-stamp'], 'two', 'headers from the 304');
  assert.equal(r.headers['x-strata-cache'], 'REVALIDATED');
  assert.equal(origin.seen[1]?.headers['if-none-match'], '"abc"');
  const h = await get(proxy.url('/r'));
  assert.equal(h.headers['x-strata-cache'], 'HIT', 'fresh for 600 s after the 304');
  assert.equal(h.headers['x-stamp'], 'two');
  // A client's own validator is answered by the cache.
  const nm = await get(proxy.url('/r'), { 'if-none-match': '"abc"' });
  assert.equal(nm.status, 304);
  assert.equal(origin.count('/r'), 2);
});

test('ranges are served from a cached object: single, multiple, 416, If-Range', async (t) => {
  const dir = scratch(t);
  const body = pattern(7, 100_000);
  const origin = await startOrigin(t, (req, res) =>
    serveRanged(req, res, body, {
      'cache-control': 'max-age=600',
      etag: '"r1"',
      'content-type': 'application/octet-stream',
    }),
  );
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  // A client's range on a miss goes to the origin and is not stored as the whole object.
  const miss = await get(proxy.url('/obj'), { range: 'bytes=10-19' });
  assert.equal(miss.status, 206);
  assert.ok(miss.body.equals(body.subarray(10, 20)));
  const full = await get(proxy.url('/obj'));
  assert.equal(full.headers['x-strata-cache'], 'MISS', 'the 206 was not stored as the object');
  assert.ok(full.body.equals(body));
  const one = await get(proxy.url('/obj'), { range: 'bytes=50000-50099' });
  assert.equal(one.status, 206);
  assert.equal(one.headers['content-range'], 'bytes 50000-50099/100000');
  assert.ok(one.body.equals(body.subarray(50000, 50100)));
  const suffix = await get(proxy.url('/obj'), { range: 'bytes=-10' });
  assert.ok(suffix.body.equals(body.subarray(body.length - 10)));
  const multi = await get(proxy.url('/obj'), { range: 'bytes=0-4,99995-' });
  assert.equal(multi.status, 206);
  const ct = String(multi.headers['content-type']);
  const boundary = /boundary=(.+)$/.exec(ct)?.[1];
  assert.ok(boundary !== undefined, ct);
  const text = multi.body.toString('latin1');
  assert.ok(text.includes('content-range: bytes 0-4/100000'));
  assert.ok(text.includes('content-range: bytes 99995-99999/100000'));
  assert.ok(text.trimEnd().endsWith(`--${boundary}--`));
  assert.equal(Number(multi.headers['content-length']), multi.body.length);
  const bad = await get(proxy.url('/obj'), { range: 'bytes=200000-' });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], 'bytes */100000');
  const ifRangeOk = await get(proxy.url('/obj'), { range: 'bytes=0-1', 'if-range': '"r1"' });
  assert.equal(ifRangeOk.status, 206);
  const ifRangeOld = await get(proxy.url('/obj'), { range: 'bytes=0-1', 'if-range': '"old"' });
  assert.equal(ifRangeOld.status, 200, 'a changed validator gets the whole body');
  assert.equal(ifRangeOld.body.length, body.length);
  assert.equal(origin.count('/obj'), 2, 'all of these from the cache');
});

test('what is stored: freshness or a validator; cache_ttl only with cache_ttl_fallback; query in the key', async (t) => {
  const dir = scratch(t);
  const origin = await startOrigin(t, (req, res) => {
    const path = req.url ?? '/';
    if (path.startsWith('/bare')) res.writeHead(200, { 'content-type': 'text/plain' });
    else if (path.startsWith('/private')) res.writeHead(200, { 'cache-control': 'private, max-age=600' });
    else if (path.startsWith('/nostore')) res.writeHead(200, { 'cache-control': 'no-store' });
    else res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(`answer for ${path}`);
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address, cache_ttl: 600 });
  for (const p of ['/bare', '/private', '/nostore']) {
    await get(proxy.url(p));
    const again = await get(proxy.url(p));
    assert.notEqual(again.headers['x-strata-cache'], 'HIT', `${p} not stored`);
    assert.equal(origin.count(p), 2);
  }
  await get(proxy.url('/q?a=1'));
  assert.equal((await get(proxy.url('/q?a=1'))).headers['x-strata-cache'], 'HIT');
  const other = await get(proxy.url('/q?a=2'));
  assert.equal(other.headers['x-strata-cache'], 'MISS');
  assert.equal(other.body.toString(), 'answer for /q?a=2');

  const dir2 = scratch(t);
  const fallback = await startProxy(t, dir2, {
    upstream_address: origin.address,
    cache_ttl: 600,
    cache_ttl_fallback: true,
  });
  await get(fallback.url('/bare2'));
  const hit = await get(fallback.url('/bare2'));
  assert.equal(hit.headers['x-strata-cache'], 'HIT', 'cache_ttl_fallback gives cache_ttl freshness');
  await get(fallback.url('/nostore2'));
  assert.notEqual((await get(fallback.url('/nostore2'))).headers['x-strata-cache'], 'HIT', 'never no-store');
});

test('hop-by-hop headers are stripped; PUT passes through with its body and invalidates', async (t) => {
  const dir = scratch(t);
  const puts: string[] = [];
  const origin = await startOrigin(t, async (req, res) => {
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      puts.push(Buffer.concat(chunks).toString());
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, {
      'cache-control': 'max-age=600',
      connection: 'x-private-hop',
      'x-private-hop': 'secret',
      'keep-alive': 'timeout=5',
      'x-kept': 'yes',
    });
    res.end(`v${puts.length}`);
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  const a = await get(proxy.url('/item'), {
    connection: 'x-client-hop',
    'x-client-hop': 'no',
    'x-e2e': 'yes',
  });
  assert.equal(a.headers['x-private-hop'], undefined);
  assert.equal(a.headers['x-kept'], 'yes');
  assert.equal(origin.seen[0]?.headers['x-client-hop'], undefined, 'client hop-by-hop not forwarded');
  assert.equal(origin.seen[0]?.headers['x-e2e'], 'yes');
  assert.equal((await get(proxy.url('/item'))).headers['x-strata-cache'], 'HIT');
  const put = await get(proxy.url('/item'), { 'content-type': 'text/plain' }, 'PUT', 'new content');
  assert.equal(put.status, 204);
  assert.deepEqual(puts, ['new content']);
  const after = await get(proxy.url('/item'));
  assert.equal(after.headers['x-strata-cache'], 'MISS', 'PUT invalidated the stored copy');
  assert.equal(after.body.toString(), 'v1');
});
