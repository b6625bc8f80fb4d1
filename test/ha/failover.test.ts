// Three masters on a real etcd and two workers; clients write and read continuously while the
// leader is killed with SIGKILL over and over. Proves: a standby takes over within the target,
// clients (raw RPC and the client library with its default settings) follow it without help,
// every acknowledged operation is there afterwards and none took effect twice (the recorded
// history is checked for linearizability per file), workers re-register with each new leader
// so block locations are known again, and `strata report` and /metrics show who leads.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import type { FileSystem } from '../../src/client/index.js';
import { StrataError } from '../../src/common/errors.js';
import { MasterCalls, WorkerCalls } from '../../src/protocol/index.js';
import type { RpcClient } from '../../src/rpc/index.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN } from '../helpers/etcd.js';
import { runStrata } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { metricValue } from '../helpers/metrics.js';
import { HaCluster } from './ha-cluster.js';
import { checkLinearizable, fileModel } from './linearizability.js';
import type { FileInput, FileOutput, Operation } from './linearizability.js';

const skip = requireTools(ETCD_BIN);
/**
 * How long a takeover (and the clients' first acknowledged call after it) may take before the
 * test calls it stuck. The product's target, ≤ 5 s with the default 3 s lease, is a performance
 * figure that `bench/ha` measures; here a loaded CI machine, about twice slower than a quiet one,
 * was seen resuming writes after just over 5 s, so the test asserts liveness with room, and
 * prints every figure. The test runs a 2 s lease: short enough to keep the test quick, long
 * enough that a leader starved of CPU does not lose its lease on its own (a 1 s lease did,
 * adding unforced failovers).
 */
const TAKEOVER_BOUND_MS = 15_000;
const LEASE_TTL = '2s';
const KILLS = 5;
const LIN_KEYS = 4;
const LIN_CLIENTS = 4;
const DUR_CLIENTS = 2;
const MODES = [0o600, 0o640, 0o700, 0o750];
/** Client library instances writing whole files (several blocks each) and reading them back. */
const FS_CLIENTS = 2;
const FS_BLOCK_BYTES = 64 * 1024;
const FS_MAX_FILE_BYTES = 4 * FS_BLOCK_BYTES;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

type Op = Operation<FileInput, FileOutput>;

interface Completion {
  callAt: number;
  doneAt: number;
  write: boolean;
}

/** A definite answer (success or a POSIX refusal) or undefined (outcome unknown). */
function outcome(err: unknown): FileOutput | undefined {
  if (err instanceof StrataError && /^E[A-Z0-9]+$/.test(err.code)) return { ok: false, code: err.code };
  return undefined;
}

describe('HA failover under continuous load', { skip, timeout: 180_000 }, () => {
  test('SIGKILL of the leader, again and again: takeover in time, no lost or doubled operation', async (t) => {
    const ha = await HaCluster.start(t, { masters: 3, workers: 2, leaseTtl: LEASE_TTL });
    const admin = ha.client();
    await ha.waitLeader();
    await admin.call(MasterCalls.Mkdir, { path: '/lin', parents: true });
    await admin.call(MasterCalls.Mkdir, { path: '/dur', parents: true });
    await admin.call(MasterCalls.Mkdir, { path: '/blk', parents: true });
    await waitFor('both workers registered', async () => (await ha.liveWorkers(admin)) === 2, 20_000);

    let stop = false;
    const history: Op[] = [];
    const completions: Completion[] = [];
    const durAcked = new Set<string>();
    const durInvoked = new Set<string>();
    const durRefused: string[] = [];
    const blocks: { path: string; blockId: number; bytes: Buffer }[] = [];
    const fsAcked = new Map<string, string>();
    const fsFailures: string[] = [];
    let fsReads = 0;
    const rng = seeded(Number(process.env.STRATA_TEST_SEED ?? Date.now() % 100_000));
    t.diagnostic(`seed ${rng.seed}`);

    const linClient = async (c: number, client: RpcClient): Promise<void> => {
      while (!stop) {
        const key = `/lin/k${Math.floor(rng() * LIN_KEYS)}`;
        const r = rng();
        const input: FileInput =
          r < 0.2
            ? { kind: 'create' }
            : r < 0.35
              ? { kind: 'delete' }
              : r < 0.65
                ? { kind: 'chmod', mode: MODES[Math.floor(rng() * MODES.length)] as number }
                : { kind: 'stat' };
        const callAt = performance.now();
        let output: FileOutput | undefined;
        try {
          if (input.kind === 'create') {
            const res = await client.call(MasterCalls.Create, { path: key });
            // The file exists from here on (what the model tracks); closing it is bookkeeping
            // that may fail if another client deleted it meanwhile.
            output = { ok: true };
            await client
              .call(MasterCalls.Complete, {
                fileId: res.status.id,
                leaseId: res.leaseId,
                blocks: [],
                length: 0,
              })
              .catch(() => undefined);
          } else if (input.kind === 'delete') {
            await client.call(MasterCalls.Delete, { path: key });
            output = { ok: true };
          } else if (input.kind === 'chmod') {
            await client.call(MasterCalls.SetAttr, { path: key, mode: input.mode });
            output = { ok: true };
          } else {
            const st = await client.call(MasterCalls.GetStatus, { path: key });
            output = { ok: true, mode: st.mode };
          }
        } catch (err) {
          output = outcome(err);
        }
        const doneAt = performance.now();
        history.push({
          key,
          input,
          output,
          callAt,
          returnAt: output === undefined ? Infinity : doneAt,
          client: c,
        });
        if (output !== undefined) completions.push({ callAt, doneAt, write: input.kind !== 'stat' });
      }
    };

    const durClient = async (c: number, client: RpcClient): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const path = `/dur/c${c}-${n}`;
        durInvoked.add(path);
        const callAt = performance.now();
        try {
          const res = await client.call(MasterCalls.Create, { path });
          await client.call(MasterCalls.Complete, {
            fileId: res.status.id,
            leaseId: res.leaseId,
            blocks: [],
            length: 0,
          });
          durAcked.add(path);
          completions.push({ callAt, doneAt: performance.now(), write: true });
        } catch (err) {
          // Nobody else touches this path: a definite refusal (EEXIST from its own retried
          // create, EBADF from its own retried complete) would be a doubled or lost effect.
          if (outcome(err) !== undefined) durRefused.push(`${path}: ${(err as Error).message}`);
          // Otherwise the outcome is unknown: the file may or may not exist.
        }
      }
    };

    const blockClient = async (client: RpcClient): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const path = `/blk/f${n}`;
        const bytes = Buffer.alloc(64 * 1024, n & 0xff);
        try {
          const res = await client.call(MasterCalls.Create, { path, blockSize: 1024 * 1024 });
          const add = await client.call(MasterCalls.AddBlock, {
            fileId: res.status.id,
            leaseId: res.leaseId,
          });
          const w = add.workers[0];
          if (w === undefined) throw new Error('no worker for the block');
          const wc = ha.client({ addresses: [{ host: w.hostname, port: w.rpcPort }], retryMax: 3 });
          const call = wc.write(WorkerCalls.WriteBlock, { blockId: add.blockId, storageType: 'DISK' });
          await call.write(bytes);
          await call.end();
          await wc.close();
          await client.call(MasterCalls.Complete, {
            fileId: res.status.id,
            leaseId: res.leaseId,
            blocks: [{ blockId: add.blockId, length: bytes.length, workers: [w.workerId] }],
            length: bytes.length,
          });
          blocks.push({ path, blockId: add.blockId, bytes });
        } catch {
          // A write cut by a failover: not counted.
        }
        await sleep(200);
      }
    };

    // The client library with its defaults: no call may fail, it must find each new leader (and
    // the workers, re-registered there) by itself. A create never answers EEXIST (its own retry).
    const fsClient = async (c: number, fs: FileSystem): Promise<void> => {
      const mine: string[] = [];
      for (let n = 0; !stop; n++) {
        const path = `/fs/c${c}/f${n}`;
        const bytes = randomBytes(1 + Math.floor(rng() * FS_MAX_FILE_BYTES));
        const callAt = performance.now();
        try {
          await fs.writeFile(path, bytes, {
            overwrite: false,
            parents: true,
            blockSizeBytes: FS_BLOCK_BYTES,
          });
          fsAcked.set(path, sha(bytes));
          mine.push(path);
          completions.push({ callAt, doneAt: performance.now(), write: true });
        } catch (err) {
          fsFailures.push(`write ${path}: ${(err as Error).message}`);
        }
        const back = mine[Math.floor(rng() * mine.length)];
        if (back === undefined) continue;
        const readAt = performance.now();
        try {
          const got = await fs.readFile(back);
          fsReads++;
          if (sha(got) !== fsAcked.get(back)) fsFailures.push(`read ${back}: different bytes`);
          completions.push({ callAt: readAt, doneAt: performance.now(), write: false });
        } catch (err) {
          fsFailures.push(`read ${back}: ${(err as Error).message}`);
        }
      }
    };

    const running = [
      ...Array.from({ length: LIN_CLIENTS }, (_, c) => linClient(c, ha.client())),
      ...Array.from({ length: DUR_CLIENTS }, (_, c) => durClient(c, ha.client())),
      blockClient(ha.client()),
      ...Array.from({ length: FS_CLIENTS }, (_, c) => fsClient(c, ha.fileSystem())),
    ];

    const kills: { at: number; leaderAfterMs: number }[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        await sleep(1500);
        const leader = await ha.waitLeader();
        const at = performance.now();
        await ha.mini.stopNode(leader, 'SIGKILL');
        const next = await ha.waitLeader(leader, 20_000);
        kills.push({ at, leaderAfterMs: performance.now() - at });
        t.diagnostic(
          `kill ${k + 1}: master-${leader.index} killed, master-${next.index} leads after ${Math.round(performance.now() - at)} ms`,
        );
        // Back to three masters for the next round (it rejoins as a standby).
        await ha.mini.restartNode(leader);
      }
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(running);
    }

    // Takeover and resumption, for every kill.
    for (const [i, k] of kills.entries()) {
      assert.ok(
        k.leaderAfterMs <= TAKEOVER_BOUND_MS,
        `kill ${i + 1}: a new leader after ${Math.round(k.leaderAfterMs)} ms`,
      );
      for (const write of [true, false]) {
        const first = completions
          .filter((c) => c.write === write && c.callAt >= k.at)
          .reduce((m, c) => Math.min(m, c.doneAt), Infinity);
        const resumedMs = first - k.at;
        t.diagnostic(
          `kill ${i + 1}: ${write ? 'writes' : 'reads'} resumed after ${Math.round(resumedMs)} ms`,
        );
        assert.ok(
          resumedMs <= TAKEOVER_BOUND_MS,
          `kill ${i + 1}: ${write ? 'writes' : 'reads'} resumed after ${Math.round(resumedMs)} ms`,
        );
      }
    }

    // The final state of every key joins the history, then the whole history must linearize.
    for (let i = 0; i < LIN_KEYS; i++) {
      const key = `/lin/k${i}`;
      const callAt = performance.now();
      const output: FileOutput = await admin
        .call(MasterCalls.GetStatus, { path: key })
        .then((st): FileOutput => ({ ok: true, mode: st.mode }))
        .catch((err: unknown) => outcome(err) ?? assert.fail(`final stat of ${key} failed: ${String(err)}`));
      history.push({ key, input: { kind: 'stat' }, output, callAt, returnAt: performance.now() });
    }
    const known = history.filter((o) => o.output !== undefined).length;
    t.diagnostic(`history: ${history.length} operations (${history.length - known} with unknown outcome)`);
    assert.ok(known > 100, `enough operations completed (${known})`);
    const lin = checkLinearizable(fileModel, history);
    t.diagnostic(`linearizability search: ${lin.steps} steps`);
    assert.deepEqual(lin.exhausted, []);
    assert.ok(lin.ok, `history not linearizable for ${lin.failedKeys.join(', ')}`);

    // Every acknowledged file is there; nothing is there that nobody created.
    const present = new Set<string>();
    let startAfter: string | undefined;
    for (;;) {
      const page = await admin.call(MasterCalls.List, {
        path: '/dur',
        limit: 1000,
        ...(startAfter === undefined ? {} : { startAfter }),
      });
      for (const e of page.entries) present.add(`/dur/${e.name}`);
      if (page.nextStartAfter === undefined) break;
      startAfter = page.nextStartAfter;
    }
    assert.deepEqual(durRefused, [], 'creates of unique paths refused');
    const lost = [...durAcked].filter((p) => !present.has(p));
    assert.deepEqual(lost, [], 'acknowledged files lost');
    const strangers = [...present].filter((p) => !durInvoked.has(p));
    assert.deepEqual(strangers, [], 'files nobody created');
    t.diagnostic(`durability: ${durAcked.size} acknowledged creates, all present`);

    // Workers follow the leader: both registered with the last one, and the blocks written
    // through earlier leaders have known locations again (rebuilt from the workers' reports).
    await waitFor(
      'both workers registered with the last leader',
      async () => (await ha.liveWorkers(admin)) === 2,
      20_000,
    );
    assert.ok(blocks.length >= 3, `blocks written across failovers (${blocks.length})`);
    await waitFor(
      'block locations rebuilt',
      async () => {
        for (const b of blocks) {
          const loc = await admin.call(MasterCalls.GetBlockLocations, { path: b.path });
          if ((loc.blocks[0]?.workers.length ?? 0) === 0) return false;
        }
        return true;
      },
      20_000,
    );
    // The client library never gave up, and every file it was told is written reads back whole.
    assert.deepEqual(fsFailures, [], 'client library calls failed during failovers');
    assert.ok(fsAcked.size >= 10, `client library files written across failovers (${fsAcked.size})`);
    const checker = ha.fileSystem();
    for (const [path, want] of fsAcked) assert.equal(sha(await checker.readFile(path)), want, path);
    t.diagnostic(`client library: ${fsAcked.size} files written, ${fsReads} read back during failovers`);

    const leader = await ha.waitLeader();
    const m = await ha.metrics(leader);
    assert.equal(metricValue(m, 'strata_master_is_leader'), 1);
    assert.ok((metricValue(m, 'strata_master_leadership_changes_total', 'event="elected"') ?? 0) >= 1);
    assert.ok((metricValue(m, 'strata_master_etcd_request_duration_seconds_count', 'op="commit"') ?? 0) > 0);
    for (const s of ha.masters.filter((x) => x !== leader)) {
      assert.equal(
        metricValue(await ha.metrics(s), 'strata_master_is_leader'),
        0,
        `master-${s.index} is a standby`,
      );
    }

    // `strata report` (client config listing every master) names the three and the leader.
    const report = await runStrata(['--conf', ha.mini.clientConfPath, 'report'], { timeoutMs: 30_000 });
    assert.equal(report.code, 0, report.stderr);
    const leaderAddr = `127.0.0.1:${leader.rpcPort}`;
    assert.ok(report.stdout.includes(`leader: ${leaderAddr}\n`), report.stdout);
    for (const s of ha.masters) {
      const addr = `127.0.0.1:${s.rpcPort}`;
      assert.ok(report.stdout.includes(`${addr} (${s === leader ? 'leader' : 'standby'})`), report.stdout);
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function seeded(seed: number): (() => number) & { seed: number } {
  let s = seed;
  const f = (): number => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
  return Object.assign(f, { seed });
}
