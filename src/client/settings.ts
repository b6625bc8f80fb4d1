/**
 * What the client library runs with: the `[client]` section of the cluster configuration turned
 * into named, unit-suffixed settings, plus the library's own limits. A program can build these
 * from a config file (`settingsFromConfig`) and override single values.
 */
import { hostname as osHostname, tmpdir } from 'node:os';
import type { ClusterConfig, LocalReadVerify, StorageType, TtlAction } from '../common/config/index.js';
import { localHostId } from './host-id.js';

const MiB = 1024 * 1024;

/** Whole-client bound on bytes held in memory by writers (retained blocks, dirty pages); beyond it they spill to temp files. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 256 * MiB;
/** Largest piece a short-circuit reader reads from a block file in one call. */
export const LOCAL_READ_CHUNK_BYTES = 4 * MiB;
/**
 * Block-file reads a short-circuit stream keeps in flight ahead of its consumer. Each chunk goes
 * into a fresh buffer the caller keeps, so the kernel faults in new pages on every read; with
 * several reads on libuv's pool at once that work runs on more than one core (measured on the
 * 2-core build machine: 1 in flight 7.6 GB/s, 2–3 in flight 13.6–14 GB/s, a reused buffer 12.7).
 */
export const LOCAL_READS_IN_FLIGHT = 3;
/**
 * Largest piece a short-circuit writer writes to a block file in one call (buffered writes).
 * 1 MiB, as fio's `bs=1M`: on the build machine (Linux 6.18, ext4) a 1 GiB put written in 4 MiB
 * pwrites cost the client 0.6–2.1 s of kernel CPU and ran at 360–830 MB/s, in 1 MiB pwrites
 * 0.27–0.8 s and 670–1,430 MB/s (alternating runs, docs/client.md); 512 KiB measured the same as
 * 1 MiB.
 */
export const LOCAL_WRITE_CHUNK_BYTES = 1 * MiB;
/** How many times one block is re-placed on other workers before a write gives up. */
export const MAX_BLOCK_PLACEMENTS = 4;
/** Attempts of one read range over the replicas (and a location refresh) before giving up. */
export const MAX_READ_ATTEMPTS = 6;
/** Backoff between retries of worker operations: first, then doubled up to the max. */
export const RETRY_BACKOFF_FIRST_MS = 50;
export const RETRY_BACKOFF_MAX_MS = 2000;
/** Open short-circuit block files kept per reader. */
export const MAX_OPEN_LOCAL_FILES = 16;
/** Page size of list calls. */
export const LIST_PAGE_SIZE = 1000;
/** First lease renewal after create/openForWrite; later ones follow the expiry the master returns. */
export const FIRST_LEASE_RENEWAL_MS = 1000;
export const MIN_LEASE_RENEWAL_MS = 200;
export const MAX_LEASE_RENEWAL_MS = 20_000;
/**
 * Keepalive of the master channel: a leader frozen (SIGSTOP, a long pause) or cut off keeps its
 * connections open, and a standby takes over after `etcd.lease_ttl` (3 s by default). A client
 * notices within interval + timeout and moves to the new leader (the call keeps its request id).
 */
export const MASTER_KEEPALIVE_INTERVAL_MS = 2_000;
export const MASTER_KEEPALIVE_TIMEOUT_MS = 3_000;

export interface ClientSettings {
  masterAddrs: { host: string; port: number }[];
  /** This machine's name as the master sees it (lease diagnostics, local-first placement). */
  clientHost: string;
  /** Identifies this machine; a worker with the same id is local (short-circuit). */
  hostId: string;
  blockSizeBytes: number;
  replicas: number;
  shortCircuit: boolean;
  /**
   * Short-circuit writes with O_DIRECT (`client.direct_writes`): the kernel's copy into fresh
   * page-cache pages was most of a local put's CPU; the price is that a block just written is
   * not in the page cache (its first read comes from the disk). Off by default, since a cache's
   * data is often read back soon after it is written (through the FUSE mount: 0.77× vs 0.35×
   * of passthrough on sequential reads of a freshly written file).
   */
  directWrites: boolean;
  writeChunkBytes: number;
  readChunkBytes: number;
  storageType: StorageType;
  ttlMs: number;
  ttlAction: TtlAction;
  rpcTimeoutMs: number;
  /** See `client.complete_timeout` (at least `rpcTimeoutMs`). */
  completeTimeoutMs: number;
  connTimeoutMs: number;
  rpcRetryMax: number;
  readAheadBytes: number;
  failedWorkerTtlMs: number;
  memoryBudgetBytes: number;
  /** Where writers spill data beyond the memory budget. */
  spillDir: string;
  /**
   * Short-circuit reads of at most this many bytes may run on the calling thread while their
   * block files answer at memory speed (`client.local_read_inline_max`; see local-read-policy.ts).
   */
  localReadInlineMaxBytes: number;
  /**
   * Which short-circuit reads check the block file's checksums (`client.local_read_verify`,
   * local-verify.ts): by default every tier but MEM.
   */
  localReadVerify: LocalReadVerify;
  /**
   * Short-circuit reads of at most this many bytes always run synchronously on the calling thread
   * instead of on libuv's pool (0: never), even from a device. Saves two thread hand-overs per
   * read, at the price of blocking the event loop for the read; for callers who serve small
   * reads one after another (the FUSE mount).
   */
  syncLocalReadMaxBytes?: number;
}

export function settingsFromConfig(
  config: ClusterConfig,
  overrides: Partial<ClientSettings> = {},
): ClientSettings {
  const c = config.client;
  const base: ClientSettings = {
    masterAddrs: c.master_addrs.map((a) => ({ host: a.hostname, port: a.port })),
    clientHost: c.hostname !== '' ? c.hostname : osHostname(),
    hostId: localHostId(),
    blockSizeBytes: c.block_size,
    replicas: c.replicas,
    shortCircuit: c.short_circuit,
    directWrites: c.direct_writes,
    writeChunkBytes: c.write_chunk_size,
    readChunkBytes: c.read_chunk_size,
    storageType: c.storage_type,
    ttlMs: c.ttl_ms,
    ttlAction: c.ttl_action,
    rpcTimeoutMs: c.rpc_timeout,
    // Never shorter than any other metadata call's deadline.
    completeTimeoutMs: Math.max(c.complete_timeout, c.rpc_timeout),
    connTimeoutMs: c.conn_timeout,
    rpcRetryMax: c.rpc_retry_max,
    readAheadBytes: c.read_ahead,
    localReadInlineMaxBytes: c.local_read_inline_max,
    localReadVerify: c.local_read_verify,
    failedWorkerTtlMs: c.failed_worker_ttl,
    memoryBudgetBytes: DEFAULT_MEMORY_BUDGET_BYTES,
    spillDir: tmpdir(),
  };
  return { ...base, ...overrides };
}
