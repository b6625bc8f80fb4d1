/**
 * Node flags every long-running strata process runs with. `--initial-heap-size=64` keeps V8 from
 * running back-to-back full collections while a small heap receives gigabytes per second of
 * buffers (measured: ~60% of a bulk receiver's CPU without it; see docs/rpc.md). V8 refuses it in
 * NODE_OPTIONS and at run time, so the bin's shebang carries it, and code that spawns strata
 * processes passes these flags explicitly.
 */
export const STRATA_NODE_FLAGS: readonly string[] = ['--initial-heap-size=64'];

/** Whether a process with this pid exists (EPERM: it does, and belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
