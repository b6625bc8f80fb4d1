// Proves the console's pure parts with exact expectations: the Prometheus text reader, the
// sampler's rates (counter resets, a worker missing a round, the bounded ring) on a fake clock
// and fake scrapes, the alert rules, and the number formats the pages and tests share.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import {
  formatAgo,
  formatBytes,
  formatCount,
  formatDuration,
  formatMode,
  formatPercent,
} from '../../src/console-ui/format.js';
import { silentLogger } from '../../src/common/logging.js';
import { RecentIncreases, computeAlerts, windowHitRatio } from '../../src/master/console/alerts.js';
import type { HistorySample } from '../../src/master/console/history.js';
import { SampleRing } from '../../src/master/console/history.js';
import { exportedNames, parsePromText, sumSamples } from '../../src/master/console/prom-text.js';
import { ConsoleSampler } from '../../src/master/console/sampler.js';
import type { WorkerInfo } from '../../src/protocol/types.js';

test('the Prometheus text reader takes labels, escapes, special values and declared families', () => {
  const text = [
    '# HELP strata_worker_read_bytes_total Block bytes served',
    '# TYPE strata_worker_read_bytes_total counter',
    'strata_worker_read_bytes_total{path="remote",role="worker"} 1024',
    'strata_worker_read_bytes_total{path="local",role="worker"} 2048 1700000000000',
    'weird{a="x\\"y",b="line\\nbreak",c="back\\\\slash"} +Inf',
    '# TYPE lat histogram',
    '# TYPE unused_total counter',
    'nan_metric NaN',
    'broken{a="x" 1',
    'no_value',
    '',
  ].join('\n');
  const e = parsePromText(text);
  assert.deepEqual(
    e.samples.map((s) => [s.name, s.labels, s.value]),
    [
      ['strata_worker_read_bytes_total', { path: 'remote', role: 'worker' }, 1024],
      ['strata_worker_read_bytes_total', { path: 'local', role: 'worker' }, 2048],
      ['weird', { a: 'x"y', b: 'line\nbreak', c: 'back\\slash' }, Infinity],
      ['nan_metric', {}, NaN],
    ],
  );
  assert.equal(sumSamples(e.samples, 'strata_worker_read_bytes_total'), 3072);
  assert.equal(sumSamples(e.samples, 'strata_worker_read_bytes_total', { path: 'local' }), 2048);
  assert.equal(sumSamples(e.samples, 'strata_worker_read_bytes_total', { path: ['local', 'remote'] }), 3072);
  assert.equal(sumSamples(e.samples, 'weird'), 0, 'infinite values are not summed');
  const names = exportedNames(e);
  for (const n of ['lat', 'lat_bucket', 'lat_sum', 'lat_count', 'unused_total', 'weird', 'nan_metric'])
    assert.ok(names.has(n), n);
  assert.ok(!names.has('broken'));
});

test('the ring keeps the newest samples up to its capacity, oldest first', () => {
  const r = new SampleRing<number>(3);
  assert.deepEqual(r.toArray(), []);
  assert.equal(r.last(), undefined);
  for (let i = 1; i <= 7; i++) r.push(i);
  assert.deepEqual(r.toArray(), [5, 6, 7]);
  assert.equal(r.size, 3);
  assert.equal(r.last(), 7);
  assert.throws(() => new SampleRing(0), RangeError);
});

function workerMetrics(read: number, write: number, repl: number): string {
  return [
    '# TYPE strata_worker_read_bytes_total counter',
    `strata_worker_read_bytes_total{path="remote"} ${read / 2}`,
    `strata_worker_read_bytes_total{path="local"} ${read / 2}`,
    `strata_worker_read_bytes_total{path="replication"} 999999`,
    `strata_worker_write_bytes_total{path="remote"} ${write}`,
    `strata_worker_write_bytes_total{path="replication"} ${repl}`,
  ].join('\n');
}

test('the sampler turns counters into per-second rates, across resets and missed scrapes', async () => {
  const registry = new Registry();
  const calls = new Counter({
    name: 'strata_rpc_server_requests_total',
    help: 'h',
    labelNames: ['call', 'status'],
    registers: [registry],
  });
  const clock = { now: 1_000_000 };
  const bodies = new Map<string, string | Error>();
  const sampler = new ConsoleSampler({
    registry,
    log: silentLogger(),
    intervalMs: 1000,
    windowMs: 5000,
    clock: () => clock.now,
    targets: () => [...bodies.keys()].map((id) => ({ id, url: `http://${id}/metrics` })),
    scrape: async (url) => {
      const b = bodies.get(url.slice(7, -8));
      if (b instanceof Error || b === undefined) throw b ?? new Error('no such worker');
      return b;
    },
  });
  bodies.set('a', workerMetrics(0, 0, 0));
  bodies.set('b', workerMetrics(1000, 0, 0));
  assert.equal(await sampler.sampleOnce(), undefined, 'the first round is the baseline');

  clock.now += 2000;
  calls.inc({ call: 'master.getStatus', status: 'ok' }, 30);
  calls.inc({ call: 'master.create', status: 'EEXIST' }, 10);
  calls.inc({ call: 'master.heartbeat', status: 'ok' }, 8);
  bodies.set('a', workerMetrics(4000, 2000, 600));
  bodies.set('b', workerMetrics(3000, 0, 0));
  const s1 = await sampler.sampleOnce();
  assert.ok(s1 !== undefined);
  assert.equal(s1.opsPerSec, 20); // (30 + 10) / 2 s
  assert.equal(s1.errorsPerSec, 5);
  assert.equal(s1.workerCallsPerSec, 4);
  assert.equal(s1.readBytesPerSec, (4000 + 2000) / 2);
  assert.equal(s1.writeBytesPerSec, 1000);
  assert.equal(s1.replicationBytesPerSec, 300);
  assert.equal(s1.hitRatio, null, 'no UFS block reads');
  assert.deepEqual([s1.workersScraped, s1.workersAsked], [2, 2]);

  // b misses a round, then answers: its bytes count over its own 2 s, not as one burst.
  clock.now += 1000;
  bodies.set('b', new Error('timeout'));
  const s2 = await sampler.sampleOnce();
  assert.equal(s2?.readBytesPerSec, 0);
  assert.deepEqual([s2?.workersScraped, s2?.workersAsked], [1, 2]);
  clock.now += 1000;
  bodies.set('b', workerMetrics(7000, 0, 0));
  const s3 = await sampler.sampleOnce();
  assert.equal(s3?.readBytesPerSec, 2000);

  // a restarted: its counters start again from zero; the rate is the new value, never negative.
  clock.now += 1000;
  bodies.set('a', workerMetrics(500, 0, 0));
  bodies.set('b', workerMetrics(7000, 0, 0));
  const s4 = await sampler.sampleOnce();
  assert.equal(s4?.readBytesPerSec, 500);
  assert.equal(s4?.writeBytesPerSec, 0);

  for (let i = 0; i < 10; i++) {
    clock.now += 1000;
    await sampler.sampleOnce();
  }
  assert.equal(sampler.ring.toArray().length, 5, 'bounded by window / interval');
  assert.equal(sampler.ring.capacity, 5);
});

function worker(id: string, state: WorkerInfo['state'], used: number, lastHeartbeatMs = 1000): WorkerInfo {
  return {
    address: { workerId: id, hostname: 'h', rpcPort: Number(id.slice(1)), webPort: 0, hostId: id },
    state,
    tiers: [
      {
        storageType: 'SSD',
        dir: '/ssd',
        capacityBytes: 100,
        usedBytes: used,
        availableBytes: 100 - used,
        blocks: 1,
        highWatermark: 0.9,
        lowWatermark: 0.7,
      },
    ],
    capacityBytes: 100,
    usedBytes: used,
    availableBytes: 100 - used,
    blocks: 1,
    lastHeartbeatMs,
    registeredAtMs: 0,
    version: 't',
  };
}

function sample(tMs: number, hitRatio: number | null, reads: number): HistorySample {
  return {
    tMs,
    opsPerSec: 0,
    errorsPerSec: 0,
    workerCallsPerSec: 0,
    readBytesPerSec: 0,
    writeBytesPerSec: 0,
    replicationBytesPerSec: 0,
    hitRatio,
    blockReadsPerSec: reads,
    metaHitRatio: null,
    workersScraped: 0,
    workersAsked: 0,
  };
}

test('alerts: lost and silent workers, tiers above high, draining, replication, low hit ratio', () => {
  const now = 100_000;
  const alerts = computeAlerts({
    workers: [
      worker('w1', 'live', 95),
      worker('w2', 'lost', 95, 40_000),
      worker('w3', 'blacklisted', 10, 90_000),
      worker('w4', 'decommissioning', 10),
      worker('w5', 'decommissioned', 99),
      worker('w6', 'live', 90),
    ],
    replication: { needed: 3, inflight: 1, missingRecent: 2 },
    history: [sample(now - 20 * 60_000, 0, 100), sample(now - 60_000, 0.25, 4), sample(now - 30_000, 0.5, 4)],
    nowMs: now,
  });
  assert.deepEqual(
    alerts.map((a) => [a.severity, a.id]),
    [
      ['critical', 'worker-lost:w2'],
      ['critical', 'blocks-missing'],
      ['warning', 'tier-high:w1:SSD:/ssd'],
      ['warning', 'worker-blacklisted:w3'],
      ['warning', 'low-hit-ratio'],
      ['info', 'worker-decommissioning:w4'],
      ['info', 'under-replicated'],
    ],
  );
  assert.match(alerts[0]?.detail ?? '', /No heartbeat for 60 s/);
  // The sample from 20 minutes ago is outside the window: (0.25·4 + 0.5·4) / 8.
  assert.equal(alerts.find((a) => a.id === 'low-hit-ratio')?.detail.startsWith('37.5%'), true);
  assert.deepEqual(windowHitRatio([sample(now, null, 0)], now), undefined);
  const quiet = computeAlerts({
    workers: [worker('w1', 'live', 10)],
    replication: { needed: 0, inflight: 0, missingRecent: 0 },
    history: [sample(now, 0.1, 0.5)],
    nowMs: now,
  });
  assert.deepEqual(quiet, [], 'a low ratio over too few reads is not an alert');
  assert.deepEqual(
    computeAlerts({
      workers: [worker('w1', 'blacklisted', 10)],
      replication: { needed: 0, inflight: 0, missingRecent: 0 },
      history: [],
      nowMs: now,
    }).map((a) => a.id),
    ['no-live-workers', 'worker-blacklisted:w1'],
  );
});

test('recent increases of an event counter expire after the window', () => {
  const r = new RecentIncreases(1000);
  r.observe(5, 0);
  assert.equal(r.recent(0), 0, 'the first value is a baseline');
  r.observe(7, 100);
  r.observe(7, 200);
  r.observe(8, 600);
  assert.equal(r.recent(700), 3);
  assert.equal(r.recent(1200), 1);
  assert.equal(r.recent(1700), 0);
});

test('number formats', () => {
  assert.deepEqual(
    [0, 1023, 1024, 1536, 10 * 1024 - 1, 1024 * 1024 - 1, 3 * 1024 ** 3, 5.5 * 1024 ** 4].map(formatBytes),
    ['0 B', '1023 B', '1.00 KiB', '1.50 KiB', '10.0 KiB', '1.00 MiB', '3.00 GiB', '5.50 TiB'],
  );
  assert.equal(formatCount(10000), '10,000');
  assert.equal(formatPercent(0.4567), '45.7%');
  assert.equal(formatPercent(null), '—');
  assert.equal(formatDuration(93_000), '1 min 33 s');
  assert.equal(formatDuration(3 * 86_400_000 + 4 * 3_600_000), '3 d 4 h');
  assert.equal(formatAgo(1000, 1500), 'just now');
  assert.equal(formatAgo(0, 12_000), '12 s ago');
  assert.equal(formatAgo(0, 5 * 60_000), '5 min ago');
  assert.equal(formatMode(0o755, 'dir'), 'drwxr-xr-x');
  assert.equal(formatMode(0o640, 'file'), '-rw-r-----');
});
