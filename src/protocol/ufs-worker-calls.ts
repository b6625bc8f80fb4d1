/**
 * Worker calls of UFS-backed data (codes 340–349): read-through of an uncached block, loading a
 * block for a load job, and persisting a file to its UFS. The worker learns the mount's
 * configuration from the master by mount id (GetMountConfig) and caches it.
 */
import { z } from 'zod';
import { readStream, unary } from '../rpc/api.js';
import { MAX_PATH_BYTES } from './types.js';
import { persistBlockSchema, ufsBlockSourceSchema, ufsValidatorSchema } from './ufs-types.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Where the bytes of a read-through came from. */
export const readThroughSourceSchema = z.enum(['cache', 'ufs', 'fill']);

/**
 * Streams `length` bytes of a block from `offset` (absent length = to the end). A block this
 * worker holds is served from its store; otherwise the worker fetches the block's range of the
 * UFS object once, streams it while writing it to staging, and publishes it when complete
 * (concurrent readers of the block join that one fetch). A UFS failure mid-read fails the read
 * and leaves no block behind. With `source.cache` false the range is streamed and not kept.
 */
export const ReadThrough = readStream(
  340,
  'worker.readThrough',
  z.object({
    blockId: id,
    offset: nonNegInt.optional(),
    length: nonNegInt.optional(),
    source: ufsBlockSourceSchema,
  }),
  z.object({ bytes: nonNegInt, from: readThroughSourceSchema }),
);

/**
 * Read-through for a client on the worker's machine (short-circuit): the worker joins or starts
 * the block's fill as for ReadThrough, waits until the block's first `waitBytes` bytes are in the
 * fill's staging file (or the fill ended), and answers with that file and how many bytes it
 * holds; the client reads them from the file itself, so no byte crosses the socket. `stored`: the
 * block is published, read its block file (OpenLocalRead). The client asks again for more as it
 * goes; a failed fill answers with its error.
 */
const followFillAnswerSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('filling'), path: z.string(), available: nonNegInt }),
  z.object({ state: z.literal('stored') }),
]);
export type FollowFillAnswer = z.infer<typeof followFillAnswerSchema>;

export const FollowFill = unary(
  343,
  'worker.followFill',
  z.object({ blockId: id, waitBytes: nonNegInt, source: ufsBlockSourceSchema }),
  followFillAnswerSchema,
);

/** Makes sure this worker caches a block (a load job's task); `loaded` is false when it already did. */
export const LoadBlock = unary(
  341,
  'worker.loadBlock',
  z.object({ blockId: id, source: ufsBlockSourceSchema }),
  z.object({ loaded: z.boolean(), bytes: nonNegInt }),
);

/**
 * Writes a file to its UFS from its blocks (read from this worker or from the others listed),
 * streamed, as one object replacing any previous version. Answers with the object's new version.
 */
export const PersistFile = unary(
  342,
  'worker.persistFile',
  z.object({
    mountId: id,
    ufsPath: z
      .string()
      .min(1)
      .max(4 * MAX_PATH_BYTES),
    blocks: z.array(persistBlockSchema).max(100_000),
    length: nonNegInt,
  }),
  ufsValidatorSchema,
);

export const UFS_WORKER_CALLS = [ReadThrough, FollowFill, LoadBlock, PersistFile] as const;
