/**
 * FUSE metrics (requests, errors, latency and bytes by operation) and the wrapper that records
 * them around any `FuseOperations`, whatever binding serves the mount.
 */
import { constants } from 'node:os';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_S } from '../common/metrics.js';
import type { Registry } from '../common/metrics.js';
import type { Logger } from '../common/logging.js';
import type { DirectReadStats, FuseOperations, FuseOpName } from './binding.js';
import { errnoOf, isRoutineErrno } from './errno.js';

/** Every operation, in the order of the interface (kept complete by the `satisfies` below). */
export const FUSE_OP_NAMES = [
  'getattr',
  'fgetattr',
  'readdir',
  'readdirPlus',
  'open',
  'create',
  'read',
  'write',
  'flush',
  'fsync',
  'release',
  'truncate',
  'ftruncate',
  'unlink',
  'mkdir',
  'rmdir',
  'rename',
  'symlink',
  'readlink',
  'link',
  'chmod',
  'chown',
  'utimens',
  'statfs',
  'setxattr',
  'getxattr',
  'listxattr',
  'removexattr',
  'setattr',
] as const satisfies readonly FuseOpName[];

type MissingOps = Exclude<FuseOpName, (typeof FUSE_OP_NAMES)[number]>;
// Compile-time check that the list names every operation.
const allOpsListed: MissingOps extends never ? true : false = true;
void allOpsListed;

/** Request sizes: a page up to 16 MiB (the largest max_write), by powers of two from 4 KiB. */
const REQUEST_SIZE_BUCKETS_BYTES = Array.from({ length: 13 }, (_, i) => 4096 * 2 ** i);

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(constants.errno).map(([name, n]) => [n, name] as [number, string]),
);

export class FuseMetrics {
  readonly requests: Counter<'op'>;
  readonly errors: Counter<'op' | 'errno'>;
  readonly latency: Histogram<'op'>;
  readonly bytes: Counter<'op'>;
  readonly requestBytes: Histogram<'op'>;
  readonly openHandles: Gauge;
  readonly mounted: Gauge;
  readonly directReads: Counter;
  /** Where the open-handle gauge reads its value at scrape time. */
  openHandlesSource: () => number = () => 0;
  /**
   * Reads the engine answered without the operations (kernel engine's direct reads), read at
   * scrape time and added to the `read` request and byte counts.
   */
  directReadsSource: () => DirectReadStats = () => ({ requests: 0, bytes: 0 });

  constructor(registry: Registry) {
    const registers = [registry];
    // The direct-read counts live in the engine: each scrape adds what they grew since the last
    // (per counter, as each collects on its own).
    const seen = { requests: 0, bytes: 0, direct: 0 };
    const grown = (counter: keyof typeof seen, stat: keyof DirectReadStats): number => {
      const now = this.directReadsSource()[stat];
      const by = now - seen[counter];
      seen[counter] = now;
      return by;
    };
    this.requests = new Counter({
      name: 'strata_fuse_requests_total',
      help: 'FUSE requests answered, by operation (reads answered directly included)',
      labelNames: ['op'],
      registers,
      collect() {
        const by = grown('requests', 'requests');
        if (by > 0) this.inc({ op: 'read' }, by);
      },
    });
    this.directReads = new Counter({
      name: 'strata_fuse_direct_reads_total',
      help: 'FUSE reads the kernel engine answered from local block files on its reader thread (also in strata_fuse_requests_total; not in the latency and size histograms)',
      registers,
      collect() {
        const by = grown('direct', 'requests');
        if (by > 0) this.inc(by);
      },
    });
    this.errors = new Counter({
      name: 'strata_fuse_errors_total',
      help: 'FUSE requests answered with an error, by operation and errno',
      labelNames: ['op', 'errno'],
      registers,
    });
    this.latency = new Histogram({
      name: 'strata_fuse_request_seconds',
      help: 'Time to answer a FUSE request, by operation',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.bytes = new Counter({
      name: 'strata_fuse_bytes_total',
      help: 'Bytes read and written through the mount',
      labelNames: ['op'],
      registers,
      collect() {
        const by = grown('bytes', 'bytes');
        if (by > 0) this.inc({ op: 'read' }, by);
      },
    });
    this.requestBytes = new Histogram({
      name: 'strata_fuse_request_bytes',
      help: 'Size of each read and write request the kernel sent (the engine bounds it: 128 KiB for fuse-native, max_write for kernel)',
      labelNames: ['op'],
      buckets: REQUEST_SIZE_BUCKETS_BYTES,
      registers,
    });
    const source = (): number => this.openHandlesSource();
    this.openHandles = new Gauge({
      name: 'strata_fuse_open_handles',
      help: 'Files open through the mount',
      registers,
      collect() {
        this.set(source());
      },
    });
    this.mounted = new Gauge({ name: 'strata_fuse_mounted', help: '1 while the mount is up', registers });
  }
}

/** Wraps every operation with counting, timing and (for unexpected errors) a log line. */
export function instrument(ops: FuseOperations, m: FuseMetrics, log: Logger, debug: boolean): FuseOperations {
  const out: Partial<Record<keyof FuseOperations, unknown>> = {};
  if (ops.createdAttr !== undefined) out.createdAttr = ops.createdAttr.bind(ops);
  for (const op of FUSE_OP_NAMES) {
    // Optional operations stay absent, so the engine sees what the file system has.
    if (ops[op] === undefined) continue;
    const fn = (ops[op] as (...args: unknown[]) => Promise<unknown>).bind(ops);
    out[op] = async (...args: unknown[]): Promise<unknown> => {
      const end = m.latency.startTimer({ op });
      // read/write(path, fh, buf, length, position): the request's size.
      if (op === 'read' || op === 'write') m.requestBytes.observe({ op }, args[3] as number);
      try {
        const result = await fn(...args);
        if (op === 'read' || op === 'write') m.bytes.inc({ op }, result as number);
        if (debug) log.debug({ op, path: args[0] }, 'fuse request');
        return result;
      } catch (err) {
        const errno = errnoOf(err);
        m.errors.inc({ op, errno: ERRNO_NAMES.get(errno) ?? String(errno) });
        if (!isRoutineErrno(errno)) log.warn({ err, op, path: args[0] }, 'fuse request failed');
        else if (debug) log.debug({ op, path: args[0], errno }, 'fuse request answered with an error');
        throw err;
      } finally {
        m.requests.inc({ op });
        end();
      }
    };
  }
  return out as FuseOperations;
}
