/**
 * Durable commits of the metadata store alone (no namespace, no RPC): 40 concurrent writers,
 * each running transactions of five small puts (about what a create writes) one after another,
 * against (1) the bare write-ahead log (records appended, group-committed fdatasync), (2) the
 * LMDB engine acknowledging at LMDB's commit with data and meta page synced (`meta_wal = false`,
 * `meta_sync = true`: survives power loss), (3) the same with the meta page left to the next
 * commit (`meta_sync = false`: one sync fewer, but a machine crash may undo the last
 * acknowledged transaction), (4) the LMDB engine acknowledging at the log's sync (`meta_wal =
 * true`, survives power loss). Rounds interleave them so a shared
 * machine's load swings hit each alike; the best round of each is reported, beside redis-server
 * with `appendfsync always` driven by redis-benchmark -c 40 (SET) in the same invocation.
 *
 *   node dist/bench/meta/store.js [--writers=40] [--seconds=3] [--rounds=3] [--redis=false]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LmdbStore } from '../../src/meta/index.js';
import { WriteAheadLog } from '../../src/meta/lmdb/wal.js';
import { encodeWalRecord } from '../../src/meta/lmdb/wal-record.js';
import { runRedisBenchmark, startRedisServer } from '../lib/redis.js';
import { best, printComparisons } from '../lib/report.js';

const PUTS_PER_TXN = 5;
const VALUE_BYTES = 120;
/** Lets the log's first spare segment be preallocated before timing starts. */
const WARMUP_MS = 1000;
const DURABLE_SET_REQUESTS = 20_000;

function flag(name: string, fallback: string): number | string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? fallback : hit.slice(name.length + 3);
}

interface Figure {
  txnPerSec: number;
  txnPerSync: number;
}

/** Runs `writers` closed loops of `op` for `seconds`; returns transactions per second. */
async function drive(
  writers: number,
  seconds: number,
  op: (w: number, i: number) => Promise<void>,
): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        await op(w, i);
        n++;
      }
    }),
  );
  return n / seconds;
}

function writesOf(w: number, i: number): { key: Buffer; value: Buffer }[] {
  const value = Buffer.alloc(VALUE_BYTES, i & 0xff);
  return Array.from({ length: PUTS_PER_TXN }, (_, k) => ({ key: Buffer.from(`w${w}/${i}/${k}`), value }));
}

async function bareLog(dir: string, writers: number, seconds: number): Promise<Figure> {
  const wal = new WriteAheadLog({ dir, nextRevision: 1 });
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  let rev = 0;
  const rate = await drive(writers, seconds, async (w, i) => {
    rev++;
    await wal.append(rev, encodeWalRecord(rev, writesOf(w, i)));
  });
  const syncs = wal.syncs;
  await wal.close();
  return { txnPerSec: rate, txnPerSync: rev / Math.max(1, syncs) };
}

async function store(
  dir: string,
  mode: { wal: boolean; durability: 'flush' | 'commit' },
  writers: number,
  seconds: number,
): Promise<Figure> {
  const s = await LmdbStore.open({ dir, ...mode });
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const rate = await drive(writers, seconds, (w, i) =>
    s.transaction((tx) => {
      for (const x of writesOf(w, i)) tx.put(x.key, x.value);
    }),
  );
  const st = s.stats();
  await s.close();
  return { txnPerSec: rate, txnPerSync: st.transactions / Math.max(1, st.commits) };
}

async function main(): Promise<void> {
  const writers = Number(flag('writers', '40'));
  const seconds = Number(flag('seconds', '3'));
  const rounds = Number(flag('rounds', '3'));
  const withRedis = flag('redis', 'true') !== 'false';
  const root = mkdtempSync(join(tmpdir(), 'strata-bench-meta-store-'));
  const modes = [
    'log alone',
    'lmdb, ack at LMDB commit (meta_sync)',
    'lmdb, ack at LMDB commit (no meta sync)',
    'lmdb, ack at log sync',
  ] as const;
  const figures = new Map<string, Figure[]>(modes.map((m) => [m, []]));
  try {
    for (let r = 0; r < rounds; r++) {
      for (const [k, mode] of modes.entries()) {
        const dir = mkdtempSync(join(root, 'r-'));
        const f =
          k === 0
            ? await bareLog(dir, writers, seconds)
            : await store(dir, { wal: k === 3, durability: k === 2 ? 'commit' : 'flush' }, writers, seconds);
        rmSync(dir, { recursive: true, force: true });
        figures.get(mode)?.push(f);
        process.stdout.write(
          `round ${r + 1}  ${mode.padEnd(40)} ${Math.round(f.txnPerSec).toString().padStart(7)} txn/s  ${f.txnPerSync.toFixed(1)} txn per sync/commit\n`,
        );
      }
    }
    if (!withRedis) return;
    const redis = await startRedisServer({ durableDir: join(root, 'redis-aof') });
    let durableSet: number;
    try {
      durableSet = await runRedisBenchmark({
        port: redis.port,
        test: 'set',
        clients: writers,
        pipeline: 1,
        requests: DURABLE_SET_REQUESTS,
      });
    } finally {
      await redis.stop();
    }
    printComparisons(
      `durable transactions (${PUTS_PER_TXN} puts each), ${writers} concurrent writers, best of ${rounds} rounds, beside redis SET with appendfsync always`,
      modes.map((m) => ({
        what: m,
        unit: 'ops/s',
        ours: best((figures.get(m) ?? []).map((f) => f.txnPerSec)),
        reference: durableSet,
        referenceName: 'redis SET, appendfsync always',
        // No goal of its own: the master's create goal is two of these per create.
      })),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
