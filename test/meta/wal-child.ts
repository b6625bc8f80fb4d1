/**
 * Child process of wal.test.ts (not a test itself): opens an LMDB store with its write-ahead log
 * and either writes until killed (`write`: 8 concurrent writers, tiny log segments so that
 * rotations, segment deletions and LMDB's background commits are under way at every moment,
 * printing each acknowledged transaction) or only opens it (`open`: the replay of the log).
 *
 * Transaction `i` of writer `w` puts `k/<w>/<i>`, moves the writer's single `tmp/<w>/…` key
 * from `i - 1` to `i` and sets `last/<w>` to `i`: after a crash every acknowledged `k` is there,
 * `last/<w>` is at least the writer's last acknowledged `i`, and `tmp/<w>/` holds exactly one key
 * (a transaction is replayed whole or not at all).
 */
import { pathToFileURL } from 'node:url';
import { LmdbStore } from '../../src/meta/index.js';

export const WAL_CHILD_WRITERS = 8;
/** Tiny segments: a rotation every few dozen transactions. */
export const WAL_CHILD_SEGMENT_BYTES = 4096;

const enc = (s: string): Buffer => Buffer.from(s);

async function writer(store: LmdbStore, w: number, from: number): Promise<never> {
  for (let i = from; ; i++) {
    await store.transaction((tx) => {
      tx.put(enc(`k/${w}/${String(i).padStart(8, '0')}`), enc(String(i)));
      tx.delete(enc(`tmp/${w}/${String(i - 1).padStart(8, '0')}`));
      tx.put(enc(`tmp/${w}/${String(i).padStart(8, '0')}`), enc(String(i)));
      tx.put(enc(`last/${w}`), enc(String(i)));
    });
    process.stdout.write(`ack ${w} ${i}\n`);
  }
}

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2);
  if (dir === undefined || (mode !== 'write' && mode !== 'open'))
    throw new Error('usage: wal-child.js write|open DIR');
  process.stdout.write('opening\n');
  const store = await LmdbStore.open({ dir, wal: true, walSegmentBytes: WAL_CHILD_SEGMENT_BYTES });
  process.stdout.write('open\n');
  if (mode === 'open') {
    await store.close();
    return;
  }
  const starts = await Promise.all(
    Array.from({ length: WAL_CHILD_WRITERS }, async (_, w) => {
      const v = await store.get(enc(`last/${w}`));
      return v === undefined ? 0 : Number(Buffer.from(v).toString()) + 1;
    }),
  );
  await Promise.all(starts.map((from, w) => writer(store, w, from)));
}

// Run only as a process of its own (the test imports the constants above).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
