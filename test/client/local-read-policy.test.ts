// Where short-circuit reads run (src/client/local-read-policy.ts): inline while reads run at
// memory speed, on the thread pool for a while after one waited for the device, always inline
// from a MEM tier, never beyond the configured size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INLINE_READ_BACKOFF_MS, LocalReadPolicy } from '../../src/client/local-read-policy.js';
import type { InlineReadState } from '../../src/client/local-read-policy.js';

const MiB = 1024 * 1024;
const disk = (): InlineReadState => ({ inMemory: false, poolUntilMs: 0, slowReads: 0 });

test('reads up to the limit run inline; larger ones and a limit of 0 use the pool', () => {
  const policy = new LocalReadPolicy(16 * MiB);
  assert.equal(policy.inline(disk(), 4 * MiB, 0), true);
  assert.equal(policy.inline(disk(), 16 * MiB, 0), true);
  assert.equal(policy.inline(disk(), 16 * MiB + 1, 0), false);
  const off = new LocalReadPolicy(0);
  assert.equal(off.inline(disk(), 4096, 0), false);
  assert.equal(off.inline({ inMemory: true, poolUntilMs: 0, slowReads: 0 }, 4096, 0), false);
});

test('a read at memory speed keeps reads inline; a device-bound one moves every disk file to the pool for a while', () => {
  const policy = new LocalReadPolicy(16 * MiB);
  const a = disk();
  const b = disk();
  // 4 MiB in 0.4 ms (10 GB/s): a page-cache copy.
  policy.observe(a, 4 * MiB, 0.4, 100);
  assert.equal(policy.inline(a, 4 * MiB, 100), true);
  assert.equal(policy.deviceBoundReads, 0);
  // 4 MiB in 3 ms: slow (faulting in a fresh buffer's pages looks like this), but one is not enough.
  policy.observe(a, 4 * MiB, 3, 150);
  assert.equal(policy.inline(a, 4 * MiB, 150), true);
  assert.equal(policy.deviceBoundReads, 0);
  // A fast read in between starts the count again.
  policy.observe(a, 4 * MiB, 0.4, 160);
  policy.observe(a, 4 * MiB, 20, 170);
  assert.equal(policy.inline(a, 4 * MiB, 170), true);
  // 4 MiB in 20 ms (200 MB/s), the second in a row: it waits for the device.
  policy.observe(a, 4 * MiB, 20, 200);
  assert.equal(policy.deviceBoundReads, 1);
  assert.equal(policy.inline(a, 4 * MiB, 201), false);
  assert.equal(policy.inline(b, 4 * MiB, 201), false, 'other disk files back off too');
  assert.equal(policy.inline(b, 4 * MiB, 200 + INLINE_READ_BACKOFF_MS - 1), false);
  assert.equal(
    policy.inline(a, 4 * MiB, 200 + INLINE_READ_BACKOFF_MS),
    true,
    'tried inline again after the backoff',
  );
  assert.equal(policy.inline(b, 4 * MiB, 200 + INLINE_READ_BACKOFF_MS), true);
});

test('MEM-tier files stay inline whatever the timing; small reads below the always-inline size too', () => {
  const policy = new LocalReadPolicy(16 * MiB, 128 * 1024);
  const mem: InlineReadState = { inMemory: true, poolUntilMs: 0, slowReads: 0 };
  const d = disk();
  policy.observe(mem, 4 * MiB, 50, 10);
  policy.observe(mem, 4 * MiB, 50, 10);
  assert.equal(policy.deviceBoundReads, 0, 'a slow copy from memory is preemption, not the device');
  policy.observe(d, 4 * MiB, 50, 10);
  policy.observe(d, 4 * MiB, 50, 10);
  assert.equal(policy.inline(mem, 4 * MiB, 11), true);
  assert.equal(policy.inline(d, 4 * MiB, 11), false);
  assert.equal(policy.inline(d, 128 * 1024, 11), true, 'the mount keeps its small reads inline');
});
