// Crash safety: a child `strata master` is killed with SIGKILL at random moments while clients
// stream creates, renames, mkdirs, deletes and concats (a new file completed onto a name with a
// closed file appended, CompleteAs with concat) over RPC; after each restart every acknowledged
// operation is there (the one in flight may or may not be), and the consistency checker, which
// reads every record of the store, finds no orphan, dangling entry or index out of step.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbStore } from '../../src/meta/index.js';
import { checkNamespace } from '../../src/master/namespace/index.js';
import * as M from '../../src/protocol/master-calls.js';
import { RpcClient } from '../../src/rpc/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';

const CLIENTS = 8;
const CYCLES = 4;
const SEED = process.env.CRASH_SEED !== undefined ? Number(process.env.CRASH_SEED) : Date.now() % 100_000;

/** Deterministic randomness for the kill times. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Tree = Map<string, 'dir' | 'file'>;

/**
 * One client's workload in its own directory: a cycle of mkdir, create, move into a dir, delete a
 * dir (made two cycles before) and, every other cycle, concat the moved file onto a new name.
 */
interface Step {
  apply(tree: Tree): void;
  run(c: RpcClient): Promise<unknown>;
}

const STEPS = 5;

function step(root: string, i: number): Step {
  const d = (k: number): string => `${root}/d${k}`;
  // Every other cycle's create makes an empty, complete file in one call (one transaction); the
  // others leave it open under its lease.
  const completeCreate = (k: number): boolean => k % (2 * STEPS) === 1;
  switch (i % STEPS) {
    case 0:
      return { apply: (t) => void t.set(d(i), 'dir'), run: (c) => c.call(M.Mkdir, { path: d(i) }) };
    case 1:
      return {
        apply: (t) => void t.set(`${root}/f${i}`, 'file'),
        run: (c) =>
          c.call(M.Create, { path: `${root}/f${i}`, ...(completeCreate(i) ? { complete: true } : {}) }),
      };
    case 4: {
      // The file moved two steps ago, if closed, appended to a new file completed at h<i>; the
      // new file is written outside the client's directory (as the S3 gateway's temp files are).
      const src = `${d(i - 4)}/g${i - 3}`;
      if (!completeCreate(i - 3)) return { apply: () => undefined, run: () => Promise.resolve() };
      return {
        apply: (t) => {
          t.delete(src);
          t.set(`${root}/h${i}`, 'file');
        },
        run: async (c) => {
          const { id } = await c.call(M.GetStatus, { path: src });
          const tmp = await c.call(M.Create, {
            path: `/tmp${root}/h${i}-${Math.random().toString(36).slice(2)}`,
            parents: true,
          });
          return c.call(M.CompleteAs, {
            fileId: tmp.status.id,
            leaseId: tmp.leaseId,
            blocks: [],
            length: 0,
            renameTo: `${root}/h${i}`,
            concat: [{ path: src, fileId: id }],
          });
        },
      };
    }
    case 2:
      return {
        apply: (t) => {
          t.delete(`${root}/f${i - 1}`);
          t.set(`${d(i - 2)}/g${i - 1}`, 'file');
        },
        run: (c) => c.call(M.Rename, { src: `${root}/f${i - 1}`, dst: `${d(i - 2)}/g${i - 1}` }),
      };
    default: {
      const victim = i - 3 - 2 * STEPS; // the directory made two cycles ago (with the moved file or none)
      return {
        apply: (t) => {
          if (victim < 0) return;
          for (const k of [...t.keys()]) if (k === d(victim) || k.startsWith(`${d(victim)}/`)) t.delete(k);
        },
        run: (c) => (victim < 0 ? Promise.resolve() : c.call(M.Delete, { path: d(victim), recursive: true })),
      };
    }
  }
}

async function listTree(c: RpcClient, root: string): Promise<Tree> {
  const out: Tree = new Map();
  const walk = async (dir: string): Promise<void> => {
    let after: string | undefined;
    for (;;) {
      const page = await c.call(M.List, {
        path: dir,
        limit: 1000,
        ...(after === undefined ? {} : { startAfter: after }),
      });
      for (const e of page.entries) {
        out.set(e.path, e.type === 'dir' ? 'dir' : 'file');
        if (e.type === 'dir') await walk(e.path);
      }
      if (page.nextStartAfter === undefined) return;
      after = page.nextStartAfter;
    }
  };
  await walk(root);
  return out;
}

function same(a: Tree, b: Tree): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function describeTree(t: Tree): string {
  return [...t]
    .sort()
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
}

test(`acknowledged operations survive SIGKILL at random moments (seed ${SEED})`, async (t) => {
  t.diagnostic(`crash seed ${SEED} (rerun with CRASH_SEED=${SEED})`);
  const random = rng(SEED);
  const mc = await MiniCluster.start(t, { workers: 0 });
  const node = mc.masters[0];
  assert.ok(node !== undefined);
  const addresses = [{ host: '127.0.0.1', port: node.rpcPort }];
  const setup = new RpcClient({ addresses });
  for (let c = 0; c < CLIENTS; c++) await setup.call(M.Mkdir, { path: `/c${c}`, parents: true });
  await setup.close();

  const trees: Tree[] = Array.from({ length: CLIENTS }, (): Tree => new Map());
  const next: number[] = Array.from({ length: CLIENTS }, () => 0);
  let acked = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    // No retries: an answer means the master acknowledged; an error means "unknown outcome".
    const clients = Array.from(
      { length: CLIENTS },
      () => new RpcClient({ addresses, retryMax: 0, deadlineMs: 5000 }),
    );
    const inflight: (number | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
    let stop = false;
    const workers = clients.map(async (client, c) => {
      while (!stop) {
        const i = next[c] as number;
        const s = step(`/c${c}`, i);
        inflight[c] = i;
        try {
          await s.run(client);
        } catch {
          return; // the master went away: this step's outcome is unknown
        }
        s.apply(trees[c] as Tree);
        inflight[c] = undefined;
        next[c] = i + 1;
        acked++;
      }
    });
    await new Promise((r) => setTimeout(r, 150 + Math.floor(random() * 600)));
    await mc.stopNode(node, 'SIGKILL');
    stop = true;
    await Promise.all(workers);
    await Promise.all(clients.map((c) => c.close()));

    // Check the store as the kill left it, before the master opens it again.
    const store = await LmdbStore.open({ dir: join(node.dir, 'meta', mc.clusterId) });
    const report = await checkNamespace(store);
    await store.close();
    assert.deepEqual(report.problems, [], `cycle ${cycle}: store consistent after SIGKILL`);

    await mc.restartNode(node);
    const reader = new RpcClient({ addresses });
    for (let c = 0; c < CLIENTS; c++) {
      const root = `/c${c}`;
      const got = await listTree(reader, root);
      const acknowledged = new Map(trees[c]);
      const i = inflight[c];
      const withInflight = new Map(acknowledged);
      if (i !== undefined) step(root, i).apply(withInflight);
      if (same(got, acknowledged)) {
        // The step in flight did not happen: it runs again next cycle.
      } else if (i !== undefined && same(got, withInflight)) {
        trees[c] = withInflight;
        next[c] = i + 1;
      } else {
        assert.fail(
          `cycle ${cycle}, client ${c}: after restart\n got  ${describeTree(got)}\n want ${describeTree(acknowledged)}` +
            (i === undefined ? '' : `\n  or  ${describeTree(withInflight)}`),
        );
      }
    }
    await reader.close();
  }
  t.diagnostic(`${acked} acknowledged operations across ${CYCLES} crashes`);
  assert.ok(acked > CYCLES * CLIENTS, 'the workload made progress');
});
