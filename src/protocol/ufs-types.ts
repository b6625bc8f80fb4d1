/**
 * Vocabulary of UFS mounts and jobs on the wire: what a mount is, where an uncached block of a
 * UFS-backed file comes from, and how a load job reports progress. Plain data only.
 */
import { z } from 'zod';
import { WRITE_TYPES } from '../common/config/schema.js';
import { MAX_PATH_BYTES, storageTypeSchema, ttlActionSchema, workerAddressSchema } from './types.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Most `-c key=value` options one mount carries. */
export const MAX_MOUNT_OPTIONS = 64;
export const MAX_MOUNT_OPTION_KEY_BYTES = 256;
export const MAX_MOUNT_OPTION_VALUE_BYTES = 4096;
/** Longest UFS URI accepted. */
export const MAX_UFS_URI_BYTES = 4096;

export const writeTypeSchema = z.enum(WRITE_TYPES);

export const mountOptionsSchema = z
  .record(z.string().min(1).max(MAX_MOUNT_OPTION_KEY_BYTES), z.string().max(MAX_MOUNT_OPTION_VALUE_BYTES))
  .refine((o) => Object.keys(o).length <= MAX_MOUNT_OPTIONS, {
    error: `at most ${MAX_MOUNT_OPTIONS} mount options`,
  });

/** A mount as the master keeps it. In listings, secret option values read "***". */
export const mountInfoSchema = z.object({
  mountId: id,
  /** Where it appears in the namespace. */
  path: z.string(),
  /** The UFS root, canonical and secret-free. */
  uri: z.string(),
  options: mountOptionsSchema,
  writeType: writeTypeSchema,
  /** Re-check the UFS object (size, mtime, ETag) when a cached file is opened. */
  readVerifyUfs: z.boolean(),
  /** Reads cache what they fetch (false: stream from the UFS without caching). */
  autoCache: z.boolean(),
  /** Files under the mount expire this long after their mtime (0 = never), then `ttlAction`. */
  ttlMs: nonNegInt,
  ttlAction: ttlActionSchema,
  /** Overrides of the client defaults for files under the mount; 0 = the default. */
  replicas: nonNegInt,
  blockSize: nonNegInt,
  storageType: storageTypeSchema.optional(),
  /** The UFS cannot be written (http origins): writes stay in Strata (write type cache). */
  readOnly: z.boolean(),
  createdAtMs: z.number(),
});
export type MountInfo = z.infer<typeof mountInfoSchema>;

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

/** A block to persist, with where its copies are. */
export const persistBlockSchema = z.object({
  blockId: nonNegInt,
  length: nonNegInt,
  workers: z.array(workerAddressSchema),
});
export type PersistBlock = z.infer<typeof persistBlockSchema>;

export const loadJobStateSchema = z.enum(['scanning', 'running', 'completed', 'failed', 'cancelled']);
export type LoadJobState = z.infer<typeof loadJobStateSchema>;

export const loadJobStatusSchema = z.object({
  jobId: z.string(),
  path: z.string(),
  state: loadJobStateSchema,
  /** Files and bytes found under the path so far (final once scanning is done). */
  totalFiles: nonNegInt,
  totalBytes: nonNegInt,
  /** Files whose every block is cached, and bytes cached (loaded now or already cached). */
  doneFiles: nonNegInt,
  doneBytes: nonNegInt,
  /** Bytes fetched from the UFS by this job. */
  loadedBytes: nonNegInt,
  failedBlocks: nonNegInt,
  startedAtMs: z.number(),
  endedAtMs: z.number().optional(),
  /** The first failure, for a failed job. */
  error: z.string().optional(),
});
export type LoadJobStatus = z.infer<typeof loadJobStatusSchema>;
