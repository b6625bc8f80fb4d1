// Proves slicing through a real `strata proxy` process: sliced paths are fetched as aligned
// `slice_size` Range requests and cached per slice, only the slices a client range touches are
// fetched, transient origin errors are retried, and a slice whose ETag or total length
// disagrees with the others makes the proxy drop the object and refetch it (never a mix).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { get, pattern, scratch, serveRanged, startOrigin, startProxy } from './helpers.js';

const SLICE = 64 * 1024;

function sliceConfig(upstream: string): Record<string, unknown> {
  return {
    upstream_address: upstream,
    slice_patterns: ['\\.bin$'],
    slice_size: SLICE,
    max_concurrent_subrequests: 4,
    max_retries: 2,
    l1_cache_size_bytes: '64MB',
  };
}

function ranges(seen: { url: string; headers: Record<string, unknown> }[], url: string): string[] {
  return seen.filter((s) => s.url === url).map((s) => String(s.headers.range));
}

test('a sliced object is fetched as aligned Range requests, cached per slice, and served whole', async (t) => {
  const dir = scratch(t);
  const size = 16 * SLICE + 100;
  const body = pattern(1, size);
  const origin = await startOrigin(t, (req, res) =>
    serveRanged(req, res, body, {
      'cache-control': 'max-age=600',
      etag: '"v1"',
      'content-type': 'video/mp4',
    }),
  );
  const proxy = await startProxy(t, dir, sliceConfig(origin.address));
  const first = await get(proxy.url('/movie.bin'));
  assert.equal(first.status, 200);
  assert.equal(first.headers['content-length'], String(size));
  assert.equal(first.headers['content-range'], undefined);
  assert.equal(first.headers.etag, '"v1"');
  assert.ok(first.body.equals(body));
  const asked = ranges(origin.seen, '/movie.bin');
  assert.equal(asked.length, 17, `17 slices fetched: ${asked.join(' ')}`);
  for (let i = 0; i < 17; i++)
    assert.ok(asked.includes(`bytes=${i * SLICE}-${i * SLICE + SLICE - 1}`), `slice ${i} asked`);
  const again = await get(proxy.url('/movie.bin'));
  assert.ok(again.body.equals(body));
  assert.equal(again.headers['x-strata-cache'], 'HIT');
  assert.equal(origin.count('/movie.bin'), 17, 'second read entirely from cached slices');
  const part = await get(proxy.url('/movie.bin'), { range: `bytes=${SLICE - 10}-${3 * SLICE + 9}` });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], `bytes ${SLICE - 10}-${3 * SLICE + 9}/${size}`);
  assert.ok(part.body.equals(body.subarray(SLICE - 10, 3 * SLICE + 10)));
  const multi = await get(proxy.url('/movie.bin'), { range: 'bytes=0-9,200000-200009' });
  assert.equal(multi.status, 206);
  assert.match(String(multi.headers['content-type']), /^multipart\/byteranges; boundary=/);
  assert.ok(multi.body.includes(body.subarray(200000, 200010)));
  assert.equal(origin.count('/movie.bin'), 17);
});

test('only the slices a client range touches are fetched', async (t) => {
  const dir = scratch(t);
  const size = 40 * SLICE;
  const body = pattern(2, size);
  const origin = await startOrigin(t, (req, res) =>
    serveRanged(req, res, body, { 'cache-control': 'max-age=600', etag: '"v1"' }),
  );
  const proxy = await startProxy(t, dir, sliceConfig(origin.address));
  const at = 30 * SLICE + 1000;
  const r = await get(proxy.url('/deep.bin'), { range: `bytes=${at}-${at + 99}` });
  assert.equal(r.status, 206);
  assert.equal(r.headers['content-range'], `bytes ${at}-${at + 99}/${size}`);
  assert.ok(r.body.equals(body.subarray(at, at + 100)));
  assert.deepEqual(ranges(origin.seen, '/deep.bin'), [`bytes=${30 * SLICE}-${31 * SLICE - 1}`]);
  const two = await get(proxy.url('/deep.bin'), { range: `bytes=${31 * SLICE - 50}-${31 * SLICE + 49}` });
  assert.ok(two.body.equals(body.subarray(31 * SLICE - 50, 31 * SLICE + 50)));
  assert.deepEqual(ranges(origin.seen, '/deep.bin'), [
    `bytes=${30 * SLICE}-${31 * SLICE - 1}`,
    `bytes=${31 * SLICE}-${32 * SLICE - 1}`,
  ]);
});

test('a slice with another ETag makes the proxy drop the object and refetch it', async (t) => {
  const dir = scratch(t);
  const size = 4 * SLICE;
  let version = 1;
  const bodies = [pattern(10, size), pattern(20, size)];
  const origin = await startOrigin(t, (req, res) =>
    serveRanged(req, res, bodies[version - 1] as Buffer, {
      'cache-control': 'max-age=600',
      etag: `"v${version}"`,
    }),
  );
  const proxy = await startProxy(t, dir, sliceConfig(origin.address));
  // Slice 0 of version 1 gets cached...
  const early = await get(proxy.url('/changing.bin'), { range: 'bytes=0-99' });
  assert.ok(early.body.equals((bodies[0] as Buffer).subarray(0, 100)));
  // ...then the object changes at the origin.
  version = 2;
  const v2 = bodies[1] as Buffer;
  const r = await get(proxy.url('/changing.bin'), { range: `bytes=0-${2 * SLICE - 1}` });
  assert.equal(r.status, 206);
  assert.equal(r.headers.etag, '"v2"', 'served the new version');
  assert.ok(r.body.equals(v2.subarray(0, 2 * SLICE)), 'a consistent body of the new version, not a mix');
  assert.equal(await proxy.metric('proxy_slice_mismatches_total'), 1);
  const whole = await get(proxy.url('/changing.bin'));
  assert.ok(whole.body.equals(v2), 'later reads are of the new version throughout');
});

test('a slice whose total length disagrees is a mismatch too; transient 5xx are retried', async (t) => {
  const dir = scratch(t);
  let size = 3 * SLICE;
  let failNext = 0;
  const origin = await startOrigin(t, (req, res) => {
    if (failNext > 0) {
      failNext--;
      res.writeHead(503);
      res.end();
      return;
    }
    serveRanged(req, res, pattern(size, size), { 'cache-control': 'max-age=600' });
  });
  const proxy = await startProxy(t, dir, sliceConfig(origin.address));
  failNext = 2; // two 503s, then success: within max_retries = 2
  const a = await get(proxy.url('/len.bin'), { range: 'bytes=0-9' });
  assert.equal(a.status, 206);
  assert.ok(a.body.equals(pattern(size, size).subarray(0, 10)));
  size = 5 * SLICE; // grows, same (absent) ETag
  const b = await get(proxy.url('/len.bin'), { range: `bytes=0-${2 * SLICE - 1}` });
  assert.equal(b.headers['content-range'], `bytes 0-${2 * SLICE - 1}/${5 * SLICE}`);
  assert.ok(b.body.equals(pattern(size, size).subarray(0, 2 * SLICE)));
  assert.equal(await proxy.metric('proxy_slice_mismatches_total'), 1);
});

test('an origin without Range support on a sliced path is proxied as it answers', async (t) => {
  const dir = scratch(t);
  const body = pattern(5, 100_000);
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'content-length': body.length, 'cache-control': 'max-age=600' });
    res.end(body);
  });
  const proxy = await startProxy(t, dir, sliceConfig(origin.address));
  const r = await get(proxy.url('/norange.bin'));
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(body));
});
