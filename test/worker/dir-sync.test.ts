// Proves the group-committed directory sync: publishes arriving while a sync runs share the one
// next sync (each still waits for a sync that began after it asked), and failures reach the callers.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DirSyncer } from '../../src/worker/fs-util.js';

function controlledSyncs(): {
  calls: string[];
  finish(i: number, err?: Error): void;
  fn: (dir: string) => Promise<void>;
} {
  const calls: string[] = [];
  const settle: ((err?: Error) => void)[] = [];
  return {
    calls,
    finish(i, err) {
      settle[i]?.(err);
    },
    fn(dir) {
      calls.push(dir);
      return new Promise<void>((resolve, reject) => settle.push((err) => (err ? reject(err) : resolve())));
    },
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('callers during a running sync share the next one; none is answered by a sync that began before it', async () => {
  const c = controlledSyncs();
  const s = new DirSyncer(c.fn);
  let firstDone = false;
  const first = s.sync('/a').then(() => (firstDone = true));
  const later = Array.from({ length: 10 }, () => s.sync('/a'));
  let laterDone = 0;
  for (const p of later) void p.then(() => laterDone++);
  const other = s.sync('/b');
  await tick();
  assert.deepEqual(c.calls, ['/a', '/b'], 'one sync per directory so far');
  c.finish(0);
  await tick();
  await tick();
  assert.equal(firstDone, true);
  assert.equal(laterDone, 0, 'the later callers wait for a sync that started after them');
  assert.deepEqual(c.calls, ['/a', '/b', '/a'], 'the ten share one more sync');
  c.finish(2);
  await Promise.all(later);
  c.finish(1);
  await other;
  await first;
  // Idle again: a new caller starts a sync at once.
  const again = s.sync('/a');
  await tick();
  assert.equal(c.calls.length, 4);
  c.finish(3, new Error('EIO'));
  await assert.rejects(again, /EIO/);
  const after = s.sync('/a');
  await tick();
  c.finish(4);
  await after;
  assert.equal(c.calls.length, 5);
});
