// Proves InboundStream.takeQueued: chunks already received are taken at once, in order, mixed
// freely with awaited next(); credit is granted for them as for iterated ones; none queued gives
// undefined and the next chunk then reaches the waiting iterator.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { InboundStream } from '../../src/rpc/flow.js';

test('takeQueued drains queued chunks in order, grants credit, and leaves waiting to next()', async () => {
  const grants: number[] = [];
  const inbound = new InboundStream(
    40,
    (bytes) => grants.push(bytes),
    () => {},
  );
  const chunks = [1, 2, 3, 4].map((v) => Buffer.alloc(10, v));
  for (const c of chunks) inbound.push(c);
  const it = inbound[Symbol.asyncIterator]();
  assert.equal(inbound.takeQueued(), chunks[0]);
  assert.equal((await it.next()).value, chunks[1]);
  assert.deepEqual(grants, [20], 'half the window consumed: granted back');
  assert.equal(inbound.takeQueued(), chunks[2]);
  assert.equal(inbound.takeQueued(), chunks[3]);
  assert.deepEqual(grants, [20, 20]);
  assert.equal(inbound.queuedBytes, 0);
  assert.equal(inbound.takeQueued(), undefined, 'nothing queued');
  const waiting = it.next();
  const late = Buffer.alloc(5, 9);
  inbound.push(late);
  assert.equal((await waiting).value, late, 'a chunk arriving later goes to the waiting iterator');
  inbound.end();
  assert.equal(inbound.takeQueued(), undefined);
  assert.equal((await it.next()).done, true);
});
