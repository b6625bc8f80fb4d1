import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { IN_CI } from './ci.js';

/** A fresh temporary directory removed when the test ends (kept with STRATA_KEEP_TMP=1). */
export function tempDir(t: Pick<TestContext, 'after'>, prefix = 'strata-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    if (process.env.STRATA_KEEP_TMP !== '1') rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/**
 * A tmpfs of `size` (mount's syntax: "64k", "2m") on a fresh directory, unmounted and removed
 * when the test ends: a disk that fills up for real. Undefined, with the test skipped, when not
 * root; under CI (which runs as root) that fails the test instead.
 */
export function smallTmpfs(t: Pick<TestContext, 'after' | 'skip'>, size: string): string | undefined {
  if (process.getuid?.() !== 0) {
    if (IN_CI) throw new Error('mounting a tmpfs needs root, which CI has');
    t.skip('mounting a tmpfs needs root');
    return undefined;
  }
  // Not tempDir(): its removal would run before the unmount.
  const dir = mkdtempSync(join(tmpdir(), 'strata-test-tmpfs-'));
  t.after(() => {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], {
    encoding: 'utf8',
  });
  if (mounted.status !== 0)
    throw new Error(`mount -t tmpfs -o size=${size} ${dir}: ${mounted.stderr.trim()}`);
  return dir;
}
