// Proves the http:// engine passes the UFS conformance suite against a real origin on loopback,
// and copes with origins that ignore Range or refuse HEAD, demand a header, honour If-Match, or
// drop the connection mid-body (an error to the reader, never a short read).
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import { openUfs } from '../../src/ufs/index.js';
import { freePort } from '../helpers/ports.js';
import { readAll, ufsConformance } from './conformance.js';
import { HttpOrigin } from './http-origin.js';

ufsConformance('http:// (local origin)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'strata-ufs-http-'));
  const origin = await HttpOrigin.start(root);
  const ufs = openUfs(`${origin.url}/pre`);
  return {
    ufs,
    bigWriteBytes: 0,
    async put(path, data) {
      const file = join(root, 'pre', path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, data);
    },
    async get(path) {
      return readFile(join(root, 'pre', path)).catch(() => undefined);
    },
    async close() {
      await ufs.close();
      await origin.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
});

async function withOrigin(t: { after(fn: () => Promise<void> | void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'strata-ufs-http-'));
  const origin = await HttpOrigin.start(root);
  t.after(async () => {
    await origin.close();
    rmSync(root, { recursive: true, force: true });
  });
  const data = randomBytes(1024 * 1024);
  await writeFile(join(root, 'f.bin'), data);
  return { root, origin, data };
}

test('http://: an origin that ignores Range still yields exactly the range', async (t) => {
  const { origin, data } = await withOrigin(t);
  origin.behaviour = { ignoreRange: true, noHead: true };
  const ufs = openUfs(origin.url);
  t.after(() => ufs.close());
  const st = await ufs.stat('/f.bin');
  assert.equal(st.size, data.length, 'size from a 0-0 range GET when HEAD is refused');
  const r = await ufs.openRead('/f.bin', { offset: 100_000, length: 12_345 });
  assert.equal(r.length, 12_345);
  assert.ok((await readAll(r.body)).equals(data.subarray(100_000, 112_345)));
});

test('http://: request headers from mount options reach the origin; without them EACCES', async (t) => {
  const { origin, data } = await withOrigin(t);
  origin.behaviour = { requireAuthorization: 'Bearer t0ken' };
  const denied = openUfs(origin.url);
  t.after(() => denied.close());
  await assert.rejects(denied.check(), (e: unknown) => e instanceof FsError && e.code === 'EACCES');
  await assert.rejects(denied.stat('/f.bin'), (e: unknown) => e instanceof FsError && e.code === 'EACCES');
  const ok = openUfs(origin.url, { 'http.header.Authorization': 'Bearer t0ken' });
  t.after(() => ok.close());
  await ok.check();
  const r = await ok.openRead('/f.bin', { offset: 5, length: 5 });
  assert.ok((await readAll(r.body)).equals(data.subarray(5, 10)));
});

test('http://: If-Match is sent with the validator; a changed object is ESTALE', async (t) => {
  const { origin, root } = await withOrigin(t);
  const ufs = openUfs(origin.url);
  t.after(() => ufs.close());
  const st = await ufs.stat('/f.bin');
  await writeFile(join(root, 'f.bin'), randomBytes(1024 * 1024));
  await assert.rejects(
    ufs.openRead('/f.bin', { offset: 0, length: 10, validator: { etag: st.etag! } }),
    (e: unknown) => e instanceof FsError && e.code === 'ESTALE',
  );
  const last = origin.requests.at(-1);
  assert.equal(last?.method, 'GET');
});

test('http://: a connection cut mid-body fails the read with EIO', async (t) => {
  const { origin } = await withOrigin(t);
  origin.behaviour = { cutAfterBytes: 300_000 };
  const ufs = openUfs(origin.url);
  t.after(() => ufs.close());
  const r = await ufs.openRead('/f.bin', { offset: 0, length: 1024 * 1024 });
  await assert.rejects(readAll(r.body), (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, 'EIO');
    return true;
  });
});

test('http://: an unreachable origin is ECONNREFUSED naming it', async (t) => {
  const port = await freePort();
  const ufs = openUfs(`http://127.0.0.1:${port}/x`, { 'ufs.max_attempts': '1' });
  t.after(() => ufs.close());
  await assert.rejects(ufs.stat('/f'), (e: unknown) => {
    assert.ok(e instanceof FsError, String(e));
    assert.equal(e.code, 'ECONNREFUSED');
    assert.ok(e.message.includes(`127.0.0.1:${port}`), e.message);
    return true;
  });
});
