/**
 * CPU time of processes, for figures that do not depend on how busy a shared machine is: the CPU
 * a transfer costs per GiB (user + system) stays put while its wall-clock rate swings with load.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux we run on). */
const CLOCK_TICKS_PER_S = 100;

/** User + system CPU milliseconds of a process so far (Linux /proc), or NaN where unreadable. */
export function processCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * User + system CPU milliseconds of a process's main thread (its event loop; the rest is libuv's
 * pool, V8's compiler and GC threads), or NaN where unreadable.
 */
export function mainThreadCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`);
}

function statCpuMs(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): utime is the 14th
    // field of the line, stime the 15th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU milliseconds of this process so far. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU seconds per GiB moved, from milliseconds spent over `bytes`. */
export function cpuSecondsPerGiB(cpuMs: number, bytes: number): number {
  return cpuMs / 1000 / (bytes / 2 ** 30);
}
