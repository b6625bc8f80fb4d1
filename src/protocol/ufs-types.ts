/**
 * Vocabulary of UFS mounts and jobs on the wire: what a mount is, where an uncached block of a
 * UFS-backed file comes from, and how a load job reports progress. Plain data only.
 */
import { z } from 'zod';
import { WRITE_TYPES } from '../common/config/schema.js';
import { storageTypeSchema, ttlActionSchema, workerAddressSchema } from './types.js';

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
  /** 0 in the answer to a dry run (nothing was mounted). */
  mountId: nonNegInt,
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

export { ufsBlockSourceSchema, ufsValidatorSchema } from './types.js';
export type { UfsBlockSource, UfsValidatorWire } from './types.js';

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
  /** When a master last ran the job again after it was interrupted (a restart or failover). */
  resumedAtMs: z.number().optional(),
  /** The first failure, for a failed job. */
  error: z.string().optional(),
});
export type LoadJobStatus = z.infer<typeof loadJobStatusSchema>;
