// Runs the MetaStore conformance suite against the LMDB engine (on a temp dir, reopened for the
// persistence case), with and without its write-ahead log (small segments, so they rotate), the
// in-memory engine, and the in-memory engine simulating a remote store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore, MemoryStore } from '../../src/meta/index.js';
import type { MetaStore } from '../../src/meta/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runMetaStoreConformance } from './conformance.js';

const dirs = new WeakMap<object, string>();

runMetaStoreConformance({
  name: 'lmdb',
  open: async (t) => {
    const dir = tempDir(t, 'strata-meta-');
    const store = await LmdbStore.open({ dir });
    dirs.set(store, dir);
    return store;
  },
  reopen: async (_t, store) => {
    const dir = dirs.get(store);
    if (dir === undefined) throw new Error('unknown store');
    await store.close();
    const again = await LmdbStore.open({ dir });
    dirs.set(again, dir);
    return again;
  },
});

// Small segments: the suite's transactions rotate and release segments many times.
const WAL_TEST_SEGMENT_BYTES = 4096;
/** The open store of each WAL test directory (a reopen replaces it). */
const latest = new Map<string, MetaStore>();
runMetaStoreConformance({
  name: 'lmdb-wal',
  open: async (t) => {
    // Not tempDir: the store must be closed before its directory goes, as it writes its next
    // log segment in the background.
    const dir = mkdtempSync(join(tmpdir(), 'strata-meta-wal-'));
    const store = await LmdbStore.open({ dir, wal: true, walSegmentBytes: WAL_TEST_SEGMENT_BYTES });
    dirs.set(store, dir);
    latest.set(dir, store);
    t.after(async () => {
      const last = latest.get(dir);
      if (last?.isOpen === true) await last.close();
      latest.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    });
    return store;
  },
  reopen: async (_t, store) => {
    const dir = dirs.get(store);
    if (dir === undefined) throw new Error('unknown store');
    await store.close();
    const again = await LmdbStore.open({ dir, wal: true, walSegmentBytes: WAL_TEST_SEGMENT_BYTES });
    dirs.set(again, dir);
    latest.set(dir, again);
    return again;
  },
});

runMetaStoreConformance({ name: 'memory', open: async () => new MemoryStore() });
runMetaStoreConformance({ name: 'memory-remote', open: async () => new MemoryStore({ remote: true }) });
