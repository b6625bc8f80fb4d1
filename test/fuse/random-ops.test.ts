// A long random sequence of file operations (writes at random offsets, overwrites across the
// 4 MiB block boundary, truncates up and down, appends, reads of random ranges, renames over
// existing files, unlinks, several writes and reads through one open descriptor) applied to the
// mount and to a local directory; every read and every final byte must agree. Seeded: the seed
// is printed and STRATA_FUSE_SEED replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, readdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTools } from '../helpers/ci.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { FUSE_TOOLS, TEST_CLUSTER, mountFuse } from './fuse-helper.js';

const skip = requireTools(...FUSE_TOOLS);
const OPS = 160;
const NAMES = ['a', 'b', 'c', 'd'];
const BLOCK = 4 * 1024 * 1024;
/** Read-write, created when missing, never truncated. */
const RW_CREATE = constants.O_RDWR | constants.O_CREAT;

/** mulberry32: small, seedable, good enough to pick operations. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Where two byte strings first differ (-1 when equal), for short failure messages. */
function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function sameBytes(
  got: { ok: Buffer } | { err: string },
  want: { ok: Buffer } | { err: string },
  what: string,
): void {
  if ('err' in want || 'err' in got) {
    assert.deepEqual('err' in got ? got.err : 'read ok', 'err' in want ? want.err : 'read ok', what);
    return;
  }
  const at = firstDiff(got.ok, want.ok);
  assert.equal(
    at,
    -1,
    `${what}: ${got.ok.length} bytes, expected ${want.ok.length}; first difference at ${at}`,
  );
}

async function outcome<T>(p: Promise<T>): Promise<{ ok: T } | { err: string }> {
  try {
    return { ok: await p };
  } catch (e) {
    return { err: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
}

test('random operations agree with a local directory', { skip, timeout: 170_000 }, async (t) => {
  const seed = Number(process.env.STRATA_FUSE_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (replay with STRATA_FUSE_SEED=${seed})`);
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const cluster = await MiniCluster.start(t, TEST_CLUSTER);
  const m = await mountFuse(t, cluster);
  const local = tempDir(t, 'strata-fuse-local-');
  const roots = [local, m.mnt] as const;
  const sizes = async (name: string): Promise<number> =>
    (await stat(join(local, name)).catch(() => undefined))?.size ?? 0;
  /** An offset biased to the interesting places: 0, the block boundary, the end. */
  const offset = async (name: string): Promise<number> => {
    const size = await sizes(name);
    return pick([0, int(size + 1), Math.max(0, BLOCK - int(70_000)), size, size + int(200_000)]);
  };

  const history: string[] = [];
  t.after(() => {
    if (process.exitCode !== undefined && process.exitCode !== 0) t.diagnostic(history.slice(-20).join('\n'));
  });
  for (let step = 0; step < OPS; step++) {
    const name = pick(NAMES);
    const kind = pick([
      'pwrite',
      'pwrite',
      'append',
      'truncate',
      'read',
      'read',
      'rename',
      'multi',
      'unlink',
    ]);
    const what = `step ${step} (seed ${seed}): ${kind} ${name}; before: ${history.slice(-6).join('; ')}`;
    history.push(`${step}:${kind} ${name} size ${await sizes(name)}`);
    if (kind === 'pwrite' || kind === 'append') {
      const data = randomBytes(1 + int(300_000));
      const at = await offset(name);
      const results = [];
      for (const root of roots) {
        results.push(
          await outcome(
            (async () => {
              const h = await open(join(root, name), kind === 'append' ? 'a' : RW_CREATE);
              try {
                await h.write(data, 0, data.length, kind === 'append' ? null : at);
              } finally {
                await h.close();
              }
            })(),
          ),
        );
      }
      assert.deepEqual(results[1], results[0], what);
    } else if (kind === 'truncate') {
      const len = int((await sizes(name)) + 300_000);
      const [a, b] = [
        await outcome(truncate(join(local, name), len)),
        await outcome(truncate(join(m.mnt, name), len)),
      ];
      assert.deepEqual(b, a, `${what} to ${len}`);
    } else if (kind === 'read') {
      const [a, b] = [await outcome(readFile(join(local, name))), await outcome(readFile(join(m.mnt, name)))];
      sameBytes(b, a, what);
    } else if (kind === 'rename') {
      const to = pick(NAMES);
      const [a, b] = [
        await outcome(rename(join(local, name), join(local, to))),
        await outcome(rename(join(m.mnt, name), join(m.mnt, to))),
      ];
      assert.deepEqual(b, a, `${what} -> ${to}`);
    } else if (kind === 'unlink') {
      const [a, b] = [await outcome(unlink(join(local, name))), await outcome(unlink(join(m.mnt, name)))];
      assert.deepEqual(b, a, what);
    } else {
      // Several operations through one descriptor on each side, reads in between.
      const hs = [];
      for (const root of roots) hs.push(await open(join(root, name), RW_CREATE));
      try {
        for (let k = 0; k < 4; k++) {
          const sub = pick(['write', 'write', 'read', 'ftruncate']);
          if (sub === 'write') {
            const data = randomBytes(1 + int(200_000));
            const at = await offset(name);
            for (const h of hs) await h.write(data, 0, data.length, at);
          } else if (sub === 'ftruncate') {
            const len = int((await sizes(name)) + 100_000);
            for (const h of hs) await h.truncate(len);
          } else {
            const at = int((await sizes(name)) + 10);
            const len = 1 + int(400_000);
            const bufs: Buffer[] = [];
            for (const h of hs) {
              const buf = Buffer.alloc(len);
              const { bytesRead } = await h.read(buf, 0, len, at);
              bufs.push(buf.subarray(0, bytesRead));
            }
            sameBytes({ ok: bufs[1] as Buffer }, { ok: bufs[0] as Buffer }, `${what}: read at ${at}+${len}`);
          }
          const sizesNow: number[] = [];
          for (const h of hs) sizesNow.push((await h.stat()).size);
          assert.equal(sizesNow[1], sizesNow[0], `${what}: size through the open descriptor`);
        }
      } finally {
        for (const h of hs) await h.close();
      }
    }
  }

  assert.deepEqual((await readdir(m.mnt)).sort(), (await readdir(local)).sort(), 'the same names');
  for (const name of await readdir(local)) {
    const [a, b] = [await readFile(join(local, name)), await readFile(join(m.mnt, name))];
    sameBytes({ ok: b }, { ok: a }, `final bytes of ${name}`);
  }
});
