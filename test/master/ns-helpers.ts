/** Shared setup for namespace tests: a Namespace on a fresh store with a controllable clock. */
import type { TestContext } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { LmdbStore, MemoryStore } from '../../src/meta/index.js';
import type { MetaStore } from '../../src/meta/index.js';
import { Namespace } from '../../src/master/namespace/index.js';
import type { NamespaceEvents, NamespaceOptions } from '../../src/master/namespace/index.js';
import { tempDir } from '../helpers/tmp.js';

export type Engine = 'lmdb' | 'memory' | 'memory-remote';

export interface TestNs {
  ns: Namespace;
  store: MetaStore;
  clock: { now: number };
  removed: number[];
}

export async function openStore(t: Pick<TestContext, 'after'>, engine: Engine): Promise<MetaStore> {
  const store =
    engine === 'lmdb'
      ? await LmdbStore.open({ dir: tempDir(t, 'strata-ns-'), durability: 'commit' })
      : new MemoryStore({ remote: engine === 'memory-remote' });
  t.after(() => (store.isOpen ? store.close() : undefined));
  return store;
}

export async function openNs(
  t: Pick<TestContext, 'after'>,
  engine: Engine = 'lmdb',
  extra: Partial<NamespaceOptions> & { events?: NamespaceEvents } = {},
  store?: MetaStore,
): Promise<TestNs> {
  const s = store ?? (await openStore(t, engine));
  const clock = { now: 1_700_000_000_000 };
  const removed: number[] = [];
  const ns = await Namespace.open({
    store: s,
    clusterId: 'test',
    defaults: { blockSizeBytes: 1024 * 1024, replicas: 1, storageType: 'DISK', ttlMs: 0, ttlAction: 'none' },
    leaseTimeoutMs: 60_000,
    log: silentLogger(),
    clock: () => clock.now,
    ...extra,
    events: { blocksRemoved: (ids) => removed.push(...ids), ...extra.events },
  });
  return { ns, store: s, clock, removed };
}
