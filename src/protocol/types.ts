/**
 * Shared vocabulary of the cluster protocol: what the master, the workers and the client say to
 * each other. Only plain data here (zod schemas and their types); behaviour lives in the roles.
 *
 * Identifiers: inode and block ids are positive integers below 2^53 assigned by the master from
 * persistent counters; worker ids are UUIDs a worker generates once and keeps in its data
 * directory, so a restarted worker is recognised.
 */
import { z } from 'zod';
import { STORAGE_TYPES } from '../common/config/data-dir.js';
import { TTL_ACTIONS, WRITE_TYPES } from '../common/config/schema.js';

export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;
export const MAX_XATTR_NAME_BYTES = 255;
export const MAX_XATTR_VALUE_BYTES = 64 * 1024;
/** Largest page a list call returns, whatever the caller asks. */
export const MAX_LIST_PAGE = 10_000;
export const DEFAULT_LIST_PAGE = 1000;

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/**
 * A path as sent: any string of bounded size. The master checks the path rules itself (absolute,
 * no empty, "." or ".." components, at most MAX_PATH_BYTES bytes and MAX_NAME_BYTES per name, no
 * NUL) and answers with the FsError naming the broken rule (EINVAL, ENAMETOOLONG), as POSIX
 * callers expect; the bound here only keeps absurd requests out (chars ≤ 4 × bytes allowed).
 */
export const pathSchema = z
  .string()
  .max(4 * MAX_PATH_BYTES, { error: `path far longer than ${MAX_PATH_BYTES} bytes` });

export const storageTypeSchema = z.enum(STORAGE_TYPES);
export const ttlActionSchema = z.enum(TTL_ACTIONS);
export const fileTypeSchema = z.enum(['file', 'dir', 'symlink']);
export type FileType = z.infer<typeof fileTypeSchema>;
export const fileStateSchema = z.enum(['writing', 'complete']);

/** Who is asking: the master checks permissions with these (root = uid 0 bypasses). */
export const callerSchema = z.object({
  uid: nonNegInt,
  gid: nonNegInt,
  /** Supplementary groups. */
  groups: z.array(nonNegInt).max(64).optional(),
});
export type Caller = z.infer<typeof callerSchema>;

export const fileStatusSchema = z.object({
  id,
  path: z.string(),
  name: z.string(),
  type: fileTypeSchema,
  /** Bytes: file length, 0 for directories, target length for symlinks. */
  size: nonNegInt,
  /** Permission bits and setuid/setgid/sticky (no file-type bits). */
  mode: z.number().int().min(0).max(0o7777),
  uid: nonNegInt,
  gid: nonNegInt,
  nlink: nonNegInt,
  atimeMs: z.number(),
  mtimeMs: z.number(),
  ctimeMs: z.number(),
  /** Files only; 0 for directories and symlinks. */
  blockSize: nonNegInt,
  replicas: nonNegInt,
  storageType: storageTypeSchema,
  /** 0 = no TTL. Measured from mtime. */
  ttlMs: nonNegInt,
  ttlAction: ttlActionSchema,
  state: fileStateSchema,
  /** Symlinks only. */
  target: z.string().optional(),
  /** Directories: number of entries. */
  children: nonNegInt.optional(),
  /** Bytes of this file held by workers (≤ size); absent when the master does not know. */
  cachedBytes: nonNegInt.optional(),
  /** For paths under a UFS mount: where the data lives outside Strata. */
  ufsPath: z.string().optional(),
  /** For paths under a UFS mount: how writes reach the UFS (cache, through, async). */
  writeType: z.enum(WRITE_TYPES).optional(),
});
export type FileStatus = z.infer<typeof fileStatusSchema>;

export const workerAddressSchema = z.object({
  workerId: z.string(),
  hostname: z.string(),
  rpcPort: z.number().int().min(1).max(65535),
  webPort: z.number().int().min(0).max(65535),
  /** Identifies the machine (not the name) so a client can tell a worker is local for short-circuit. */
  hostId: z.string(),
});
export type WorkerAddress = z.infer<typeof workerAddressSchema>;

/**
 * One block of a file as the file lists it. `blockId` 0 is a hole (reads as zeros, stored
 * nowhere): truncating a file up, or writing past its end, costs no data. `length` is the
 * block's logical length in the file and may be shorter than what the worker stores (a truncate
 * down is metadata only); readers never read past it.
 */
export const HOLE_BLOCK_ID = 0;
export const fileBlockSchema = z.object({
  blockId: nonNegInt,
  length: nonNegInt,
});
export type FileBlock = z.infer<typeof fileBlockSchema>;

/** What a UFS says about a version of an object; a read of another version fails with ESTALE. */
export const ufsValidatorSchema = z.object({
  size: nonNegInt,
  mtimeMs: z.number(),
  etag: z.string().max(1024).optional(),
});
export type UfsValidatorWire = z.infer<typeof ufsValidatorSchema>;

/**
 * Where the bytes of one block of a UFS-backed file come from: the object and the byte range of
 * it the block covers. Carried on located blocks so a worker can fill the block on a read.
 */
export const ufsBlockSourceSchema = z.object({
  mountId: id,
  /** Path inside the mount's UFS ("/"-rooted). */
  ufsPath: z
    .string()
    .min(1)
    .max(4 * MAX_PATH_BYTES),
  /** Offset of the block in the object. */
  objectOffset: nonNegInt,
  /** Bytes of the object the block holds. */
  length: nonNegInt,
  validator: ufsValidatorSchema,
  /** Cache the block while reading it (the mount's auto-cache). */
  cache: z.boolean(),
  /** Tier wanted for the cached block. */
  storageType: storageTypeSchema,
});
export type UfsBlockSource = z.infer<typeof ufsBlockSourceSchema>;

/** A block with where its copies are. `offset` is its position in the file. */
export const locatedBlockSchema = z.object({
  blockId: id,
  offset: nonNegInt,
  length: nonNegInt,
  workers: z.array(workerAddressSchema),
  /**
   * For blocks of a file whose data a UFS holds: where to fetch it. When no copy is cached,
   * `workers` holds the one worker assigned to fill it (read it with worker.readThrough).
   */
  ufs: ufsBlockSourceSchema.optional(),
  /** No copy is cached: `workers[0]` was assigned to read the block through (worker.readThrough). */
  fill: z.boolean().optional(),
});
export type LocatedBlock = z.infer<typeof locatedBlockSchema>;

export const tierUsageSchema = z.object({
  storageType: storageTypeSchema,
  /** Directory path on the worker. */
  dir: z.string(),
  capacityBytes: nonNegInt,
  usedBytes: nonNegInt,
  availableBytes: nonNegInt,
  blocks: nonNegInt,
  highWatermark: z.number(),
  lowWatermark: z.number(),
});
export type TierUsage = z.infer<typeof tierUsageSchema>;

export const workerStateSchema = z.enum(['live', 'blacklisted', 'lost', 'decommissioning', 'decommissioned']);
export type WorkerState = z.infer<typeof workerStateSchema>;

export const workerInfoSchema = z.object({
  address: workerAddressSchema,
  state: workerStateSchema,
  tiers: z.array(tierUsageSchema),
  capacityBytes: nonNegInt,
  usedBytes: nonNegInt,
  availableBytes: nonNegInt,
  blocks: nonNegInt,
  lastHeartbeatMs: z.number(),
  registeredAtMs: z.number(),
  version: z.string(),
});
export type WorkerInfo = z.infer<typeof workerInfoSchema>;

/** Master → worker instructions carried on heartbeat replies. */
export const workerCommandSchema = z.discriminatedUnion('type', [
  /** Drop these blocks (file deleted, truncated, freed, or an excess replica). */
  z.object({ type: z.literal('delete'), blockIds: z.array(id) }),
  /** Copy these blocks from a source worker (re-replication after a loss, decommission drain). */
  z.object({
    type: z.literal('replicate'),
    tasks: z.array(
      z.object({
        blockId: id,
        length: nonNegInt,
        source: workerAddressSchema,
        storageType: storageTypeSchema,
      }),
    ),
  }),
  /** The master does not know this worker (e.g. after a master restart): register again with a full report. */
  z.object({ type: z.literal('register') }),
  /**
   * Pin or unpin blocks (e.g. an async-write file until it is persisted): a pinned block never
   * moves to a slower tier nor is offered for dropping. The worker keeps pins across restarts.
   */
  z.object({ type: z.literal('pin'), blockIds: z.array(id), pinned: z.boolean() }),
]);
export type WorkerCommand = z.infer<typeof workerCommandSchema>;

export const masterInfoSchema = z.object({
  address: z.string(),
  role: z.enum(['leader', 'standby']),
  webAddress: z.string().optional(),
});
export type MasterInfo = z.infer<typeof masterInfoSchema>;
