/**
 * This machine's identity for short-circuit I/O: a worker whose `hostId` equals ours runs on the
 * same machine, so its block files may be opened directly. Equal ids are only a hint: the reader
 * or writer still has to open the block path, and falls back to RPC when it cannot (another
 * container on the same host, a different mount namespace).
 *
 * Computed exactly as the worker computes its own (a hash of /etc/machine-id and the kernel boot
 * id), so the two agree without talking. `$STRATA_HOST_ID` overrides it on the client side only
 * (tests and benchmarks use it to force remote I/O).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function localHostId(env: Record<string, string | undefined> = process.env): string {
  const fromEnv = env.STRATA_HOST_ID;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  cached ??= machineHostId();
  return cached;
}

/** Must stay identical to the worker's `machineHostId`. */
export function machineHostId(): string {
  const read = (paths: string[]): string => {
    for (const p of paths) {
      try {
        const v = readFileSync(p, 'utf8').trim();
        if (v !== '') return v;
      } catch {
        // try the next one
      }
    }
    return '';
  };
  const machineId = read(['/etc/machine-id', '/var/lib/dbus/machine-id']);
  const bootId = read(['/proc/sys/kernel/random/boot_id']);
  return createHash('sha256').update(`${machineId}\n${bootId}`).digest('hex').slice(0, 32);
}
