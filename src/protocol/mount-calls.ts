/**
 * Master calls of UFS mounts and jobs (codes 200–249): the mount table, loading a path into the
 * cache, freeing cached copies, persisting written files, and the cache report. Mutating calls
 * are deduplicated by request id like every master call.
 */
import { z } from 'zod';
import { unary } from '../rpc/api.js';
import { pathSchema, storageTypeSchema, ttlActionSchema } from './types.js';
import {
  MAX_UFS_URI_BYTES,
  loadJobStatusSchema,
  mountInfoSchema,
  mountOptionsSchema,
  persistBlockSchema,
  ufsValidatorSchema,
  writeTypeSchema,
} from './ufs-types.js';

/** Most copies a load may ask for (the bound of a file's replication). */
export const MAX_LOAD_REPLICAS = 16;

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const empty = z.object({});

/**
 * Mounts a UFS at a path. The UFS is checked first (reachable, credentials accepted) unless
 * `check` is false; `dryRun` checks and answers without mounting. Absent path = the 1:1 default.
 */
export const Mount = unary(
  200,
  'master.mount',
  z.object({
    uri: z.string().min(1).max(MAX_UFS_URI_BYTES),
    path: pathSchema.optional(),
    options: mountOptionsSchema,
    writeType: writeTypeSchema.optional(),
    readVerifyUfs: z.boolean().optional(),
    autoCache: z.boolean().optional(),
    ttlMs: nonNegInt.optional(),
    ttlAction: ttlActionSchema.optional(),
    replicas: z.number().int().min(1).max(16).optional(),
    blockSize: nonNegInt.optional(),
    storageType: storageTypeSchema.optional(),
    /** Refuse every change under the mount (EROFS); reads, loads and frees still work. */
    mountReadOnly: z.boolean().optional(),
    check: z.boolean().optional(),
    dryRun: z.boolean().optional(),
  }),
  mountInfoSchema,
  { mutating: true },
);

/** Removes a mount: its cached files leave the namespace, the UFS is untouched. */
export const Unmount = unary(201, 'master.unmount', z.object({ path: pathSchema }), empty, {
  mutating: true,
});

/** Every mount, secret option values masked. */
export const ListMounts = unary(
  202,
  'master.listMounts',
  empty,
  z.object({ mounts: z.array(mountInfoSchema) }),
);

/**
 * A mount's URI and options with their secrets, for a registered worker that must reach the UFS
 * (read-through, load, persist). Refused to anyone else.
 */
export const GetMountConfig = unary(
  203,
  'master.getMountConfig',
  z.object({ mountId: id, workerId: z.string().min(1).max(128) }),
  z.object({ mountId: id, uri: z.string(), options: mountOptionsSchema }),
);

/**
 * Starts loading a path (file or directory tree) from its UFS into the cache. With `replicas`,
 * the files' replication is raised to it (never lowered) and the job completes once every block
 * has that many copies (the first loaded from the UFS, the others copied by the block manager);
 * without, one copy per block.
 */
export const SubmitLoad = unary(
  210,
  'master.submitLoad',
  z.object({ path: pathSchema, replicas: z.number().int().min(1).max(MAX_LOAD_REPLICAS).optional() }),
  loadJobStatusSchema,
  { mutating: true },
);

export const GetLoad = unary(
  211,
  'master.getLoad',
  z.object({ jobId: z.string().max(128) }),
  loadJobStatusSchema,
);

export const CancelLoad = unary(
  212,
  'master.cancelLoad',
  z.object({ jobId: z.string().max(128) }),
  loadJobStatusSchema,
  { mutating: true },
);

export const ListLoads = unary(
  213,
  'master.listLoads',
  empty,
  z.object({ jobs: z.array(loadJobStatusSchema) }),
);

/** Drops cached copies of files under a path whose data the UFS holds (persisted files only). */
export const Free = unary(
  220,
  'master.free',
  z.object({ path: pathSchema }),
  z.object({ files: nonNegInt, blocks: nonNegInt, bytes: nonNegInt, skippedFiles: nonNegInt }),
  { mutating: true },
);

/**
 * Writes a file being written under a `through` mount to the UFS, from its blocks, before the
 * writer completes it: the writer's close returns only when both copies exist. The blocks are
 * those the writer will commit, with the workers that acknowledged them.
 */
export const PersistThrough = unary(
  221,
  'master.persistThrough',
  z.object({
    fileId: id,
    leaseId: z.string(),
    blocks: z.array(persistBlockSchema).max(100_000),
    length: nonNegInt,
  }),
  ufsValidatorSchema,
  { mutating: true },
);

/** What the cache holds against what its mounts hold (`strata report fluid-summary`). */
export const GetCacheReport = unary(
  230,
  'master.getCacheReport',
  empty,
  z.object({
    cachedBytes: nonNegInt,
    capacityBytes: nonNegInt,
    /** Bytes of every file known under the mounts (UFS metadata loaded so far plus written files). */
    ufsTotalBytes: nonNegInt,
    fileNum: nonNegInt,
    /** Block reads located by the master, by where the bytes were: cached or to be read from the UFS. */
    cacheHitBlocks: nonNegInt,
    cacheMissBlocks: nonNegInt,
  }),
);

export const MOUNT_CALLS = [
  Mount,
  Unmount,
  ListMounts,
  GetMountConfig,
  SubmitLoad,
  GetLoad,
  CancelLoad,
  ListLoads,
  Free,
  PersistThrough,
  GetCacheReport,
] as const;
