/**
 * The cluster configuration (`strata-cluster.toml`): every section and key, its default, and
 * what is allowed. Parsed values keep the file's key names so docs, files and code share one
 * vocabulary; sizes are bytes and durations milliseconds after parsing.
 */
import { z } from 'zod';
import { LOG_LEVELS } from '../logging.js';
import { STORAGE_TYPES, parseDataDirEntry, splitDataDirs } from './data-dir.js';
import type { DataDir, StorageType } from './data-dir.js';
import { bool, duration, int, oneOf, optStr, port, ratio, size, str } from './fields.js';

export const WORKER_POLICIES = ['local', 'robin', 'random', 'load_based', 'weighted'] as const;
export type WorkerPolicy = (typeof WORKER_POLICIES)[number];
export const TTL_ACTIONS = ['none', 'delete', 'free'] as const;
export type TtlAction = (typeof TTL_ACTIONS)[number];
/** Which short-circuit reads check the block file's checksums (`client.local_read_verify`). */
export const LOCAL_READ_VERIFY_MODES = ['disk', 'all', 'none'] as const;
export type LocalReadVerify = (typeof LOCAL_READ_VERIFY_MODES)[number];
export const WRITE_TYPES = ['cache', 'through', 'async'] as const;
export type WriteType = (typeof WRITE_TYPES)[number];
export const META_STORES = ['lmdb', 'etcd'] as const;
export const FUSE_BINDINGS = ['kernel', 'fuse-native'] as const;
export type FuseBindingName = (typeof FUSE_BINDINGS)[number];

const MiB = 1024 * 1024;

const masterAddr = z.object({
  hostname: z.string({ error: 'expected a host name' }).min(1, { error: 'expected a host name' }),
  port: int(8995, 1, 65535, 'a port number'),
});

const dataDir = z
  .union([z.string(), z.array(z.string())], {
    error: 'expected a list of "[TYPE:CAP]path" strings, or one comma-joined string',
  })
  .prefault(['[DISK]/opt/strata/data/worker'])
  .transform((raw, ctx): DataDir[] => {
    const entries = splitDataDirs(raw);
    if (entries.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'at least one data directory is required', input: raw });
      return z.NEVER;
    }
    const out: DataDir[] = [];
    entries.forEach((e, i) => {
      const r = parseDataDirEntry(e);
      if (r.ok) out.push(r.value);
      else ctx.addIssue({ code: 'custom', message: r.message, input: e, path: [i] });
    });
    const seen = new Set<string>();
    for (const d of out) {
      if (seen.has(d.path))
        ctx.addIssue({ code: 'custom', message: `directory listed twice: ${d.path}`, input: d.path });
      seen.add(d.path);
    }
    return out;
  });

const watermark = (high: number, low: number) =>
  z
    .object({ high: ratio(high), low: ratio(low) })
    .prefault({})
    .superRefine((w, ctx) => {
      if (w.low >= w.high) {
        ctx.addIssue({
          code: 'custom',
          message: `low (${w.low}) must be below high (${w.high})`,
          path: ['low'],
          input: w.low,
        });
      }
    });

/** Default watermarks of seed 000: MEM 0.95/0.85, SSD 0.9/0.7, HDD 0.8/0.5. */
export const DEFAULT_WATERMARKS: Readonly<Record<StorageType, { high: number; low: number }>> = {
  MEM: { high: 0.95, low: 0.85 },
  NVME: { high: 0.9, low: 0.7 },
  SSD: { high: 0.9, low: 0.7 },
  DISK: { high: 0.8, low: 0.5 },
  HDD: { high: 0.8, low: 0.5 },
};

const watermarks = z
  .object(
    Object.fromEntries(
      STORAGE_TYPES.map((t) => [t, watermark(DEFAULT_WATERMARKS[t].high, DEFAULT_WATERMARKS[t].low)]),
    ) as {
      [K in StorageType]: ReturnType<typeof watermark>;
    },
  )
  .prefault({});

export const masterSection = z
  .object({
    hostname: str('localhost'),
    rpc_port: port(8995),
    web_port: port(9000),
    /** Address the RPC and web servers bind; hostname is what others dial. */
    bind_host: str('0.0.0.0'),
    meta_dir: str('/opt/strata/data/meta'),
    meta_store: oneOf(META_STORES, 'lmdb'),
    /**
     * true: sync data and LMDB's meta page at every commit (acknowledged changes survive power
     * loss); false: the meta page waits for the next commit (a machine crash may undo the last
     * transaction; a process crash loses nothing). Never corrupts.
     */
    meta_sync: bool(false),
    /**
     * true: acknowledge a change once it is in the master's write-ahead log (one fdatasync for
     * every change that arrived meanwhile); LMDB commits, synced, in the background. Survives
     * power loss like meta_sync = true, at a fraction of the syncs per change (docs/master.md).
     */
    meta_wal: bool(true),
    heartbeat_interval: duration('3s', 10),
    worker_blacklist_interval: duration('10s', 10),
    worker_lost_interval: duration('30s', 10),
    worker_policy: oneOf(WORKER_POLICIES, 'local'),
    ttl_checker_interval: duration('1h', 10),
    /** How long what a UFS said (a listing, a stat, "not there") is trusted before it is read again. */
    ufs_sync_interval: duration('1m', 0),
    /** Load tasks (one block each) a load job runs at once on one worker. */
    load_tasks_per_worker: int(4, 1, 256),
    /** Files of async mounts persisted to their UFS at once. */
    persist_concurrency: int(4, 1, 256),
    /** A writer that neither renews nor completes within this time loses its lease on the file. */
    file_lease_timeout: duration('60s', 10),
    /** How long a retried mutating call's first result is remembered. */
    retry_cache_ttl: duration('10m', 1000),
    /** Token that enables console actions (decommission, cancel); none means read-only. */
    admin_token: optStr(),
  })
  .prefault({});

export const clientSection = z
  .object({
    master_addrs: z
      .array(masterAddr, { error: 'expected [[client.master_addrs]] tables of hostname and port' })
      .optional(),
    hostname: str(''),
    block_size: size('128MB', 64 * 1024, 2048 * MiB),
    replicas: int(1, 1, 16, 'a replica count'),
    short_circuit: bool(true),
    /**
     * Short-circuit writes bypass the page cache (O_DIRECT): cheaper puts, but a block just
     * written is not in the page cache, so reading it back soon comes from the disk.
     */
    direct_writes: bool(false),
    write_chunk_size: size('128KB', 4096, 16 * MiB),
    read_chunk_size: size('128KB', 4096, 16 * MiB),
    storage_type: oneOf(STORAGE_TYPES, 'DISK'),
    ttl_ms: duration(0),
    ttl_action: oneOf(TTL_ACTIONS, 'none'),
    /** Deadline of one metadata call. */
    rpc_timeout: duration('30s', 10),
    /**
     * Deadline of a close that may write the whole file to a UFS first (a file under a `through`
     * mount, or completed onto a name that may be under one): the master answers only once the
     * UFS holds the file.
     */
    complete_timeout: duration('1h', 10),
    /** Deadline of connecting to one address. */
    conn_timeout: duration('5s', 10),
    /** Attempts of a retryable call across addresses before giving up. */
    rpc_retry_max: int(10, 0, 1000),
    /** Bytes read ahead of a sequential reader. */
    read_ahead: size('16MB', 0, 1024 * MiB),
    /**
     * Short-circuit reads up to this size run on the calling thread while the block file answers
     * from memory (a MEM tier or the page cache), on the thread pool otherwise (0: always the pool).
     */
    local_read_inline_max: size('16MB', 0, 256 * MiB),
    /**
     * Short-circuit reads check the block file's chunk checksums, as a worker's reads do:
     * `disk` every tier but MEM (tmpfs, checked when written, no medium to rot), `all`, `none`.
     */
    local_read_verify: oneOf(LOCAL_READ_VERIFY_MODES, 'disk'),
    /** How long a worker that failed a call is avoided. */
    failed_worker_ttl: duration('30s', 0),
  })
  .prefault({});

export const workerSection = z
  .object({
    hostname: str('localhost'),
    rpc_port: port(8997),
    web_port: port(9001),
    bind_host: str('0.0.0.0'),
    data_dir: dataDir,
    dir_reserved: size(0),
    watermarks,
    /** Move a block read this many times from a lower tier up to the top tier (0 disables). */
    promote_after_reads: int(3, 0, 1_000_000),
    /** How often tiers are checked against their watermarks. */
    eviction_interval: duration('1s', 10),
    /** Blocks fetched from UFSes at once (read-through and load tasks); more wait their turn. */
    ufs_fill_concurrency: int(16, 1, 1024),
    /** Bytes per second the background scrubber re-verifies block checksums at (0 disables it). */
    scrub_rate: size('4MB', 0),
    /** Time between the starts of two scrub passes over every stored block. */
    scrub_interval: duration('24h', 10),
  })
  .prefault({});

export const fuseSection = z
  .object({
    mnt_path: str('/strata-fuse'),
    fs_path: str('/'),
    io_threads: int(32, 1, 4096),
    worker_threads: int(56, 1, 4096),
    mnt_number: int(1, 1, 64),
    entry_timeout_ms: duration(1000),
    attr_timeout_ms: duration(1000),
    web_port: port(9003),
    debug: bool(false),
    max_write: size('1MB', 4096, 16 * MiB),
    /** Extra mount options passed to FUSE (comma-separated, like `-o`). */
    options: str(''),
    /** Which engine serves the mount: our kernel-protocol server, or libfuse 2 via fuse-native. */
    binding: oneOf(FUSE_BINDINGS, 'kernel'),
  })
  .prefault({});

export const logSection = z
  .object({
    level: oneOf(LOG_LEVELS, 'INFO'),
    log_dir: str('stdout'),
  })
  .prefault({});

export const s3GatewaySection = z
  .object({
    listen: str('0.0.0.0:9900'),
    region: str('us-east-1'),
    access_key: optStr(),
    secret_key: optStr(),
    credentials_file: optStr(),
    anonymous_read: bool(false),
    /** Base domain of virtual-hosted-style addressing (`bucket.DOMAIN`); empty: path style only. */
    domain: str(''),
    web_port: port(9902),
    max_object_size: size('5TB'),
    max_part_size: size('5GB'),
    /**
     * A copy or multipart complete that has not answered after this long sends its 200 and then
     * spaces until its document (or an error document) is ready, as S3 does.
     */
    keepalive_after: duration('5s', 0),
  })
  .prefault({});

export const etcdSection = z
  .object({
    endpoints: z
      .array(z.string(), { error: 'expected a list of "host:port" or "http://host:port" strings' })
      .prefault(['127.0.0.1:2379']),
    prefix: str('/strata'),
    lease_ttl: duration('3s', 1000),
    dial_timeout: duration('5s', 10),
    username: optStr(),
    password: optStr(),
    tls_ca: optStr(),
    tls_cert: optStr(),
    tls_key: optStr(),
    /** etcd's `--max-txn-ops`: transactions are split to stay within it. */
    max_txn_ops: int(128, 16, 1_000_000, 'an operation count'),
    /** etcd's `--max-request-bytes`: requests stay within it (one value of up to 1 MiB must fit). */
    max_request_bytes: size('1536KiB', 1280 * 1024, 64 * MiB),
  })
  .prefault({});

export const clusterConfigSchema = z.object({
  cluster_id: z
    .string({ error: 'expected a cluster id string' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
      error: 'expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
    })
    .prefault('strata'),
  format_master: bool(false),
  format_worker: bool(false),
  testing: bool(false),
  master: masterSection,
  client: clientSection,
  worker: workerSection,
  fuse: fuseSection,
  log: logSection,
  s3_gateway: s3GatewaySection,
  etcd: etcdSection,
});

type Parsed = z.output<typeof clusterConfigSchema>;
export type MasterAddr = z.output<typeof masterAddr>;

/** The effective configuration; `client.master_addrs` is always filled after loading. */
export type ClusterConfig = Omit<Parsed, 'client'> & {
  client: Omit<Parsed['client'], 'master_addrs'> & { master_addrs: MasterAddr[] };
};

/** Keys whose values are never printed or logged. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'master.admin_token',
  's3_gateway.secret_key',
  'etcd.password',
]);
