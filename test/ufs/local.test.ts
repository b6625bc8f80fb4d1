// Proves the file:// engine passes the UFS conformance suite over a temp directory, hides its
// in-progress uploads, and reports a missing or non-directory root clearly.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import { openUfs } from '../../src/ufs/index.js';
import { ufsConformance } from './conformance.js';

ufsConformance('file://', async () => {
  const root = mkdtempSync(join(tmpdir(), 'strata-ufs-local-'));
  const ufs = openUfs(`file://${root}`);
  return {
    ufs,
    bigWriteBytes: 12 * 1024 * 1024,
    async put(path, data) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), data);
    },
    async get(path) {
      return readFile(join(root, path)).catch(() => undefined);
    },
    async close() {
      await ufs.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
});

test('file://: a missing root fails check with ENOENT, a file root with ENOTDIR', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'strata-ufs-local-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const missing = openUfs(`file://${root}/nope`);
  await assert.rejects(missing.check(), (e: unknown) => e instanceof FsError && e.code === 'ENOENT');
  await writeFile(join(root, 'f'), 'x');
  const file = openUfs(`file://${root}/f`);
  await assert.rejects(file.check(), (e: unknown) => e instanceof FsError && e.code === 'ENOTDIR');
});

test('file://: leftovers of an interrupted upload are not listed', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'strata-ufs-local-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await writeFile(join(root, '.strata-upload-0000'), 'partial');
  await writeFile(join(root, 'real'), 'data');
  const ufs = openUfs(`file://${root}`);
  const page = await ufs.list('/');
  assert.deepEqual(
    page.entries.map((e) => e.name),
    ['real'],
  );
});
