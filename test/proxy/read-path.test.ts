// Proves the disk-hit read path that reuses pooled buffers stays correct: the pool's contract,
// byte-exact bodies for concurrent (fast and stalled) clients served by the real pump from a
// file-store hit, an L2 hit copied into L1 staying intact while the pool's buffers are reused, and
// damage to a body that was already verified still being caught.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { CorruptEntryError } from '../../src/proxy/errors.js';
import { pump } from '../../src/proxy/http/respond.js';
import { BufferPool, readBuffers } from '../../src/proxy/store/buffer-pool.js';
import { FileStore } from '../../src/proxy/store/file.js';
import { MemoryStore } from '../../src/proxy/store/memory.js';
import type { EntryMeta, StoreHit } from '../../src/proxy/store/types.js';
import { TieredCache } from '../../src/proxy/tiered.js';
import { waitFor } from '../helpers/wait.js';
import { tempDir } from '../helpers/tmp.js';
import { pattern } from './helpers.js';

const MiB = 1024 * 1024;

function meta(key: string): EntryMeta {
  return {
    key,
    status: 200,
    headers: [['etag', '"e1"']],
    policy: { v: 1 } as unknown as EntryMeta['policy'],
    storedAtMs: 1_700_000_000_000,
  };
}

async function storeBody(s: FileStore, key: string, body: Buffer): Promise<void> {
  const w = await s.put(meta(key), { expectedBytes: body.length });
  assert.ok(w !== undefined);
  for (let off = 0; off < body.length; off += 100_000) await w.write(body.subarray(off, off + 100_000));
  await w.commit();
  w.dispose?.();
}

function bodyFiles(dir: string): string[] {
  const out: string[] = [];
  for (const sub of readdirSync(join(dir, 'objects')))
    for (const name of readdirSync(join(dir, 'objects', sub)))
      if (name.endsWith('.body')) out.push(join(dir, 'objects', sub, name));
  return out;
}

test('buffer pool: recycled buffers are reused, foreign or repeated returns are ignored, idle is bounded', () => {
  const pool = new BufferPool(4096, 2);
  const a = pool.take();
  assert.equal(a.length, 4096);
  assert.ok(pool.owns(a.subarray(10, 20)), 'any view of a leased buffer is recognised');
  pool.recycle(a.subarray(100, 200));
  assert.equal(pool.idleCount, 1);
  assert.equal(pool.owns(a), false, 'returned: no longer leased');
  pool.recycle(a); // a second return of the same buffer
  assert.equal(pool.idleCount, 1, 'a repeated return does not put the buffer in twice');
  pool.recycle(Buffer.alloc(4096)); // never leased
  assert.equal(pool.idleCount, 1);
  const b = pool.take();
  assert.equal(b.buffer, a.buffer, 'the idle buffer is handed out again');
  const c = [pool.take(), pool.take(), pool.take()];
  for (const x of [b, ...c]) pool.recycle(x);
  assert.equal(pool.idleCount, 2, 'idle buffers beyond the bound go to the garbage collector');
});

test('a file-store hit streamed by the pump is byte-exact for concurrent, ranged and stalled clients', async (t) => {
  const dir = join(tempDir(t), 'l2');
  const store = new FileStore({ dir, capacityBytes: 256 * MiB, log: silentLogger() });
  t.after(() => store.close());
  await store.ready();
  // Random, not a repeating pattern: a buffer reused too early would be refilled with other
  // offsets of the body, which a periodic pattern would not tell apart.
  const body = randomBytes(9 * MiB + 12_345);
  await storeBody(store, '/big', body);
  const server = createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = m === null ? 0 : Number(m[1]);
    const end = m === null ? body.length : Number(m[2]) + 1;
    void (async () => {
      const hit = (await store.get('/big')) as StoreHit;
      try {
        res.writeHead(200, { 'content-length': end - start });
        if (await pump(res, hit.read(start, end))) res.end();
      } finally {
        hit.release();
      }
    })().catch((err: unknown) => res.destroy(err as Error));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const fetchBody = (range: [number, number] | undefined, stallMs: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const headers = range === undefined ? {} : { range: `bytes=${range[0]}-${range[1] - 1}` };
      httpRequest({ port, host: '127.0.0.1', path: '/big', headers, agent: false }, (res) => {
        const parts: Buffer[] = [];
        if (stallMs > 0) {
          // A client that stops reading: the server's writes back up while others go on.
          res.pause();
          setTimeout(() => res.resume(), stallMs);
        }
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
  const ranges: ([number, number] | undefined)[] = [
    undefined,
    undefined,
    [1000, 3 * MiB + 17],
    [5 * MiB - 1, body.length],
    undefined,
  ];
  const got = await Promise.all(ranges.map((r, i) => fetchBody(r, i === 1 ? 300 : 0)));
  got.forEach((g, i) => {
    const r = ranges[i] ?? [0, body.length];
    assert.equal(g.length, r[1] - r[0], `client ${i}: length`);
    assert.ok(g.equals(body.subarray(r[0], r[1])), `client ${i}: every byte right`);
  });
  assert.ok(readBuffers.idleCount > 0, 'the pump handed the read buffers back');
});

test('damage to a body already verified and served is still caught on a later hit', async (t) => {
  const dir = join(tempDir(t), 'l2');
  const store = new FileStore({ dir, capacityBytes: 256 * MiB, log: silentLogger() });
  t.after(() => store.close());
  await store.ready();
  const body = pattern(5, 4 * MiB);
  await storeBody(store, '/v', body);
  const first = (await store.get('/v')) as StoreHit;
  const parts: Buffer[] = [];
  for await (const c of first.read(0, first.bodyBytes)) {
    parts.push(Buffer.from(c));
    readBuffers.recycle(c);
  }
  first.release();
  assert.ok(Buffer.concat(parts).equals(body), 'intact before the damage');
  // Rot in the third read step (past the first MiB and the pre-verified head).
  const [file] = bodyFiles(dir);
  assert.ok(file !== undefined && statSync(file).size === body.length);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from('rot'), 0, 3, 2 * MiB + 70_000);
  closeSync(fd);
  const second = (await store.get('/v')) as StoreHit;
  let delivered = 0;
  await assert.rejects(
    (async () => {
      for await (const c of second.read(0, second.bodyBytes)) {
        delivered += c.length;
        readBuffers.recycle(c);
      }
    })(),
    CorruptEntryError,
  );
  second.release();
  assert.ok(delivered <= 2 * MiB, `no byte of the damaged step was delivered (${delivered})`);
  assert.equal(await store.get('/v'), undefined, 'the damaged entry is dropped');
});

test('an L2 hit copied into L1 keeps its bytes while the read buffers are reused by other hits', async (t) => {
  const dir = join(tempDir(t), 'l2');
  const l2 = new FileStore({ dir, capacityBytes: 256 * MiB, log: silentLogger() });
  const l1 = new MemoryStore(64 * MiB, 16 * MiB);
  const tiers = new TieredCache(l1, l2, silentLogger(), { onError: () => undefined });
  t.after(() => tiers.close());
  await l2.ready();
  const small = randomBytes(3 * MiB + 5);
  const other = randomBytes(6 * MiB);
  await storeBody(l2, '/small', small);
  await storeBody(l2, '/other', other);
  await waitFor('L2 in use', () => tiers.l2State === 'ok');
  const found = await tiers.get('/small');
  assert.equal(found?.tier, 'l2');
  found?.hit.release();
  await waitFor('copied into L1', () => l1.peek('/small') !== undefined);
  // Reading another body recycles pool buffers: an L1 copy that shared them would change.
  const hit = (await l2.get('/other')) as StoreHit;
  for await (const c of hit.read(0, hit.bodyBytes)) {
    c.fill(0xee);
    readBuffers.recycle(c);
  }
  hit.release();
  const e = l1.peek('/small');
  assert.ok(e !== undefined && Buffer.concat([...e.chunks]).equals(small), 'the L1 copy is intact');
});
