// The pieces that carry clients through a leader change, in process with fakes: the client
// library asks again (same request id, within its deadline) while masters say "not leader" or
// "unavailable", and a new leader holds back worker-dependent answers during its window only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MasterClient } from '../../src/client/master-client.js';
import type { RpcChannel } from '../../src/client/index.js';
import { FsError, StrataError } from '../../src/common/errors.js';
import { AddBlock, GetBlockLocations, GetStatus } from '../../src/protocol/master-calls.js';
import type { CallOptions, CallContext } from '../../src/rpc/api.js';
import { ConnectionError, NotLeaderError, UnavailableError } from '../../src/rpc/index.js';
import { WorkerWindow } from '../../src/master/ha/worker-window.js';

const addr = (port: number): { host: string; port: number } => ({ host: '127.0.0.1', port });

/** A master channel answering from a script of errors, then `result`; records each call's options. */
function scripted(errors: StrataError[], result: unknown): { channel: RpcChannel; seen: CallOptions[] } {
  const seen: CallOptions[] = [];
  const callWithPayload = (_def: unknown, _req: unknown, opts?: CallOptions) => {
    seen.push(opts ?? {});
    const err = errors.shift();
    return err === undefined
      ? Promise.resolve({ body: result, payload: Buffer.alloc(0) })
      : Promise.reject(err);
  };
  const unused = (): never => assert.fail('not used');
  const channel = {
    callWithPayload,
    call: async (def: unknown, req: unknown, opts?: CallOptions) =>
      (await callWithPayload(def, req, opts)).body,
    read: unused,
    write: unused,
    close: () => Promise.resolve(),
  } as unknown as RpcChannel;
  return { channel, seen };
}

test('the client library waits out a leader change with one request id', async () => {
  const errors = [
    new ConnectionError('cannot connect to 127.0.0.1:1: ECONNREFUSED'),
    new NotLeaderError(),
    new NotLeaderError(),
    new UnavailableError('workers are still re-registering; retry'),
  ];
  const { channel, seen } = scripted(errors, { ok: 1 });
  const mc = new MasterClient(channel, [addr(1), addr(2), addr(3)], undefined, 10_000);
  assert.deepEqual(await mc.call(GetStatus, { path: '/x' }), { ok: 1 });
  assert.equal(seen.length, 5);
  const ids = new Set(seen.map((o) => o.requestId));
  assert.equal(ids.size, 1, 'every round carries the same request id');
  assert.ok([...ids][0] !== undefined);
});

test('the wait ends at the call deadline with a clear unavailable error', async () => {
  const errors = Array.from({ length: 1000 }, () => new NotLeaderError());
  const { channel } = scripted(errors, {});
  const mc = new MasterClient(channel, [addr(1), addr(2)], undefined, 400);
  const t0 = performance.now();
  await assert.rejects(mc.call(GetStatus, { path: '/x' }), (err: unknown) => {
    return (
      err instanceof StrataError &&
      err.code === 'STRATA_UNAVAILABLE' &&
      /no master answered/.test(err.message)
    );
  });
  assert.ok(performance.now() - t0 < 5_000);
});

test('with one master address, an unreachable master fails at once; answers are not retried', async () => {
  const one = scripted([new ConnectionError('ECONNREFUSED'), new ConnectionError('ECONNREFUSED')], {});
  const single = new MasterClient(one.channel, [addr(1)], undefined, 10_000);
  await assert.rejects(single.call(GetStatus, { path: '/x' }), { code: 'STRATA_UNAVAILABLE' });
  assert.equal(one.seen.length, 1);
  const refusal = scripted([new FsError('ENOENT', '/x: no such file or directory')], {});
  const ha = new MasterClient(refusal.channel, [addr(1), addr(2)], undefined, 10_000);
  await assert.rejects(ha.call(GetStatus, { path: '/x' }), { code: 'ENOENT' });
  assert.equal(refusal.seen.length, 1);
});

test('a new leader holds back "no room" and "no known copy" during its window only', async () => {
  let now = 1000;
  const window = new WorkerWindow(5000, () => now);
  const ctx = {} as CallContext;
  const noRoom = window.guard(AddBlock.code, () => Promise.reject(new FsError('ENOSPC', 'no room')));
  const noCopy = window.guard(GetBlockLocations.code, () =>
    Promise.resolve({ blocks: [{ workers: ['w1'] }, { workers: [] }] }),
  );
  const other = window.guard(GetStatus.code, () => Promise.reject(new FsError('ENOENT', 'gone')));
  await assert.rejects(noRoom({}, ctx), { code: 'STRATA_UNAVAILABLE' });
  await assert.rejects(noCopy({}, ctx), { code: 'STRATA_UNAVAILABLE' });
  await assert.rejects(other({}, ctx), { code: 'ENOENT' });
  now += 5000;
  await assert.rejects(noRoom({}, ctx), { code: 'ENOSPC' });
  assert.deepEqual(await noCopy({}, ctx), { blocks: [{ workers: ['w1'] }, { workers: [] }] });
});

test('the window stays open for workers the previous leader knew, at most the lost interval', async () => {
  let now = 1000;
  const reported = new Set<string>();
  const window = new WorkerWindow(5000, () => now, {
    ids: new Set(['w1', 'w2']),
    reported: (id) => reported.has(id),
    maxWindowMs: 30_000,
  });
  const ctx = {} as CallContext;
  const noCopy = window.guard(GetBlockLocations.code, () => Promise.resolve({ blocks: [{ workers: [] }] }));
  now += 6000;
  reported.add('w1');
  await assert.rejects(noCopy({}, ctx), (err: unknown) => {
    assert.equal((err as StrataError).code, 'STRATA_UNAVAILABLE');
    assert.match((err as Error).message, /waiting for 1 worker\(s\) the previous leader knew/);
    return true;
  });
  reported.add('w2');
  assert.equal(window.open, false, 'closed once every known worker has reported');
  assert.deepEqual(await noCopy({}, ctx), { blocks: [{ workers: [] }] });

  // A known worker that never comes back holds the window only until the lost interval.
  now = 0;
  const capped = new WorkerWindow(5000, () => now, {
    ids: new Set(['gone']),
    reported: () => false,
    maxWindowMs: 30_000,
  });
  now = 29_999;
  assert.equal(capped.open, true);
  now = 30_000;
  assert.equal(capped.open, false);
});
