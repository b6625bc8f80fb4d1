// The known-workers record a leader leaves for the next one: registered workers are added, lost
// ones removed, one a new leader never sees is dropped after one lost interval of its term.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../src/common/logging.js';
import { KnownWorkersRecorder, loadKnownWorkers } from '../../src/master/ha/known-workers.js';
import type { WorkerEntry, WorkerRegistry } from '../../src/master/workers/registry.js';
import { MemoryStore } from '../../src/meta/memory/memory-store.js';

/** The two registry reads the recorder makes, over a plain map of worker states. */
function registryOf(states: Map<string, WorkerEntry['state']>): WorkerRegistry {
  const entry = (id: string): WorkerEntry => ({ id, state: states.get(id) }) as unknown as WorkerEntry;
  return {
    all: () => [...states.keys()].map(entry),
    get: (id: string) => (states.has(id) ? entry(id) : undefined),
  } as unknown as WorkerRegistry;
}

test('known workers follow the registry across terms', async () => {
  const store = new MemoryStore();
  let now = 0;
  const states = new Map<string, WorkerEntry['state']>([
    ['w1', 'live'],
    ['w2', 'live'],
  ]);
  const first = new KnownWorkersRecorder({
    store,
    registry: registryOf(states),
    stored: await loadKnownWorkers(store),
    lostIntervalMs: 30_000,
    log: silentLogger(),
    clock: () => now,
  });
  await first.sync();
  assert.deepEqual([...(await loadKnownWorkers(store))].sort(), ['w1', 'w2']);
  states.set('w2', 'lost');
  await first.sync();
  assert.deepEqual([...(await loadKnownWorkers(store))], ['w1']);

  // The next term: w1 has not come back yet; w3 registers.
  const next = new Map<string, WorkerEntry['state']>([['w3', 'live']]);
  const second = new KnownWorkersRecorder({
    store,
    registry: registryOf(next),
    stored: await loadKnownWorkers(store),
    lostIntervalMs: 30_000,
    log: silentLogger(),
    clock: () => now,
  });
  await second.sync();
  assert.deepEqual([...(await loadKnownWorkers(store))].sort(), ['w1', 'w3'], 'w1 may still come back');
  now = 30_000;
  await second.sync();
  assert.deepEqual([...(await loadKnownWorkers(store))], ['w3'], 'unseen for a lost interval: dropped');
});
