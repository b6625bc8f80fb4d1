// Direct reads on a real mount (kernel engine): reads the reader thread answers from local block
// files. Files are read with O_DIRECT so every read reaches the mount, and each byte is compared
// with the source: random offsets and sizes across 4 MiB block boundaries and the end of the
// file, while other files are written, after its block files were unlinked (as eviction does),
// across opens and closes; a file with a writer is served by the event loop (its
// unpublished bytes), and a handle granted before a writer opened sees the writer's bytes.
// /metrics shows the direct reads (strata_fuse_direct_reads_total, in the read counts too). A
// block file damaged on disk gives EIO for its bad chunk, not its bytes (local-verify.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  constants,
  existsSync,
  readFileSync,
  readdirSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTools } from '../helpers/ci.js';
import { scrapeMetric } from '../helpers/metrics.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';
import { FUSE_TOOLS, TEST_CLUSTER, kernelEngineOnly, mountFuse } from './fuse-helper.js';

// Skipped (with this reason) only when the suite runs against the libfuse binding
// (STRATA_FUSE_BINDING=fuse-native): direct reads are a feature of our kernel engine, the
// default binding, which CI runs; fuse-native reads go through the event loop, as the other
// fuse suites test. Missing tools fail under CI=true through requireTools.
const skip = requireTools(...FUSE_TOOLS) || kernelEngineOnly('direct reads');

const MB = 1_000_000;
/** TEST_CLUSTER's block size ("4MB" is 4 MiB). */
const BLOCK_BYTES = 4 * 1024 * 1024;
const MAX_READ_BYTES = 256 * 1024;

function directOpen(path: string): Promise<FileHandle> {
  return open(path, constants.O_RDONLY | constants.O_DIRECT);
}

/** Reads [offset, offset + size) through `fh` and checks it against `source`. */
async function readAndCheck(fh: FileHandle, source: Buffer, offset: number, size: number): Promise<void> {
  const buf = Buffer.alloc(size);
  let got = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, got, size - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
    if (got === size) break;
  }
  const want = source.subarray(Math.min(offset, source.length), Math.min(offset + size, source.length));
  assert.equal(got, want.length, `bytes read at ${offset}+${size}`);
  assert.ok(buf.subarray(0, got).equals(want), `content at ${offset}+${size}`);
}

/** Offsets and sizes: around every block boundary, the end of the file, and random ones. */
function ranges(fileBytes: number, randomCount: number): [number, number][] {
  const out: [number, number][] = [
    [0, 4096],
    [fileBytes - 100, 4096],
    [fileBytes, 10],
  ];
  for (let b = BLOCK_BYTES; b < fileBytes; b += BLOCK_BYTES)
    out.push([b - 1, 2], [b - 4096, 8192], [b, 4096]);
  for (let i = 0; i < randomCount; i++) {
    out.push([Math.floor(Math.random() * fileBytes), 1 + Math.floor(Math.random() * MAX_READ_BYTES)]);
  }
  return out;
}

/** Files under a worker's data directory, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => join(dir, p))
    .filter((p) => existsSync(p) && statSync(p).isFile());
}

test('direct reads on a real mount', { skip, timeout: 180_000 }, async (t) => {
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster, { binding: 'kernel' });
  const p = (name: string): string => join(m.mnt, name);
  const direct = (): Promise<number> => scrapeMetric(m.webPort, 'strata_fuse_direct_reads_total');
  // Three blocks, the last one partial.
  const big = randomBytes(2 * BLOCK_BYTES + 1_234_567);
  await writeFile(p('big.bin'), big);

  /** Reads through `fh` until one is served directly (the grant follows a read by a few calls). */
  const granted = (fh: FileHandle, data: Buffer, at = 0): Promise<unknown> =>
    waitFor(
      'the handle is granted direct reads',
      async () => {
        const n = await direct();
        await readAndCheck(fh, data, at, 4096);
        return (await direct()) > n;
      },
      10_000,
      20,
    );

  await t.test('random reads are byte-identical, and served directly', async () => {
    const fh = await directOpen(p('big.bin'));
    try {
      await granted(fh, big);
      const before = await direct();
      const list = ranges(big.length, 300);
      // Each read is counted by the time it returns (the reader thread counts before it replies).
      const missed: string[] = [];
      let last = before;
      for (const [offset, size] of list) {
        await readAndCheck(fh, big, offset, size);
        const now = await direct();
        if (now === last) missed.push(`${offset}+${size}`);
        last = now;
      }
      const served = last - before;
      // A read at the end of the file is answered by the kernel (it knows the size).
      assert.ok(
        served >= list.length - 1 && missed.length <= 1,
        `${served} of ${list.length} reads served directly; not: ${missed.join(' ')} (size ${big.length})`,
      );
    } finally {
      await fh.close();
    }
    const reads = await scrapeMetric(m.webPort, 'strata_fuse_requests_total', 'op="read"');
    assert.ok(reads >= (await direct()), 'direct reads are in the read request count');
  });

  await t.test('while other files are written', async () => {
    const fh = await directOpen(p('big.bin'));
    const others = Array.from({ length: 4 }, () => randomBytes(3 * MB + 17));
    try {
      await Promise.all([
        (async () => {
          for (const [offset, size] of ranges(big.length, 200)) await readAndCheck(fh, big, offset, size);
        })(),
        ...others.map((data, i) => writeFile(p(`other-${i}.bin`), data)),
      ]);
    } finally {
      await fh.close();
    }
    for (const [i, data] of others.entries()) {
      const o = await directOpen(p(`other-${i}.bin`));
      try {
        for (const [offset, size] of ranges(data.length, 20)) await readAndCheck(o, data, offset, size);
      } finally {
        await o.close();
      }
    }
  });

  await t.test('opened and closed over and over, two files alternately', async () => {
    const small = randomBytes(5000);
    await writeFile(p('small.bin'), small);
    for (let i = 0; i < 30; i++) {
      const [name, data] = i % 2 === 0 ? ['big.bin', big] : ['small.bin', small];
      const fh = await directOpen(p(name));
      try {
        for (const [offset, size] of ranges(data.length, 5)) await readAndCheck(fh, data, offset, size);
      } finally {
        await fh.close();
      }
    }
  });

  await t.test(
    'a file with a writer is read through the loop, and a granted reader sees the writes',
    async () => {
      const data = randomBytes(BLOCK_BYTES + 5000);
      await writeFile(p('rw.bin'), data);
      const reader = await directOpen(p('rw.bin'));
      try {
        await readAndCheck(reader, data, 0, 4096);
        // The grant lands after the first read; wait until reads are served directly.
        await granted(reader, data, 100);
        const writer = await open(p('rw.bin'), 'r+');
        try {
          const patch = randomBytes(10_000);
          const at = BLOCK_BYTES - 5000; // across the block boundary
          await writer.write(patch, 0, patch.length, at);
          patch.copy(data, at);
          const before = await direct();
          // The granted handle was revoked before the writer's open returned: it reads the
          // unpublished bytes through the loop, as does a handle opened now.
          await readAndCheck(reader, data, at - 100, 20_000);
          const fresh = await directOpen(p('rw.bin'));
          try {
            for (const [offset, size] of ranges(data.length, 20))
              await readAndCheck(fresh, data, offset, size);
          } finally {
            await fresh.close();
          }
          assert.equal(await direct(), before, 'no direct read while the file has a writer');
        } finally {
          await writer.close();
        }
        // Committed: the old reader still reads the new bytes.
        for (const [offset, size] of ranges(data.length, 20)) await readAndCheck(reader, data, offset, size);
      } finally {
        await reader.close();
      }
    },
  );

  await t.test('reads keep working after the block files are removed (as eviction does)', async () => {
    const dataDir = join(cluster.workers[0]?.dir ?? '', 'data');
    const before = new Set(filesUnder(dataDir));
    const data = randomBytes(2 * BLOCK_BYTES + 999);
    await writeFile(p('evicted.bin'), data);
    const blockFiles = filesUnder(dataDir).filter((f) => !before.has(f));
    assert.equal(blockFiles.length, 3, `block files of the new file: ${blockFiles.join(', ')}`);
    const fh = await directOpen(p('evicted.bin'));
    try {
      await granted(fh, data);
      // What the worker does when it evicts a block (or a tier move leaves behind): unlink.
      for (const f of blockFiles) unlinkSync(f);
      const n = await direct();
      const list = ranges(data.length, 100);
      for (const [offset, size] of list) await readAndCheck(fh, data, offset, size);
      // All but the one at the end (the kernel answers it). This was "most" while the reader
      // thread counted a read after replying: a read's count could then land after the test
      // read the metric.
      const served = (await direct()) - n;
      assert.ok(
        served >= list.length - 1,
        `served directly from the removed files: ${served} of ${list.length} reads`,
      );
    } finally {
      await fh.close();
    }
  });

  await t.test('a block file damaged on disk: EIO for its bad chunk, never its bytes', async () => {
    const dataDir = join(cluster.workers[0]?.dir ?? '', 'data');
    const before = new Set(filesUnder(dataDir));
    const data = randomBytes(2 * BLOCK_BYTES + 999);
    await writeFile(p('damaged.bin'), data);
    const blockFiles = filesUnder(dataDir).filter((f) => !before.has(f));
    assert.equal(blockFiles.length, 3);
    const fh = await directOpen(p('damaged.bin'));
    try {
      await granted(fh, data);
      // One byte of the second block's second 64 KiB chunk, in whichever file holds it.
      const second = blockFiles.find((f) => {
        const b = readFileSync(f);
        return b.subarray(0, 4096).equals(data.subarray(BLOCK_BYTES, BLOCK_BYTES + 4096));
      });
      assert.ok(second !== undefined, 'the file of the second block');
      const raw = readFileSync(second);
      raw[100_000] = (raw[100_000] as number) ^ 0xff;
      writeFileSync(second, raw);
      const n = await direct();
      await assert.rejects(readAndCheck(fh, data, BLOCK_BYTES + 98_304, 4096), { code: 'EIO' });
      assert.equal(await direct(), n, 'the damaged chunk was not answered directly');
      // The worker found the damage itself when the read went through it, and dropped the copy
      // (the whole block: its only copy, so that block is lost here).
      await waitFor('the damaged copy dropped', () => !existsSync(second), 20_000);
      await assert.rejects(readAndCheck(fh, data, BLOCK_BYTES, 4096), { code: 'EIO' });
      // The other blocks still read right.
      for (const [offset, size] of [
        [0, 4096],
        [BLOCK_BYTES - 4096, 4096],
        [2 * BLOCK_BYTES, 999],
      ] as const) {
        await readAndCheck(fh, data, offset, size);
      }
    } finally {
      await fh.close();
    }
  });
});
