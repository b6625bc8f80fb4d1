// Proves that cache failures degrade to proxying and never to an error response: an L2 that
// cannot start, an L2 directory that disappears while serving, a damaged entry on disk (at its
// start and deep inside it), and a store that fails on cue (disk full) under a live fill.
import { strict as assert } from 'node:assert';
import { readdirSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { FsError } from '../../src/common/errors.js';
import { parseProxyConfigText } from '../../src/proxy/config.js';
import { ProxyHandler } from '../../src/proxy/handler.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { liveSettings } from '../../src/proxy/server.js';
import { FileStore } from '../../src/proxy/store/file.js';
import { MemoryStore } from '../../src/proxy/store/memory.js';
import type {
  EntryMeta,
  ProxyStore,
  PutOptions,
  StoreHit,
  StoreStats,
  StoreWriter,
} from '../../src/proxy/store/types.js';
import { TieredCache } from '../../src/proxy/tiered.js';
import { Upstream } from '../../src/proxy/upstream.js';
import { waitFor } from '../helpers/wait.js';
import { get, pattern, scratch, startOrigin, startProxy } from './helpers.js';

const MiB = 1024 * 1024;

function findFiles(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findFiles(p, suffix));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

test('an L2 that cannot start leaves the proxy serving from L1 and the origin', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'not-a-dir'), 'x');
  const origin = await startOrigin(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600' });
    res.end('fine');
  });
  const proxy = await startProxy(t, dir, {
    upstream_address: origin.address,
    enable_l2_cache: true,
    l2_backend: 'file',
    l2_cache_dir: join(dir, 'not-a-dir', 'l2'),
  });
  await proxy.proc.waitForOutput('L2 cache unavailable');
  assert.equal((await get(proxy.url('/a'))).body.toString(), 'fine');
  assert.equal((await get(proxy.url('/a'))).headers['x-strata-cache'], 'HIT');
  const ready = await fetch(`http://127.0.0.1:${proxy.healthPort}/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'healthy', l2: 'failed' });
});

test('the L2 directory vanishing mid-service costs cache hits, not responses', async (t) => {
  const dir = scratch(t);
  const l2 = join(dir, 'l2');
  const origin = await startOrigin(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', etag: '"x"' });
    res.end(`content of ${req.url}`);
  });
  const proxy = await startProxy(t, dir, {
    upstream_address: origin.address,
    l1_cache_size_bytes: 0, // every hit must come from L2
    enable_l2_cache: true,
    l2_backend: 'file',
    l2_cache_dir: l2,
  });
  await get(proxy.url('/one'));
  await waitFor(
    'stored on disk',
    async () => (await get(proxy.url('/one'))).headers['x-strata-cache'] === 'HIT',
  );
  rmSync(l2, { recursive: true, force: true });
  writeFileSync(l2, 'the disk is gone');
  for (const p of ['/one', '/two', '/one', '/three', '/two']) {
    const r = await get(proxy.url(p));
    assert.equal(r.status, 200, `${p} answered`);
    assert.equal(r.body.toString(), `content of ${p}`);
  }
  assert.ok((await proxy.metric('proxy_cache_errors_total')) >= 0);
  const text = await proxy.metrics();
  assert.match(text, /proxy_cache_errors_total\{[^}]*store="file"[^}]*\} [1-9]/, 'failures are counted');
});

test('a damaged entry is never served: damage at the start or deep inside is repaired from the origin', async (t) => {
  const dir = scratch(t);
  const l2 = join(dir, 'l2');
  const big = pattern(9, 3 * MiB);
  const origin = await startOrigin(t, (req, res) => {
    const body = req.url === '/big' ? big : Buffer.from(`small ${req.url}`);
    const range = req.headers.range;
    const m = range === undefined ? null : /^bytes=(\d+)-(\d+)$/.exec(range);
    if (m !== null && req.headers['if-range'] === '"v1"') {
      const a = Number(m[1]);
      const b = Number(m[2]);
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}`, etag: '"v1"' });
      res.end(body.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=600', etag: '"v1"', 'content-length': body.length });
    res.end(body);
  });
  const proxy = await startProxy(t, dir, {
    upstream_address: origin.address,
    l1_cache_size_bytes: 0,
    enable_l2_cache: true,
    l2_backend: 'file',
    l2_cache_dir: l2,
  });
  await get(proxy.url('/small'));
  await get(proxy.url('/big'));
  await waitFor('both on disk', () => findFiles(l2, '.body').length === 2);
  for (const f of findFiles(l2, '.body')) {
    const fd = openSync(f, 'r+');
    const at = statSync(f).size > MiB ? 2 * MiB + 5 : 2;
    writeSync(fd, Buffer.from('XXXXXXXX'), 0, 8, at);
    closeSync(fd);
  }
  const small = await get(proxy.url('/small'));
  assert.equal(small.status, 200);
  assert.equal(small.body.toString(), 'small /small', 'damage at the start: answered from the origin');
  const bigR = await get(proxy.url('/big'));
  assert.equal(bigR.status, 200);
  assert.ok(bigR.body.equals(big), 'damage deep inside: the rest came from the origin, byte for byte');
  const repair = origin.seen.find((s) => s.url === '/big' && s.headers.range !== undefined);
  assert.equal(repair?.headers['if-range'], '"v1"', 'the repair is guarded by the stored validator');
  const again = await get(proxy.url('/big'));
  assert.ok(again.body.equals(big));
});

/** A store that accepts a few writes and then fails like a full disk. */
class FullDisk implements ProxyStore {
  readonly kind = 'faulty';
  writes = 0;
  constructor(
    private readonly inner: ProxyStore,
    private readonly failAfterWrites: number,
  ) {}
  ready(): Promise<void> {
    return this.inner.ready();
  }
  get(key: string): Promise<StoreHit | undefined> {
    return this.inner.get(key);
  }
  async put(meta: EntryMeta, opts?: PutOptions): Promise<StoreWriter | undefined> {
    const w = await this.inner.put(meta, opts);
    if (w === undefined) return undefined;
    const count = (): number => ++this.writes;
    const limit = this.failAfterWrites;
    return {
      get bytesWritten() {
        return w.bytesWritten;
      },
      async write(chunk: Buffer) {
        if (count() > limit) throw new FsError('ENOSPC', '/cache: no space left on device');
        await w.write(chunk);
      },
      readAt: (o, l) => w.readAt(o, l),
      commit: () => w.commit(),
      abort: () => w.abort(),
      dispose: () => w.dispose?.(),
    };
  }
  updateMeta(meta: EntryMeta): Promise<boolean> {
    return this.inner.updateMeta(meta);
  }
  delete(key: string): Promise<boolean> {
    return this.inner.delete(key);
  }
  deleteFamily(p: string): Promise<number> {
    return this.inner.deleteFamily(p);
  }
  stats(): StoreStats {
    return this.inner.stats();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

test('a disk that fills up during a fill: the clients still get the whole body', async (t) => {
  const dir = scratch(t);
  const body = pattern(3, 4 * MiB);
  const origin = await startOrigin(t, async (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': body.length });
    for (let off = 0; off < body.length; off += 256 * 1024) {
      res.write(body.subarray(off, off + 256 * 1024));
      await new Promise((r) => setTimeout(r, 2));
    }
    res.end();
  });
  const config = parseProxyConfigText(
    `upstream_address: "${origin.address}"\nl1_cache_size_bytes: 0\n`,
    'test',
  ).config;
  const faulty = new FullDisk(
    new FileStore({ dir: join(dir, 'l2'), capacityBytes: 1e9, log: silentLogger() }),
    3,
  );
  const l1 = new MemoryStore(0, 0);
  const metrics = new ProxyMetrics({ l1: () => l1.stats(), rawDisk: () => undefined });
  const cache = new TieredCache(l1, faulty, silentLogger(), {
    onError: (store, op) => metrics.cacheErrors.inc({ store, op }),
  });
  await faulty.ready();
  await waitFor('L2 usable', () => cache.l2State === 'ok');
  const upstream = new Upstream(origin.address, { timeoutMs: 10_000, maxConnections: 8 });
  const handler = new ProxyHandler({
    cache,
    upstream,
    metrics,
    log: silentLogger(),
    settings: () => liveSettings(config),
  });
  const server = createServer((req, res) => handler.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
    await upstream.close();
    await cache.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/full`;
  const [a, b] = await Promise.all([get(url), get(url)]);
  for (const r of [a, b]) {
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(body), 'whole body despite the store failing mid-fill');
  }
  assert.ok(faulty.writes > 3, 'the store did fail');
  const text = await metrics.registry.metrics();
  assert.match(text, /proxy_cache_errors_total\{[^}]*store="faulty"[^}]*op="write"[^}]*\} 1/);
  const c = await get(url);
  assert.ok(c.body.equals(body), 'not stored, so fetched again, still whole');
  assert.equal(c.headers['x-strata-cache'], 'MISS');
});
