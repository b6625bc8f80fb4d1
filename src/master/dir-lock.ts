/**
 * One master per metadata directory: a lock file holding the owner's pid, created exclusively.
 * A lock left by a dead process (kill -9, power loss) is taken over; a lock held by a live one
 * is a clear error instead of two masters writing one store.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StrataError } from '../common/errors.js';
import { processAlive } from '../common/runtime.js';

export const LOCK_FILE = 'master.lock';

export interface DirLock {
  release(): void;
}

export function lockDir(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new StrataError(
          'STRATA_LOCKED',
          `${dir} is in use by another master (pid ${owner}); stop it first, or point master.meta_dir elsewhere`,
          { details: { pid: owner, dir } },
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new StrataError('STRATA_LOCKED', `${dir}: could not take the master lock`);
}
