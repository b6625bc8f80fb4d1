// Placement policies choose as documented: local-first, round-robin, uniform random,
// most-room-first and room-weighted draws (checked over many draws with a seeded RNG), distinct
// workers, the tier preference order, exclusions, and one clear ENOSPC when a placement is impossible.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StorageType } from '../../src/common/config/data-dir.js';
import type { WorkerState } from '../../src/protocol/types.js';
import { createPlacementPolicy, placeReplicas, tierPreference } from '../../src/master/placement/index.js';
import type { PlacementCandidate, PlacementRequest } from '../../src/master/placement/index.js';

const GiB = 1024 ** 3;
const BLOCK = 128 * 1024 * 1024;

function worker(
  id: string,
  tiers: [StorageType, number][],
  opts: { state?: WorkerState; host?: string; hostId?: string } = {},
): PlacementCandidate {
  return {
    id,
    address: {
      workerId: id,
      hostname: opts.host ?? `host-${id}`,
      rpcPort: 8997,
      webPort: 9001,
      hostId: opts.hostId ?? `hid-${id}`,
    },
    state: opts.state ?? 'live',
    tiers: tiers.map(([storageType, availableBytes]) => ({
      storageType,
      dir: `/data/${storageType}`,
      capacityBytes: 100 * GiB,
      usedBytes: 100 * GiB - availableBytes,
      availableBytes,
      blocks: 0,
      highWatermark: 0.9,
      lowWatermark: 0.7,
    })),
    reservedBytes: new Map(),
  };
}

/** A deterministic PRNG (mulberry32) so distribution checks never flake. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const req = (r: Partial<PlacementRequest> = {}): PlacementRequest => ({
  replicas: 1,
  storageType: 'DISK',
  blockSizeBytes: BLOCK,
  ...r,
});

function counts(picks: string[][]): Map<string, number> {
  const m = new Map<string, number>();
  for (const p of picks) for (const id of p) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

describe('placement', () => {
  const four = [
    worker('w1', [['DISK', 10 * GiB]]),
    worker('w2', [['DISK', 20 * GiB]]),
    worker('w3', [['DISK', 30 * GiB]]),
    worker('w4', [['DISK', 40 * GiB]]),
  ];

  test('tier preference: requested, then slower, then faster nearest first', () => {
    assert.deepEqual(tierPreference('SSD'), ['SSD', 'DISK', 'HDD', 'NVME', 'MEM']);
    assert.deepEqual(tierPreference('MEM'), ['MEM', 'NVME', 'SSD', 'DISK', 'HDD']);
    assert.deepEqual(tierPreference('HDD'), ['HDD', 'DISK', 'SSD', 'NVME', 'MEM']);
  });

  test('robin cycles through workers in id order', () => {
    const p = createPlacementPolicy('robin');
    const picks = Array.from({ length: 8 }, () => placeReplicas(p, four, req()).map((x) => x.worker.id));
    assert.deepEqual(picks.flat(), ['w1', 'w2', 'w3', 'w4', 'w1', 'w2', 'w3', 'w4']);
    const two = placeReplicas(p, four, req({ replicas: 2 })).map((x) => x.worker.id);
    assert.equal(new Set(two).size, 2, 'replicas go to distinct workers');
  });

  test('local puts the first copy on the writer machine, by host id or host name', () => {
    const p = createPlacementPolicy('local');
    for (let i = 0; i < 5; i++) {
      assert.equal(placeReplicas(p, four, req({ clientHostId: 'hid-w3' }))[0]?.worker.id, 'w3');
      assert.equal(placeReplicas(p, four, req({ clientHost: 'host-w2' }))[0]?.worker.id, 'w2');
    }
    const three = placeReplicas(p, four, req({ replicas: 3, clientHostId: 'hid-w4' })).map(
      (x) => x.worker.id,
    );
    assert.equal(three[0], 'w4');
    assert.equal(new Set(three).size, 3);
    const remote = Array.from(
      { length: 4 },
      () => placeReplicas(p, four, req({ clientHost: 'elsewhere' }))[0]?.worker.id,
    );
    assert.deepEqual(
      remote.sort(),
      ['w1', 'w2', 'w3', 'w4'],
      'without a local worker it falls back to round-robin',
    );
  });

  test('random is uniform', () => {
    const p = createPlacementPolicy('random', rng(7));
    const n = 8000;
    const c = counts(Array.from({ length: n }, () => placeReplicas(p, four, req()).map((x) => x.worker.id)));
    for (const w of four) {
      const share = (c.get(w.id) ?? 0) / n;
      assert.ok(Math.abs(share - 0.25) < 0.03, `${w.id} got ${share}`);
    }
  });

  test('load_based picks the most available space', () => {
    const p = createPlacementPolicy('load_based');
    assert.deepEqual(
      placeReplicas(p, four, req({ replicas: 2 })).map((x) => x.worker.id),
      ['w4', 'w3'],
    );
  });

  test('weighted draws in proportion to available space', () => {
    const p = createPlacementPolicy('weighted', rng(11));
    const n = 10000;
    const c = counts(Array.from({ length: n }, () => placeReplicas(p, four, req()).map((x) => x.worker.id)));
    const total = 100;
    for (const [id, avail] of [
      ['w1', 10],
      ['w2', 20],
      ['w3', 30],
      ['w4', 40],
    ] as const) {
      const share = (c.get(id) ?? 0) / n;
      assert.ok(Math.abs(share - avail / total) < 0.03, `${id} got ${share}, want ${avail / total}`);
    }
    const two = placeReplicas(p, four, req({ replicas: 4 })).map((x) => x.worker.id);
    assert.equal(new Set(two).size, 4, 'weighted sampling is without replacement');
  });

  test('blacklisted, lost, decommissioning and excluded workers are never chosen', () => {
    const ws = [
      worker('a', [['DISK', 10 * GiB]], { state: 'blacklisted' }),
      worker('b', [['DISK', 10 * GiB]], { state: 'lost' }),
      worker('c', [['DISK', 10 * GiB]], { state: 'decommissioning' }),
      worker('d', [['DISK', 10 * GiB]], { state: 'decommissioned' }),
      worker('e', [['DISK', 10 * GiB]]),
      worker('f', [['DISK', 10 * GiB]]),
    ];
    for (const name of ['local', 'robin', 'random', 'load_based', 'weighted'] as const) {
      const p = createPlacementPolicy(name, rng(3));
      for (let i = 0; i < 50; i++) {
        const got = placeReplicas(p, ws, req({ exclude: new Set(['f']) })).map((x) => x.worker.id);
        assert.deepEqual(got, ['e'], name);
      }
    }
  });

  test('storage type: preferred tier first, then down the tiers, then up', () => {
    const ws = [
      worker('mem', [['MEM', 10 * GiB]]),
      worker('ssd', [['SSD', 10 * GiB]]),
      worker('hdd', [['HDD', 10 * GiB]]),
      worker('mixed', [
        ['SSD', 10 * GiB],
        ['HDD', 10 * GiB],
      ]),
    ];
    const p = createPlacementPolicy('load_based');
    const ssd2 = placeReplicas(p, ws, req({ replicas: 2, storageType: 'SSD' }));
    assert.deepEqual(ssd2.map((x) => [x.worker.id, x.storageType]).sort(), [
      ['mixed', 'SSD'],
      ['ssd', 'SSD'],
    ]);
    const ssd3 = placeReplicas(p, ws, req({ replicas: 3, storageType: 'SSD' }));
    assert.deepEqual(
      ssd3.map((x) => x.storageType),
      ['SSD', 'SSD', 'HDD'],
      'falls down to HDD',
    );
    assert.equal(ssd3[2]?.worker.id, 'hdd');
    const hdd4 = placeReplicas(p, ws, req({ replicas: 4, storageType: 'HDD' }));
    assert.deepEqual(
      hdd4.map((x) => x.storageType),
      ['HDD', 'HDD', 'SSD', 'MEM'],
      'then up, nearest first',
    );
    // A tier without room for a block is skipped.
    const tight = [worker('small', [['SSD', BLOCK - 1]]), worker('big', [['DISK', 10 * GiB]])];
    assert.deepEqual(
      placeReplicas(p, tight, req({ storageType: 'SSD' })).map((x) => x.worker.id),
      ['big'],
    );
  });

  test('reservations since the last heartbeat count against room', () => {
    const w = worker('one', [['DISK', 2 * BLOCK]]);
    const other = worker('two', [['DISK', BLOCK]]);
    const p = createPlacementPolicy('load_based');
    assert.equal(placeReplicas(p, [w, other], req())[0]?.worker.id, 'one');
    (w.reservedBytes as Map<StorageType, number>).set('DISK', 2 * BLOCK);
    assert.equal(placeReplicas(p, [w, other], req())[0]?.worker.id, 'two');
  });

  test('an impossible placement is one ENOSPC naming what was asked and what exists', () => {
    const ws = [
      worker('a', [['DISK', 10 * GiB]]),
      worker('b', [['DISK', 10 * GiB]], { state: 'lost' }),
      worker('c', [['DISK', 1024]]),
    ];
    const p = createPlacementPolicy('robin');
    assert.throws(
      () => placeReplicas(p, ws, req({ replicas: 3 })),
      (err: Error & { code?: string; details?: Record<string, unknown> }) => {
        assert.equal(err.code, 'ENOSPC');
        assert.match(err.message, /cannot place 3 copies of a 128 MiB block \(storage DISK\)/);
        assert.match(err.message, /1 of 2 eligible worker\(s\) have room/);
        assert.match(err.message, /2 live, 1 lost/);
        assert.equal(err.details?.withRoom, 1);
        return true;
      },
    );
    assert.throws(() => placeReplicas(p, [], req()), /registered: none/);
  });
});
