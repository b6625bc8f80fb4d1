/**
 * A suite that needs an outside component (etcd, fio, chromium, a FUSE device) calls
 * `requireTool`: locally a missing tool skips with a reason, under CI=true it fails, so CI can
 * never pass by skipping.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

export function which(name: string): string | undefined {
  if (name.includes('/')) {
    try {
      accessSync(name, constants.X_OK);
      return name;
    } catch {
      return undefined;
    }
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * Returns a skip reason (to pass as `{ skip }`) or undefined when every tool is present.
 * Under CI it throws instead.
 */
export function requireTools(...names: string[]): string | undefined {
  const missing = names.filter((n) => which(n) === undefined);
  if (missing.length === 0) return undefined;
  const reason = `missing ${missing.join(', ')} (install the Debian packages listed in .ci/run)`;
  if (IN_CI) throw new Error(`CI=true and ${reason}`);
  return reason;
}
