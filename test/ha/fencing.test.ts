// A leader frozen with SIGSTOP (its lease expires, another master leads) and then resumed with
// SIGCONT cannot commit anything and answers nothing from its stale memory: calls it had in
// flight fail with "not leader" or are refused by the fence (checked against etcd's revisions:
// no key it alone could write changed after the new leader was elected), reads sent to it while
// frozen are refused rather than answered, and it rejoins as a standby. A create whose commit
// etcd took before the freeze may be answered only after the resume (its reply was still in the
// frozen process): that success is allowed, and its entry must carry a revision from before the
// election. The client library moves
// to the new leader while the old one is still frozen.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import type { StrataError } from '../../src/common/errors.js';
import { createEtcdClient } from '../../src/meta/etcd/index.js';
import { prefixEnd, writeU64 } from '../../src/meta/index.js';
import { ROOT_ID } from '../../src/master/namespace/index.js';
import { MasterCalls } from '../../src/protocol/index.js';
import { requireTools } from '../helpers/ci.js';
import { ETCD_BIN } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { metricValue } from '../helpers/metrics.js';
import { HaCluster } from './ha-cluster.js';

const skip = requireTools(ETCD_BIN);
/** Creates kept in flight to the frozen leader. */
const IN_FLIGHT = 16;

describe('fencing a deposed leader', { skip, timeout: 120_000 }, () => {
  test('SIGSTOP the leader until another leads, SIGCONT: it cannot commit or answer', async (t) => {
    const ha = await HaCluster.start(t, { masters: 3 });
    const admin = ha.client();
    const old = await ha.waitLeader();
    await admin.call(MasterCalls.Mkdir, { path: '/a' });
    const aId = (await admin.call(MasterCalls.GetStatus, { path: '/a' })).id;
    // Talks to the old leader only and never retries: what it gets is what that master answered.
    const direct = ha.client({
      addresses: [{ host: '127.0.0.1', port: old.rpcPort }],
      retryMax: 0,
      deadlineMs: 30_000,
      // It keeps its connection to the frozen master: calls wait for it to wake up.
      keepaliveIntervalMs: 60_000,
      keepaliveTimeoutMs: 60_000,
    });
    const pid = old.proc?.child.pid;
    assert.ok(pid !== undefined);
    // The client library (default settings), connected to the leader before the freeze: it must
    // notice the frozen leader (keepalive) and move to the next one without waiting for it.
    const lib = ha.fileSystem();
    await lib.mkdir('/lib');

    let stop = false;
    // A failed assertion must not leave the writers looping (they kept the file's process alive
    // until the runner's 10-minute timeout).
    t.after(() => {
      stop = true;
    });
    let stoppedAt = Infinity;
    let contAt = Infinity;
    const answers: { ok: boolean; code?: string; at: number; name: string }[] = [];
    let n = 0;
    const writer = async (): Promise<void> => {
      while (!stop) {
        // A fresh name in a fresh directory: the master fetches before it commits, so some
        // creates are between the two when the process freezes.
        const i = n++;
        try {
          await direct.call(MasterCalls.Create, { path: `/a/d${i}/f`, parents: true });
          answers.push({ ok: true, at: performance.now(), name: `d${i}` });
        } catch (err) {
          const code = (err as StrataError).code;
          answers.push({ ok: false, code, at: performance.now(), name: `d${i}` });
          if (performance.now() > stoppedAt) return;
        }
      }
    };
    const writers = Array.from({ length: IN_FLIGHT }, () => writer());
    await waitFor('creates going through the leader', () => answers.filter((a) => a.ok).length >= 50, 20_000);

    process.kill(pid, 'SIGSTOP');
    stoppedAt = performance.now();
    let libAnswer: string | undefined;
    void lib.mkdir('/lib/during-freeze').then(
      () => (libAnswer = 'ok'),
      (err: unknown) => (libAnswer = (err as StrataError).code),
    );
    let resumed = false;
    t.after(() => {
      if (!resumed) process.kill(pid, 'SIGCONT');
    });
    const next = await ha.waitLeader(old, 20_000);
    t.diagnostic(
      `master-${next.index} leads ${Math.round(performance.now() - stoppedAt)} ms after the freeze`,
    );
    // The new leader changes what the old one has cached.
    await admin.call(MasterCalls.Mkdir, { path: '/after-freeze' });
    await admin.call(MasterCalls.SetAttr, { path: '/a', mode: 0o700 });
    // Sent to the frozen master: read when it wakes up, after another leader committed.
    const staleRead = direct.call(MasterCalls.GetStatus, { path: '/after-freeze' }).then(
      () => 'answered',
      (err: unknown) => (err as StrataError).code,
    );
    const staleList = direct.call(MasterCalls.GetStatus, { path: '/a' }).then(
      (st) => `answered mode ${st.mode.toString(8)}`,
      (err: unknown) => (err as StrataError).code,
    );
    const raw = createEtcdClient({ endpoints: ha.etcd.endpoints });
    t.after(() => raw.close());
    // The revision of the new leader's first write: the old leader resumes after it, so nothing
    // it commits after resuming could carry a lower one.
    const marker = dataKey(ha, 0x03, ROOT_ID, 'after-freeze');
    const markerKv = (await raw.kv.range({ key: marker })).kvs[0];
    assert.ok(markerKv !== undefined);
    const elected = Number(markerKv.create_revision);

    await waitFor('the client library answered while the old leader is frozen', () => libAnswer, 20_000);
    assert.equal(libAnswer, 'ok');
    t.diagnostic(
      `client library call answered ${Math.round(performance.now() - stoppedAt)} ms after the freeze`,
    );
    assert.equal((await admin.call(MasterCalls.GetStatus, { path: '/lib/during-freeze' })).type, 'dir');

    process.kill(pid, 'SIGCONT');
    resumed = true;
    contAt = performance.now();
    stop = true;
    await Promise.all(writers);
    assert.equal(
      await staleRead,
      'STRATA_NOT_LEADER',
      'a read sent to the frozen leader is refused, not answered from its cache',
    );
    assert.equal(await staleList, 'STRATA_NOT_LEADER');

    // A success answered after the resume is a commit etcd took before the freeze: its entry is
    // there, written before the new leader's first write.
    const lateSuccesses = answers.filter((a) => a.ok && a.at > contAt);
    for (const a of lateSuccesses) {
      const kv = (await raw.kv.range({ key: dataKey(ha, 0x03, aId, a.name) })).kvs[0];
      assert.ok(kv !== undefined, `/a/${a.name} was acknowledged after the resume but is missing`);
      assert.ok(
        Number(kv.mod_revision) < elected,
        `/a/${a.name} acknowledged after the resume was committed at revision ${kv.mod_revision}, after the election (${elected})`,
      );
    }
    t.diagnostic(
      `creates committed before the freeze and answered after the resume: ${lateSuccesses.length}`,
    );
    const failed = answers.filter((a) => !a.ok && a.at > stoppedAt);
    t.diagnostic(
      `creates in flight at the freeze: ${failed.length}, codes ${[...new Set(failed.map((a) => a.code))].join(', ')}`,
    );
    for (const a of failed)
      assert.ok(a.code === 'STRATA_NOT_LEADER' || a.code === 'STRATA_UNAVAILABLE', `unexpected ${a.code}`);

    // No directory entry under /a (only the old leader created there) changed after the new
    // leader's first write.
    const dataPrefix = dataKey(ha, 0x03, aId, '');
    const rows = await raw.kv.range({
      key: dataPrefix,
      range_end: Buffer.from(prefixEnd(dataPrefix) as Uint8Array),
    });
    const late = rows.kvs.filter((kv) => Number(kv.mod_revision) > elected);
    assert.deepEqual(
      late.map((kv) => kv.key.subarray(dataPrefix.length).toString()),
      [],
      'entries written by the deposed leader after the election',
    );
    assert.equal(
      (await admin.call(MasterCalls.GetStatus, { path: '/a' })).mode,
      0o700,
      "the new leader's change stands",
    );

    // The old master steps down and stands by; exactly one leader.
    await waitFor(
      'the old leader standing by',
      async () => {
        const res = await fetch(`http://127.0.0.1:${old.webPort}/leader`).catch(() => undefined);
        return res?.status === 503;
      },
      10_000,
    );
    const m = await ha.metrics(old);
    assert.equal(metricValue(m, 'strata_master_is_leader'), 0);
    assert.equal(metricValue(m, 'strata_master_leadership_changes_total', 'event="deposed"'), 1);
    const fenced = metricValue(m, 'strata_master_fenced_commits_total') ?? 0;
    t.diagnostic(`commits refused by the fence on the old leader: ${fenced}`);
    // Creates that had fetched but not committed when it froze tried to commit when it woke.
    assert.ok(fenced >= 1, 'the fence refused the commits the old leader attempted after waking');
    assert.equal(await ha.leaderNow(), next);
  });
});

/** The etcd key of a namespace record `tag id name` (namespace/keys.ts layout under meta/d/). */
function dataKey(ha: HaCluster, tag: number, id: number, name: string): Buffer {
  const k = Buffer.alloc(9);
  k[0] = tag;
  writeU64(k, 1, id);
  return Buffer.concat([Buffer.from(`${ha.etcdRoot}meta/d/`), k, Buffer.from(name)]);
}
