// Proves crash safety of the raw-disk L2 with real processes: a `strata proxy` killed with
// SIGKILL in the middle of writing a large object restarts with its index recovered, serves
// what was committed from disk, and never serves the half-written object; the raw-disk
// metrics of the seed are exported.
import { strict as assert } from 'node:assert';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../helpers/wait.js';
import { get, pattern, scratch, startOrigin, startProxy } from './helpers.js';
import type { RunningProxy } from './helpers.js';

const MiB = 1024 * 1024;

function rawConfig(upstream: string, device: string): Record<string, unknown> {
  return {
    upstream_address: upstream,
    l1_cache_size_bytes: 0, // hits after the restart can only come from the raw disk
    enable_l2_cache: true,
    l2_backend: 'raw_disk',
    raw_disk_cache: { device_path: device, total_size: '256MB', block_size: 4096, enable_compression: true },
  };
}

test('SIGKILL in the middle of a write: committed entries survive, the partial one is never served', async (t) => {
  const dir = scratch(t);
  const device = join(dir, 'cache.raw');
  const big = pattern(42, 96 * MiB);
  const smalls = Array.from({ length: 20 }, (_, i) => pattern(i, 1000 + i * 20_000));
  const origin = await startOrigin(t, async (req, res) => {
    const m = /^\/small\/(\d+)$/.exec(req.url ?? '');
    if (m !== null) {
      const body = smalls[Number(m[1])] as Buffer;
      res.writeHead(200, {
        'cache-control': 'max-age=600',
        'content-length': body.length,
        etag: `"s${m[1]}"`,
      });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': big.length, etag: '"big"' });
    for (let off = 0; off < big.length; off += MiB) {
      if (!res.write(big.subarray(off, off + MiB))) await new Promise((r) => res.once('drain', r));
      await new Promise((r) => setTimeout(r, 5));
    }
    res.end();
  });
  const first = await startProxy(t, dir, rawConfig(origin.address, device));
  for (let i = 0; i < smalls.length; i++) await get(first.url(`/small/${i}`));
  await waitFor(
    'all small objects committed',
    async () => (await first.metric('raw_disk_cache_entries')) === 20,
  );
  assert.ok((await first.metric('raw_disk_total_blocks')) > 60_000);
  assert.ok((await first.metric('raw_disk_used_blocks')) > 0);
  // Start the big object and kill the proxy while it is being written.
  let received = 0;
  const cut = new Promise<void>((resolve) => {
    const req = httpRequest(first.url('/big'), { agent: false }, (res) => {
      res.on('data', (c: Buffer) => {
        received += c.length;
      });
      res.on('close', resolve);
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
  await waitFor('big object half way', () => received > 40 * MiB, 20_000);
  first.proc.child.kill('SIGKILL');
  await first.proc.exited;
  await cut;
  assert.ok(received < big.length, 'the kill interrupted the body');

  const second: RunningProxy = await startProxy(t, dir, rawConfig(origin.address, device));
  await second.proc.waitForOutput('raw disk index recovered');
  assert.equal(await second.metric('raw_disk_cache_entries'), 20, 'index recovered: every committed entry');
  for (let i = 0; i < smalls.length; i++) {
    const r = await get(second.url(`/small/${i}`));
    assert.equal(r.headers['x-strata-cache'], 'HIT', `/small/${i} from disk after the crash`);
    assert.ok(r.body.equals(smalls[i] as Buffer), `/small/${i} intact`);
  }
  const bigAfter = await get(second.url('/big'));
  assert.equal(bigAfter.headers['x-strata-cache'], 'MISS', 'the half-written object was not kept');
  assert.ok(bigAfter.body.equals(big), 'and is fetched whole');
  assert.equal(origin.count('/big'), 2);
  await waitFor('big object committed', async () => (await second.metric('raw_disk_cache_entries')) === 21);
  const hit = await get(second.url('/big'));
  assert.equal(hit.headers['x-strata-cache'], 'HIT');
  assert.ok(hit.body.equals(big));
  const frag = await second.metric('raw_disk_fragmentation_rate');
  assert.ok(frag >= 0 && frag <= 1);
  assert.ok((await second.metric('raw_disk_free_blocks')) > 0);
});
