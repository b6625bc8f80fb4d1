// Proves the operational face of `strata proxy`: health endpoints and the seed's metric names,
// SIGHUP applying live keys (and naming those that need a restart, keeping the old config when
// the new one is invalid), and SIGTERM draining in-flight responses before exiting 0.
import { strict as assert } from 'node:assert';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { get, pattern, scratch, startOrigin, startProxy } from './helpers.js';

const SEED_METRICS = [
  'cache_hit_rate',
  'cache_l1_hits_total',
  'cache_l2_hits_total',
  'cache_misses_total',
  'cache_l1_entries',
  'cache_l1_bytes',
  'raw_disk_total_blocks',
  'raw_disk_used_blocks',
  'raw_disk_free_blocks',
  'raw_disk_fragmentation_rate',
  'raw_disk_cache_entries',
];

test('health endpoints answer as the seed documents; metrics carry the seed names and histograms', async (t) => {
  const dir = scratch(t);
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('ok');
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address });
  const health = await fetch(`http://127.0.0.1:${proxy.healthPort}/health`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), '{"status":"healthy"}');
  assert.equal((await fetch(`http://127.0.0.1:${proxy.healthPort}/live`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${proxy.healthPort}/ready`)).status, 200);
  await get(proxy.url('/m'));
  await get(proxy.url('/m'));
  await get(proxy.url('/m'));
  const text = await proxy.metrics();
  for (const name of SEED_METRICS) assert.match(text, new RegExp(`^${name}\\{`, 'm'), name);
  for (const h of [
    'proxy_request_duration_seconds_bucket',
    'proxy_ttfb_seconds_bucket',
    'proxy_upstream_latency_seconds_bucket',
  ])
    assert.match(text, new RegExp(`^${h}\\{`, 'm'), h);
  assert.equal(await proxy.metric('cache_misses_total'), 1);
  assert.equal(await proxy.metric('cache_l1_hits_total'), 2);
  assert.ok(Math.abs((await proxy.metric('cache_hit_rate')) - 66.67) < 0.1, 'hit rate in percent');
  assert.equal(await proxy.metric('cache_l1_entries'), 1);
});

test('SIGHUP applies live keys, names the ones that need a restart, and survives a bad file', async (t) => {
  const dir = scratch(t);
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end(`from ${req.url}`);
  });
  const base = { upstream_address: origin.address, purge: { enabled: true, auth_token: 'first-token-123' } };
  const proxy = await startProxy(t, dir, base);
  await get(proxy.url('/a'));
  assert.equal((await get(proxy.url('/a'))).headers['x-strata-cache'], 'HIT');

  proxy.rewrite({
    purge: { enabled: true, auth_token: 'second-token-456' },
    enable_cache: false,
    listen_address: '127.0.0.1:1',
  });
  proxy.proc.child.kill('SIGHUP');
  await proxy.proc.waitForOutput('configuration reloaded');
  await proxy.proc.waitForOutput(/need a restart to apply: listen_address/);
  assert.equal(
    (await get(proxy.url('/a'), { authorization: 'Bearer first-token-123' }, 'PURGE')).status,
    403,
  );
  assert.equal((await get(proxy.url('/b'))).headers['x-strata-cache'], 'PASS', 'enable_cache: false applied');
  assert.equal(
    (await get(proxy.url('/a'), { authorization: 'Bearer second-token-456' }, 'PURGE')).status,
    200,
  );
  assert.equal(
    (await fetch(`http://127.0.0.1:${proxy.healthPort}/health`)).status,
    200,
    'still on the old listener',
  );

  proxy.rewrite({ slice_size: 1 });
  proxy.proc.child.kill('SIGHUP');
  await proxy.proc.waitForOutput('configuration reload failed: keeping the running configuration');
  assert.equal((await get(proxy.url('/c'))).status, 200, 'still serving');
});

test('SIGTERM drains: an in-flight response finishes, new connections are refused, exit 0', async (t) => {
  const dir = scratch(t);
  const size = 8 * 1024 * 1024;
  const origin = await startOrigin(t, async (_req, res) => {
    res.writeHead(200, { 'content-length': size, 'cache-control': 'max-age=60' });
    for (let off = 0; off < size; off += 256 * 1024) {
      res.write(pattern(8, 256 * 1024, off));
      await new Promise((r) => setTimeout(r, 40)); // ~1.3 s in all
    }
    res.end();
  });
  const proxy = await startProxy(t, dir, { upstream_address: origin.address, drain_timeout_seconds: 20 });
  let got = 0;
  const chunks: Buffer[] = [];
  const finished = new Promise<number>((resolve, reject) => {
    httpRequest(proxy.url('/slow'), { agent: false }, (res) => {
      res.on('data', (c: Buffer) => {
        got += c.length;
        chunks.push(c);
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  await waitFor('response under way', () => got > 0);
  proxy.proc.child.kill('SIGTERM');
  await waitFor('not ready while draining', async () => {
    const r = await fetch(`http://127.0.0.1:${proxy.healthPort}/ready`).catch(() => undefined);
    return r === undefined || r.status === 503;
  });
  await assert.rejects(() => get(proxy.url('/new')), 'new connections are refused');
  assert.equal(await finished, 200);
  assert.ok(Buffer.concat(chunks).equals(pattern(8, size)), 'the in-flight response completed intact');
  assert.equal(await proxy.proc.exited, 0);
});
