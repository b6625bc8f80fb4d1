// Proves exactly-once retries: RetryCache runs an attempt once per request id (remembering results
// and final errors for a TTL and a bounded count, coalescing a retry that arrives mid-attempt), and
// end to end a call whose connection drops (mid-call, or just as the answer leaves) is retried with
// the same request id and gets the first result instead of a second effect.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { FsError, StrataError } from '../../src/common/errors.js';
import { MemoryRetryCacheStore, RetryCache } from '../../src/rpc/index.js';
import { waitFor } from '../helpers/wait.js';
import { increment } from './fixtures/calls.js';
import { newClient, sleep, startServer } from './helpers.js';
import { TcpProxy } from './proxy.js';

test('a duplicate request id gets the remembered result; the attempt runs once', async () => {
  const cache = new RetryCache();
  let runs = 0;
  const attempt = async (): Promise<number> => ++runs;
  assert.equal(await cache.run('r1', attempt), 1);
  assert.equal(await cache.run('r1', attempt), 1);
  assert.equal(await cache.run('r2', attempt), 2, 'another id runs on its own');
  assert.equal(runs, 2);
  assert.deepEqual(cache.stats, { replayed: 1, coalesced: 0, executed: 2 });
});

test('a retry arriving while the first attempt runs waits for it and gets the same outcome', async () => {
  const cache = new RetryCache();
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const attempt = async (): Promise<string> => {
    runs++;
    await gate;
    return `result-${runs}`;
  };
  const first = cache.run('r', attempt);
  const second = cache.run('r', attempt);
  const third = cache.run('r', attempt);
  assert.equal(cache.inFlight, 1);
  release();
  assert.deepEqual(await Promise.all([first, second, third]), ['result-1', 'result-1', 'result-1']);
  assert.equal(runs, 1);
  assert.equal(cache.stats.coalesced, 2);
  assert.equal(cache.inFlight, 0);
});

test('final errors are remembered with their code; "nothing happened" errors are not', async () => {
  const cache = new RetryCache();
  let runs = 0;
  const enoent = async (): Promise<never> => {
    runs++;
    throw new FsError('ENOENT', '/x: no such file or directory', { details: { path: '/x' } });
  };
  await assert.rejects(cache.run('a', enoent), FsError);
  await assert.rejects(cache.run('a', enoent), (err: unknown) => {
    assert.ok(err instanceof FsError, 'a replayed POSIX error is an FsError again');
    assert.equal(err.code, 'ENOENT');
    assert.deepEqual(err.details, { path: '/x' });
    return true;
  });
  assert.equal(runs, 1);

  let leaderRuns = 0;
  const notLeaderThenOk = async (): Promise<string> => {
    leaderRuns++;
    if (leaderRuns === 1) throw new StrataError('STRATA_NOT_LEADER', 'not the leader');
    return 'done';
  };
  await assert.rejects(cache.run('b', notLeaderThenOk), /not the leader/);
  assert.equal(await cache.run('b', notLeaderThenOk), 'done', 'a retryable error left no outcome behind');
  assert.equal(leaderRuns, 2);

  const plain = async (): Promise<never> => {
    throw new Error('bug');
  };
  await assert.rejects(cache.run('c', plain), /^Error: bug$/);
  await assert.rejects(cache.run('c', plain), (err: unknown) => {
    return err instanceof StrataError && err.code === 'STRATA_INTERNAL' && err.message === 'internal error';
  });
});

test('a retry waiting on an attempt that ended with a retryable error runs its own', async () => {
  const cache = new RetryCache();
  let runs = 0;
  const attempt = async (): Promise<number> => {
    runs++;
    await sleep(20);
    if (runs === 1) throw new StrataError('STRATA_CANCELLED', 'the caller went away');
    return runs;
  };
  const first = cache.run('r', attempt);
  const retry = cache.run('r', attempt);
  await assert.rejects(first, /the caller went away/);
  assert.equal(await retry, 2);
});

test('outcomes expire after the TTL and the oldest go first beyond the entry limit', async () => {
  let now = 1_000;
  const cache = new RetryCache({
    store: new MemoryRetryCacheStore({ ttlMs: 100, maxEntries: 3, now: () => now }),
  });
  let runs = 0;
  const attempt = async (): Promise<number> => ++runs;
  await cache.run('a', attempt); // 1
  now += 50;
  assert.equal(await cache.run('a', attempt), 1);
  now += 60; // 'a' is 110 ms old
  assert.equal(await cache.run('a', attempt), 2, 'expired: runs again');
  await cache.run('b', attempt); // 3
  await cache.run('c', attempt); // 4
  await cache.run('d', attempt); // 5, evicts the oldest ('a')
  assert.equal(cache.size, 3);
  assert.equal(await cache.run('a', attempt), 6);
  assert.equal(await cache.run('d', attempt), 5);
});

test('a full memory store keeps exactly the newest entries; a key set again counts as new', () => {
  const max = 1000;
  const store = new MemoryRetryCacheStore({ ttlMs: 60_000, maxEntries: max, now: () => 0 });
  const ok = (value: number) => ({ ok: true as const, value });
  // Far past the bound, so the queue's front is dropped and compacted several times.
  for (let i = 0; i < 10 * max; i++) {
    store.set(`k${i}`, ok(i));
    // Key k0 is set again every 100 entries: it stays among the newest and keeps its last value.
    if (i % 100 === 99) store.set('k0', ok(-i));
    assert.ok(store.size <= max, `size ${store.size} after ${i + 1} sets`);
  }
  assert.equal(store.size, max);
  assert.deepEqual(store.get('k0'), ok(-(10 * max - 1)));
  const last = 10 * max - 1;
  for (let i = last; i > last - (max - 1); i--) assert.deepEqual(store.get(`k${i}`), ok(i), `k${i} kept`);
  assert.equal(store.get(`k${last - (max - 1)}`), undefined, 'the oldest beyond the bound is gone');
});

/** A server whose increment call is deduplicated, reached through a proxy that can drop connections. */
async function dedupServer(t: TestContext) {
  const state = { counter: 0, started: 0 };
  const cache = new RetryCache();
  const { address } = await startServer(t, (s) =>
    s.handle(
      increment,
      cache.wrap(increment, async (req) => {
        // Mutating handlers finish their change even if the caller goes away (no ctx.signal here).
        state.started++;
        state.counter += req.by;
        const value = state.counter;
        await sleep(req.delayMs);
        return { value };
      }),
    ),
  );
  const proxy = await TcpProxy.start(t, address);
  const client = newClient(t, [proxy.address], { retryBaseDelayMs: 5, reconnectBaseDelayMs: 5 });
  return { state, cache, proxy, client };
}

test('a call retried after its connection dropped mid-call joins the first attempt: one effect', async (t) => {
  const { state, cache, proxy, client } = await dedupServer(t);
  const call = client.call(increment, { by: 5, delayMs: 300 });
  await waitFor('the first attempt to start', () => state.started === 1);
  proxy.cutAll();
  assert.deepEqual(await call, { value: 5 });
  assert.equal(state.counter, 5, 'the increment happened once');
  assert.equal(proxy.accepted, 2, 'the retry came on a new connection');
  assert.equal(cache.stats.executed, 1);
  assert.equal(cache.stats.coalesced, 1);
});

test('a call whose answer was lost on the way back gets the remembered result on retry', async (t) => {
  const { state, cache, proxy, client } = await dedupServer(t);
  proxy.dropServerData = () => true; // the first bytes back from the server: the response
  assert.deepEqual(await client.call(increment, { by: 3, delayMs: 0 }), { value: 3 });
  assert.equal(state.counter, 3, 'the increment happened once');
  assert.equal(proxy.accepted, 2);
  assert.equal(cache.stats.replayed, 1);
  // A fresh request id is a new logical call and does run.
  assert.deepEqual(await client.call(increment, { by: 1, delayMs: 0 }), { value: 4 });
  // The same id given explicitly (an application-level retry) is recognised too.
  assert.deepEqual(await client.call(increment, { by: 1, delayMs: 0 }, { requestId: 'op-1' }), { value: 5 });
  assert.deepEqual(await client.call(increment, { by: 1, delayMs: 0 }, { requestId: 'op-1' }), { value: 5 });
  assert.equal(state.counter, 5);
});
