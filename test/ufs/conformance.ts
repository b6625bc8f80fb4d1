/**
 * One conformance suite for every UFS engine: the same behaviour checked against s3rver, a temp
 * directory and an HTTP origin. Data is put into (and read back from) the backing store directly,
 * not through the engine, so a read or write bug cannot hide behind its own mirror image.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, suite, test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import type { UfsStatus, UnderFileSystem } from '../../src/ufs/index.js';

export interface UfsFixture {
  ufs: UnderFileSystem;
  /** Puts bytes at a UFS path in the backing store, bypassing the engine. */
  put(path: string, data: Buffer): Promise<void>;
  /** Reads bytes at a UFS path from the backing store; undefined when absent. */
  get(path: string): Promise<Buffer | undefined>;
  /** A size that makes the engine use its multi-request write path (S3 multipart), if any. */
  bigWriteBytes: number;
  close(): Promise<void>;
}

export async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function* chunks(data: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function* failingAfter(data: Buffer, n: number): AsyncGenerator<Buffer> {
  yield data.subarray(0, n);
  throw new Error('source failed on purpose');
}

async function rejectsWith(p: Promise<unknown>, code: string | string[]): Promise<FsError> {
  const codes = Array.isArray(code) ? code : [code];
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FsError, `expected an FsError, got ${String(err)}`);
    assert.ok(codes.includes(err.code), `expected ${codes.join('|')}, got ${err.code}: ${err.message}`);
    return err;
  }
  assert.fail(`expected ${codes.join('|')}, but the call succeeded`);
}

async function listAll(ufs: UnderFileSystem, path: string, limit?: number): Promise<UfsStatus[]> {
  const out: UfsStatus[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await ufs.list(path, {
      ...(cursor === undefined ? {} : { cursor }),
      ...(limit === undefined ? {} : { limit }),
    });
    if (limit !== undefined) assert.ok(page.entries.length <= limit, 'a page never exceeds the limit');
    out.push(...page.entries);
    cursor = page.cursor;
    assert.ok(++pages < 10_000, 'listing terminates');
  } while (cursor !== undefined);
  return out;
}

/** Registers the suite for one engine; `setup` builds a fresh fixture for the whole suite. */
export function ufsConformance(name: string, setup: () => Promise<UfsFixture>): void {
  suite(`UFS conformance: ${name}`, () => {
    let fx: UfsFixture;
    let n = 0;
    /** A fresh directory per test so tests never see each other's files. */
    const dir = (): string => `/t${++n}`;

    before(async () => {
      fx = await setup();
    });
    after(async () => {
      await fx.close();
    });

    test('check succeeds and the root is a directory', async () => {
      await fx.ufs.check();
      const st = await fx.ufs.stat('/');
      assert.equal(st.type, 'dir');
      assert.equal(st.path, '/');
    });

    test('stat of a file: size, type, name, mtime and a version tag', async () => {
      const d = dir();
      const data = randomBytes(1234);
      await fx.put(`${d}/a.bin`, data);
      const st = await fx.ufs.stat(`${d}/a.bin`);
      assert.equal(st.type, 'file');
      assert.equal(st.size, 1234);
      assert.equal(st.name, 'a.bin');
      assert.equal(st.path, `${d}/a.bin`);
      assert.ok(
        st.mtimeMs > Date.now() - 3_600_000 && st.mtimeMs < Date.now() + 60_000,
        `mtime ${st.mtimeMs}`,
      );
      assert.ok(typeof st.etag === 'string' && st.etag.length > 0, 'etag present');
    });

    test('stat of a missing path is ENOENT; bad paths are EINVAL', async () => {
      const err = await rejectsWith(fx.ufs.stat('/no/such/file'), 'ENOENT');
      assert.match(err.message, /no such file/);
      await rejectsWith(fx.ufs.stat('relative'), 'EINVAL');
      await rejectsWith(fx.ufs.stat('/a/../b'), 'EINVAL');
    });

    test('whole and ranged reads return exactly the bytes asked, around every edge', async () => {
      const d = dir();
      const data = randomBytes(10_000);
      await fx.put(`${d}/r.bin`, data);
      const whole = await fx.ufs.openRead(`${d}/r.bin`);
      assert.equal(whole.length, 10_000);
      assert.equal(whole.objectSize, 10_000);
      assert.ok((await readAll(whole.body)).equals(data));
      const cases: [number, number | undefined][] = [
        [0, 1],
        [0, 4096],
        [4095, 2],
        [4096, 4096],
        [9_999, 1],
        [9_000, 5_000], // past the end: cut at the end
        [1, undefined],
        [5_000, undefined],
      ];
      for (const [offset, length] of cases) {
        const r = await fx.ufs.openRead(`${d}/r.bin`, {
          offset,
          ...(length === undefined ? {} : { length }),
        });
        const want = data.subarray(offset, length === undefined ? undefined : offset + length);
        assert.equal(r.length, want.length, `length of [${offset}, +${length})`);
        assert.equal(r.objectSize, 10_000);
        assert.ok((await readAll(r.body)).equals(want), `bytes of [${offset}, +${length})`);
      }
      const atEnd = await fx.ufs.openRead(`${d}/r.bin`, { offset: 10_000, length: 10 });
      assert.equal(atEnd.length, 0);
      assert.equal((await readAll(atEnd.body)).length, 0);
    });

    test('an empty file reads as zero bytes', async () => {
      const d = dir();
      await fx.put(`${d}/empty`, Buffer.alloc(0));
      assert.equal((await fx.ufs.stat(`${d}/empty`)).size, 0);
      const r = await fx.ufs.openRead(`${d}/empty`);
      assert.equal(r.length, 0);
      assert.equal((await readAll(r.body)).length, 0);
      const r2 = await fx.ufs.openRead(`${d}/empty`, { offset: 0, length: 100 });
      assert.equal(r2.length, 0);
    });

    test('reading a missing file is ENOENT', async () => {
      await rejectsWith(fx.ufs.openRead('/missing.bin'), 'ENOENT');
      await rejectsWith(fx.ufs.openRead('/missing.bin', { offset: 10, length: 10 }), 'ENOENT');
    });

    test('a validator that no longer matches fails the read with ESTALE; a matching one passes', async () => {
      const d = dir();
      const data = randomBytes(5000);
      await fx.put(`${d}/v.bin`, data);
      const st = await fx.ufs.stat(`${d}/v.bin`);
      const ok = await fx.ufs.openRead(`${d}/v.bin`, {
        offset: 100,
        length: 100,
        validator: {
          size: st.size,
          mtimeMs: st.mtimeMs,
          ...(st.etag === undefined ? {} : { etag: st.etag }),
        },
      });
      assert.ok((await readAll(ok.body)).equals(data.subarray(100, 200)));
      await rejectsWith(
        fx.ufs.openRead(`${d}/v.bin`, { offset: 0, length: 10, validator: { size: 4999 } }),
        'ESTALE',
      );
      await rejectsWith(
        fx.ufs.openRead(`${d}/v.bin`, { offset: 0, length: 10, validator: { etag: '"0123456789abcdef"' } }),
        'ESTALE',
      );
      // Replaced with other content of another size: the old validator is stale.
      await new Promise((r) => setTimeout(r, 1100)); // a new second, for stores with 1 s mtimes
      await fx.put(`${d}/v.bin`, randomBytes(6000));
      await rejectsWith(
        fx.ufs.openRead(`${d}/v.bin`, {
          offset: 0,
          length: 10,
          validator: {
            size: st.size,
            mtimeMs: st.mtimeMs,
            ...(st.etag === undefined ? {} : { etag: st.etag }),
          },
        }),
        'ESTALE',
      );
      const st2 = await fx.ufs.stat(`${d}/v.bin`);
      assert.notEqual(st2.etag, st.etag, 'a new version has a new tag');
    });

    test('an aborted read is refused', async () => {
      const d = dir();
      await fx.put(`${d}/x.bin`, randomBytes(100));
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(fx.ufs.openRead(`${d}/x.bin`, { signal: ac.signal }));
    });

    test('names with spaces and non-ASCII characters round-trip', async () => {
      const d = dir();
      const data = randomBytes(300);
      await fx.put(`${d}/dir with space/ünï çødé.txt`, data);
      const st = await fx.ufs.stat(`${d}/dir with space/ünï çødé.txt`);
      assert.equal(st.size, 300);
      assert.equal(st.name, 'ünï çødé.txt');
      const r = await fx.ufs.openRead(`${d}/dir with space/ünï çødé.txt`, { offset: 7, length: 50 });
      assert.ok((await readAll(r.body)).equals(data.subarray(7, 57)));
    });

    test('listing: files with sizes, sub-directories as dirs, pages that cover everything once', async (t) => {
      if (!fx.ufs.capabilities.canList) {
        const err = await rejectsWith(fx.ufs.list('/'), 'ENOTSUP');
        assert.match(err.message, /cannot list/);
        t.diagnostic('engine cannot list: ENOTSUP checked');
        return;
      }
      const d = dir();
      const names = ['a.txt', 'b.bin', 'c', 'd.dat', 'e'];
      for (const [i, name] of names.entries()) await fx.put(`${d}/${name}`, randomBytes(i * 100));
      await fx.put(`${d}/sub/x.bin`, randomBytes(10));
      await fx.put(`${d}/sub/deeper/y.bin`, randomBytes(10));
      await fx.put(`${d}/sub2/z`, randomBytes(1));
      const all = await listAll(fx.ufs, d);
      const byName = new Map(all.map((e) => [e.name, e]));
      assert.equal(all.length, 7, `entries: ${all.map((e) => e.name).join(',')}`);
      assert.equal(byName.size, 7, 'no duplicates');
      for (const [i, name] of names.entries()) {
        const e = byName.get(name);
        assert.equal(e?.type, 'file', name);
        assert.equal(e?.size, i * 100, name);
        assert.equal(e?.path, `${d}/${name}`);
      }
      assert.equal(byName.get('sub')?.type, 'dir');
      assert.equal(byName.get('sub2')?.type, 'dir');
      assert.equal(byName.get('sub')?.path, `${d}/sub`);
      const paged = await listAll(fx.ufs, d, 2);
      assert.deepEqual(paged.map((e) => e.name).sort(), all.map((e) => e.name).sort());
      const sub = await listAll(fx.ufs, `${d}/sub`);
      assert.deepEqual(sub.map((e) => `${e.name}:${e.type}`).sort(), ['deeper:dir', 'x.bin:file']);
      assert.equal((await fx.ufs.stat(`${d}/sub`)).type, 'dir');
      assert.equal((await fx.ufs.stat(`${d}/sub/deeper`)).type, 'dir');
    });

    test('listing a missing directory is ENOENT, listing a file is ENOTDIR', async (t) => {
      if (!fx.ufs.capabilities.canList) {
        await rejectsWith(fx.ufs.list('/nothing'), 'ENOTSUP');
        t.diagnostic('engine cannot list');
        return;
      }
      const d = dir();
      await fx.put(`${d}/f`, randomBytes(5));
      await rejectsWith(fx.ufs.list(`${d}/nothing`), 'ENOENT');
      await rejectsWith(fx.ufs.list(`${d}/f`), 'ENOTDIR');
    });

    test('read-only engines refuse every change with EROFS', async (t) => {
      if (!fx.ufs.capabilities.readOnly) {
        t.diagnostic('engine is writable: covered by the write tests');
        return;
      }
      await rejectsWith(fx.ufs.write('/w', chunks(Buffer.from('x'))), 'EROFS');
      await rejectsWith(fx.ufs.delete('/w'), 'EROFS');
      await rejectsWith(fx.ufs.rename('/w', '/v'), 'EROFS');
      await rejectsWith(fx.ufs.mkdir('/w'), 'EROFS');
    });

    const writable = (t: { diagnostic(s: string): void }): boolean => {
      if (fx.ufs.capabilities.readOnly) t.diagnostic('read-only engine: EROFS checked elsewhere');
      return !fx.ufs.capabilities.readOnly;
    };

    test('write streams a new file, replaces an old one, and reports its new status', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      const data = randomBytes(300_000);
      const st = await fx.ufs.write(`${d}/deep/new.bin`, chunks(data, 7_777));
      assert.equal(st.type, 'file');
      assert.equal(st.size, data.length);
      assert.ok((await fx.get(`${d}/deep/new.bin`))?.equals(data), 'backing store holds the bytes');
      const r = await fx.ufs.openRead(`${d}/deep/new.bin`, { offset: 1000, length: 5000 });
      assert.ok((await readAll(r.body)).equals(data.subarray(1000, 6000)));
      const other = randomBytes(10);
      const st2 = await fx.ufs.write(`${d}/deep/new.bin`, chunks(other));
      assert.equal(st2.size, 10);
      assert.notEqual(st2.etag, st.etag);
      assert.ok((await fx.get(`${d}/deep/new.bin`))?.equals(other));
      const empty = await fx.ufs.write(`${d}/zero`, chunks(Buffer.alloc(0)));
      assert.equal(empty.size, 0);
      assert.equal((await fx.get(`${d}/zero`))?.length, 0);
    });

    test('a large write (multi-part where the engine has parts) is byte-exact', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      const data = randomBytes(fx.bigWriteBytes);
      const st = await fx.ufs.write(`${d}/big.bin`, chunks(data, 1024 * 1024 + 13), {
        sizeHint: data.length,
      });
      assert.equal(st.size, data.length);
      assert.ok((await fx.get(`${d}/big.bin`))?.equals(data));
    });

    test('a write whose source fails leaves nothing behind (and the old version intact)', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      const data = randomBytes(fx.bigWriteBytes);
      await assert.rejects(
        fx.ufs.write(`${d}/fail.bin`, failingAfter(data, fx.bigWriteBytes - 1)),
        /on purpose/,
      );
      await rejectsWith(fx.ufs.stat(`${d}/fail.bin`), 'ENOENT');
      const old = randomBytes(100);
      await fx.put(`${d}/keep.bin`, old);
      await assert.rejects(fx.ufs.write(`${d}/keep.bin`, failingAfter(data, 1000)), /on purpose/);
      assert.ok((await fx.get(`${d}/keep.bin`))?.equals(old));
      if (fx.ufs.capabilities.canList) {
        const left = await listAll(fx.ufs, d);
        assert.deepEqual(
          left.map((e) => e.name),
          ['keep.bin'],
          'no temporary or partial object is visible',
        );
      }
    });

    test('delete: files, empty and non-empty directories, missing paths', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      await fx.put(`${d}/f`, randomBytes(10));
      await fx.put(`${d}/tree/a`, randomBytes(10));
      await fx.put(`${d}/tree/sub/b`, randomBytes(10));
      await fx.ufs.delete(`${d}/f`);
      assert.equal(await fx.get(`${d}/f`), undefined);
      await rejectsWith(fx.ufs.delete(`${d}/f`), 'ENOENT');
      await rejectsWith(fx.ufs.delete(`${d}/tree`), 'ENOTEMPTY');
      assert.ok((await fx.get(`${d}/tree/a`)) !== undefined, 'nothing deleted by a refused delete');
      await fx.ufs.delete(`${d}/tree`, { recursive: true });
      await rejectsWith(fx.ufs.stat(`${d}/tree`), 'ENOENT');
      assert.equal(await fx.get(`${d}/tree/sub/b`), undefined);
      await fx.ufs.mkdir(`${d}/emptydir`);
      await fx.ufs.delete(`${d}/emptydir`);
      await rejectsWith(fx.ufs.stat(`${d}/emptydir`), 'ENOENT');
      await rejectsWith(fx.ufs.delete('/'), 'EPERM');
    });

    test('rename: a file, a directory tree, onto an existing file, missing sources', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      const a = randomBytes(1000);
      await fx.put(`${d}/a`, a);
      await fx.ufs.rename(`${d}/a`, `${d}/moved/b`);
      assert.equal(await fx.get(`${d}/a`), undefined);
      assert.ok((await fx.get(`${d}/moved/b`))?.equals(a));
      const c = randomBytes(20);
      await fx.put(`${d}/c`, c);
      await fx.ufs.rename(`${d}/c`, `${d}/moved/b`); // replaces the target file
      assert.ok((await fx.get(`${d}/moved/b`))?.equals(c));
      const x = randomBytes(30);
      const y = randomBytes(40);
      await fx.put(`${d}/tree/x`, x);
      await fx.put(`${d}/tree/sub/y`, y);
      await fx.ufs.rename(`${d}/tree`, `${d}/tree2`);
      await rejectsWith(fx.ufs.stat(`${d}/tree`), 'ENOENT');
      assert.ok((await fx.get(`${d}/tree2/x`))?.equals(x));
      assert.ok((await fx.get(`${d}/tree2/sub/y`))?.equals(y));
      await rejectsWith(fx.ufs.rename(`${d}/nope`, `${d}/nope2`), 'ENOENT');
      await rejectsWith(fx.ufs.rename(`${d}/tree2`, `${d}/tree2/inside`), 'EINVAL');
    });

    test('mkdir: creates (with parents), is idempotent, refuses a path held by a file', async (t) => {
      if (!writable(t)) return;
      const d = dir();
      await fx.ufs.mkdir(`${d}/m/n`);
      assert.equal((await fx.ufs.stat(`${d}/m/n`)).type, 'dir');
      assert.equal((await fx.ufs.stat(`${d}/m`)).type, 'dir');
      await fx.ufs.mkdir(`${d}/m/n`);
      const names = (await listAll(fx.ufs, `${d}/m`)).map((e) => `${e.name}:${e.type}`);
      assert.deepEqual(names, ['n:dir']);
      assert.deepEqual(await listAll(fx.ufs, `${d}/m/n`), [], 'a new directory is empty');
      await fx.put(`${d}/file`, randomBytes(3));
      await rejectsWith(fx.ufs.mkdir(`${d}/file`), ['EEXIST', 'ENOTDIR']);
    });
  });
}
