/**
 * Calls served by the master. Codes 100–299 belong to the master: 100–139 namespace, 140–159
 * cluster and operations, 160–179 worker coordination, 200–249 UFS mounts and load jobs,
 * 250–259 high availability. Codes are stable on the wire; never reuse a retired one.
 *
 * Every namespace call takes an optional `caller` (uid, gid, groups) for permission checks; when
 * absent the call acts as root. Request schemas carry no defaults or transforms (the type a
 * client sends is the type a handler receives); handlers apply the documented defaults. Mutating calls are retried with the same request id and the
 * master returns the first outcome (exactly-once across retries).
 */
import { z } from 'zod';
import { unary } from '../rpc/api.js';
import {
  MAX_LIST_PAGE,
  MAX_XATTR_NAME_BYTES,
  MAX_XATTR_VALUE_BYTES,
  callerSchema,
  fileBlockSchema,
  fileStatusSchema,
  locatedBlockSchema,
  masterInfoSchema,
  pathSchema,
  storageTypeSchema,
  tierUsageSchema,
  ttlActionSchema,
  workerAddressSchema,
  workerCommandSchema,
  workerInfoSchema,
} from './types.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const mode = z.number().int().min(0).max(0o7777);
const empty = z.object({});
const caller = callerSchema.optional();

// ---- namespace -------------------------------------------------------------------------------

export const GetStatus = unary(
  100,
  'master.getStatus',
  z.object({ path: pathSchema, caller }),
  fileStatusSchema,
);

export const List = unary(
  101,
  'master.list',
  z.object({
    path: pathSchema,
    /** Return names sorted after this one (exclusive): the cursor of the previous page. */
    startAfter: z.string().optional(),
    limit: z.number().int().min(1).max(MAX_LIST_PAGE).optional(),
    caller,
  }),
  z.object({
    entries: z.array(fileStatusSchema),
    /** Present when more entries follow: pass it as `startAfter`. */
    nextStartAfter: z.string().optional(),
  }),
);

export const Mkdir = unary(
  102,
  'master.mkdir',
  z.object({ path: pathSchema, parents: z.boolean().optional(), mode: mode.optional(), caller }),
  fileStatusSchema,
  { mutating: true },
);

/** Creates a file open for writing under a lease; with `overwrite` an existing file is replaced. */
export const Create = unary(
  103,
  'master.create',
  z.object({
    path: pathSchema,
    overwrite: z.boolean().optional(),
    /** Create missing parent directories. */
    parents: z.boolean().optional(),
    mode: mode.optional(),
    blockSize: nonNegInt.optional(),
    replicas: z.number().int().min(1).max(16).optional(),
    storageType: storageTypeSchema.optional(),
    ttlMs: nonNegInt.optional(),
    ttlAction: ttlActionSchema.optional(),
    /** The writer's host name, for lease diagnostics and local-first placement. */
    clientHost: z.string().max(255).optional(),
    /**
     * An empty file: the master may create it complete (length 0, no lease, one transaction);
     * then `leaseId` is "" and `status.state` is "complete". Where completing takes more (under a
     * UFS mount) it creates the file for writing as without the flag: the caller completes it.
     */
    complete: z.boolean().optional(),
    /**
     * Also allocate and place the first block (as AddBlock would, in the create's commit): one
     * round trip less for a writer that will write. Its fields are AddBlock's.
     */
    firstBlock: z
      .object({ clientHostId: z.string().max(255).optional(), lengthHint: nonNegInt.optional() })
      .optional(),
    caller,
  }),
  z.object({
    status: fileStatusSchema,
    leaseId: z.string(),
    /** The first block, when asked for and a placement was found (else the writer calls AddBlock). */
    firstBlock: z.object({ blockId: id, workers: z.array(workerAddressSchema) }).optional(),
  }),
  { mutating: true },
);

/**
 * Opens an existing file for writing (append, overwrite in place, truncate) under a lease; the
 * writer receives the current block list and commits a new one with `Complete`.
 */
export const OpenForWrite = unary(
  104,
  'master.openForWrite',
  z.object({ path: pathSchema, clientHost: z.string().max(255).optional(), caller }),
  z.object({ status: fileStatusSchema, leaseId: z.string(), blocks: z.array(fileBlockSchema) }),
  { mutating: true },
);

/** Allocates a new block for a file being written and chooses the workers for its copies. */
export const AddBlock = unary(
  105,
  'master.addBlock',
  z.object({
    fileId: id,
    leaseId: z.string(),
    clientHost: z.string().max(255).optional(),
    /** The client's machine id, for local-first placement. */
    clientHostId: z.string().max(255).optional(),
    /** Worker ids that just failed this writer: not chosen again. */
    excludeWorkers: z.array(z.string()).max(1024).optional(),
    /**
     * Bytes the writer expects this block to hold, when it knows (a small file, the last block):
     * space can be reserved for that instead of a whole block. Absent = a full block.
     */
    lengthHint: nonNegInt.optional(),
  }),
  z.object({ blockId: id, workers: z.array(workerAddressSchema) }),
  { mutating: true },
);

/**
 * Commits the file's new block list and length, ends the lease and marks the file complete.
 * `workers` lists the worker ids that acknowledged each new block (recorded as its locations).
 * Blocks that were in the file before and are no longer listed are deleted from workers.
 */
const completeRequest = z.object({
  fileId: id,
  leaseId: z.string(),
  blocks: z.array(fileBlockSchema.extend({ workers: z.array(z.string()).optional() })),
  length: nonNegInt,
  mtimeMs: z.number().optional(),
});

export const Complete = unary(106, 'master.complete', completeRequest, fileStatusSchema, { mutating: true });

export const RenewLease = unary(
  107,
  'master.renewLease',
  z.object({ fileId: id, leaseId: z.string() }),
  z.object({ expiresAtMs: z.number() }),
);

/** Gives back a block allocated by AddBlock that could not be written (before Complete). */
export const AbandonBlock = unary(
  108,
  'master.abandonBlock',
  z.object({ fileId: id, leaseId: z.string(), blockId: id }),
  empty,
  { mutating: true },
);

export const GetBlockLocations = unary(
  109,
  'master.getBlockLocations',
  z.object({
    path: pathSchema,
    offset: nonNegInt.optional(),
    /** Bytes wanted from offset; absent = to the end. */
    length: nonNegInt.optional(),
    /**
     * Also read this extended attribute (one round trip for a reader that needs the file's
     * metadata too): its value is the reply's raw payload, `xattrFound` says whether it exists.
     */
    xattr: z.string().min(1).max(MAX_XATTR_NAME_BYTES).optional(),
    caller,
  }),
  z.object({
    status: fileStatusSchema,
    blocks: z.array(locatedBlockSchema),
    /** With `xattr`: whether the file has it. Absent: not looked up (ask GetXattr). */
    xattrFound: z.boolean().optional(),
  }),
);

export const Delete = unary(
  110,
  'master.delete',
  z.object({ path: pathSchema, recursive: z.boolean().optional(), caller }),
  empty,
  { mutating: true },
);

/** POSIX rename: an existing target file or empty directory is replaced unless `noReplace`. */
export const Rename = unary(
  111,
  'master.rename',
  z.object({ src: pathSchema, dst: pathSchema, noReplace: z.boolean().optional(), caller }),
  empty,
  { mutating: true },
);

export const Symlink = unary(
  112,
  'master.symlink',
  z.object({ target: z.string().min(1).max(4096), path: pathSchema, caller }),
  fileStatusSchema,
  { mutating: true },
);

export const Readlink = unary(
  113,
  'master.readlink',
  z.object({ path: pathSchema, caller }),
  z.object({ target: z.string() }),
);

/** Hard link of a file (directories cannot be linked). */
export const Link = unary(
  114,
  'master.link',
  z.object({ existing: pathSchema, path: pathSchema, caller }),
  fileStatusSchema,
  { mutating: true },
);

/** Changes attributes; `length` truncates or extends (with a hole) a file not being written. */
export const SetAttr = unary(
  115,
  'master.setAttr',
  z.object({
    path: pathSchema,
    mode: mode.optional(),
    uid: nonNegInt.optional(),
    gid: nonNegInt.optional(),
    atimeMs: z.number().optional(),
    mtimeMs: z.number().optional(),
    length: nonNegInt.optional(),
    ttlMs: nonNegInt.optional(),
    ttlAction: ttlActionSchema.optional(),
    replicas: z.number().int().min(1).max(16).optional(),
    caller,
  }),
  fileStatusSchema,
  { mutating: true },
);

const xattrName = z.string().min(1).max(MAX_XATTR_NAME_BYTES);

/** The value travels as the call's raw payload (binary-safe), at most MAX_XATTR_VALUE_BYTES. */
export const SetXattr = unary(
  116,
  'master.setXattr',
  z.object({
    path: pathSchema,
    name: xattrName,
    flag: z.enum(['any', 'create', 'replace']).optional(),
    caller,
  }),
  empty,
  { mutating: true },
);
export const XATTR_VALUE_LIMIT_BYTES = MAX_XATTR_VALUE_BYTES;

/** Replies with the value as the raw payload; ENODATA when absent. */
export const GetXattr = unary(
  117,
  'master.getXattr',
  z.object({ path: pathSchema, name: xattrName, caller }),
  empty,
);

export const ListXattr = unary(
  118,
  'master.listXattr',
  z.object({ path: pathSchema, caller }),
  z.object({ names: z.array(z.string()) }),
);

export const RemoveXattr = unary(
  119,
  'master.removeXattr',
  z.object({ path: pathSchema, name: xattrName, caller }),
  empty,
  { mutating: true },
);

/** Totals under a path (`fs count`, `fs du`). */
export const GetContentSummary = unary(
  120,
  'master.getContentSummary',
  z.object({ path: pathSchema, caller }),
  z.object({ length: nonNegInt, files: nonNegInt, dirs: nonNegInt, cachedBytes: nonNegInt }),
);

/** Most attributes one CompleteAs sets. */
export const MAX_COMPLETE_XATTRS = 16;
/** Files one CompleteAs may append (`concat`): S3's 10,000 parts of a multipart upload. */
export const MAX_CONCAT_FILES = 10_000;

/**
 * Complete + SetXattr + Rename in one transaction (one durable commit): commits the block list
 * as Complete does, sets `xattrs` (their values concatenated in order as the call's raw payload,
 * `length` bytes each) and with `renameTo` renames the file there, replacing a file. A refusal of
 * any part (ENOENT/ENOTDIR for a missing parent, EISDIR for a directory at `renameTo`, a lost
 * lease) changes nothing: the file stays open under its lease. Replies with the final status.
 */
export const CompleteAs = unary(
  121,
  'master.completeAs',
  completeRequest.extend({
    xattrs: z
      .array(z.object({ name: xattrName, length: z.number().int().min(0).max(MAX_XATTR_VALUE_BYTES) }))
      .max(MAX_COMPLETE_XATTRS)
      .optional(),
    renameTo: pathSchema.optional(),
    /**
     * Complete files appended, in order, after the writer's own blocks: their blocks become the
     * file's (no byte is copied) and their names go, in the same transaction. `fileId` is the
     * file the caller expects at `path` (ESTALE when another is there or none).
     */
    concat: z
      .array(z.object({ path: pathSchema, fileId: id }))
      .max(MAX_CONCAT_FILES)
      .optional(),
    caller,
  }),
  fileStatusSchema,
  { mutating: true },
);

// ---- cluster and operations -----------------------------------------------------------------

const tierTotalsSchema = z.object({
  storageType: storageTypeSchema,
  capacityBytes: nonNegInt,
  usedBytes: nonNegInt,
  availableBytes: nonNegInt,
});

export const GetClusterInfo = unary(
  140,
  'master.getClusterInfo',
  empty,
  z.object({
    clusterId: z.string(),
    version: z.string(),
    masters: z.array(masterInfoSchema),
    capacityBytes: nonNegInt,
    usedBytes: nonNegInt,
    availableBytes: nonNegInt,
    tiers: z.array(tierTotalsSchema),
    workers: z.object({
      live: nonNegInt,
      blacklisted: nonNegInt,
      lost: nonNegInt,
      decommissioning: nonNegInt,
    }),
    files: nonNegInt,
    dirs: nonNegInt,
    blocks: nonNegInt,
    startedAtMs: z.number(),
  }),
);

export const ListWorkers = unary(
  141,
  'master.listWorkers',
  empty,
  z.object({ workers: z.array(workerInfoSchema) }),
);

/** Stops new blocks going to a worker and drains its blocks to others. Address = "host:port" or a worker id. */
export const DecommissionWorker = unary(
  142,
  'master.decommissionWorker',
  z.object({ worker: z.string().min(1) }),
  z.object({ workerId: z.string() }),
  { mutating: true },
);

// ---- worker coordination --------------------------------------------------------------------

/** Most eviction candidates one heartbeat carries. */
export const MAX_EVICT_CANDIDATES = 1000;
/** Failed replication tasks one heartbeat reports (more wait for the next one). */
export const MAX_REPORTED_REPLICATION_FAILURES = 1000;

const reportedBlock = z.object({ blockId: id, length: nonNegInt, storageType: storageTypeSchema });

/** A worker announces itself; its block list follows in BlockReport pages. */
export const RegisterWorker = unary(
  160,
  'master.registerWorker',
  z.object({
    clusterId: z.string(),
    address: workerAddressSchema,
    tiers: z.array(tierUsageSchema),
    version: z.string(),
  }),
  z.object({ heartbeatIntervalMs: z.number().int().positive() }),
);

/** One page of a worker's full block report; the last page has `last: true`. */
export const BlockReport = unary(
  161,
  'master.blockReport',
  z.object({ workerId: z.string(), blocks: z.array(reportedBlock).max(100_000), last: z.boolean() }),
  empty,
);

export const Heartbeat = unary(
  162,
  'master.heartbeat',
  z.object({
    workerId: z.string(),
    tiers: z.array(tierUsageSchema),
    /** Blocks stored or removed since the previous heartbeat. */
    addedBlocks: z.array(reportedBlock).max(100_000).optional(),
    removedBlocks: z.array(id).max(100_000).optional(),
    /** Blocks whose checksums failed: the master drops this location and re-replicates. */
    corruptBlocks: z.array(id).max(100_000).optional(),
    /**
     * Blocks this worker was told to copy (`replicate`) and could not: the master plans them
     * again now rather than when the task's timeout runs out.
     */
    failedReplications: z.array(id).max(MAX_REPORTED_REPLICATION_FAILURES).optional(),
    /**
     * Blocks this worker would drop to make room (its tiers are full below them), least recently
     * used first. The master answers with a `delete` command for those that have another copy —
     * a persisted UFS copy, or a replica on another live worker — and ignores the rest (a block
     * whose only copy is here is never dropped). The master counts a granted location as gone at
     * once, so two workers asking about the last two copies of a block cannot both drop theirs.
     */
    evictCandidates: z.array(id).max(MAX_EVICT_CANDIDATES).optional(),
  }),
  z.object({ commands: z.array(workerCommandSchema) }),
);

/** Every namespace, cluster and coordination call the master serves. */
export const MASTER_CALLS = [
  GetStatus,
  List,
  Mkdir,
  Create,
  OpenForWrite,
  AddBlock,
  Complete,
  RenewLease,
  AbandonBlock,
  GetBlockLocations,
  Delete,
  Rename,
  Symlink,
  Readlink,
  Link,
  SetAttr,
  SetXattr,
  GetXattr,
  ListXattr,
  RemoveXattr,
  GetContentSummary,
  CompleteAs,
  GetClusterInfo,
  ListWorkers,
  DecommissionWorker,
  RegisterWorker,
  BlockReport,
  Heartbeat,
] as const;
