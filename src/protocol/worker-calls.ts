/**
 * Calls served by a worker (codes 300–399): block data for clients and for other workers, and
 * the short-circuit handshake that lets a client on the same machine use block files directly.
 */
import { z } from 'zod';
import { readStream, unary, writeStream } from '../rpc/api.js';
import { storageTypeSchema } from './types.js';

const id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const nonNegInt = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** Streams `length` bytes of a block from `offset` (absent length = to the end). */
export const ReadBlock = readStream(
  300,
  'worker.readBlock',
  z.object({ blockId: id, offset: nonNegInt.optional(), length: nonNegInt.optional() }),
  z.object({ bytes: nonNegInt }),
);

/**
 * Receives a whole block as a stream of chunks; the block becomes visible only when the stream
 * ends complete (a cancelled or broken stream leaves nothing behind). `storageType` is the tier
 * wanted; the worker falls back to a lower tier when it is full.
 */
export const WriteBlock = writeStream(
  301,
  'worker.writeBlock',
  z.object({
    blockId: id,
    storageType: storageTypeSchema,
    lengthHint: nonNegInt.optional(),
    /** Pin the block from the start (see the `pin` worker command). */
    pinned: z.boolean().optional(),
  }),
  z.object({ length: nonNegInt, storageType: storageTypeSchema }),
);

/**
 * Short-circuit read: the path of the block file for a client on the same machine. The file may
 * be moved between tiers or deleted later; a client that fails to open it reads over RPC.
 */
export const OpenLocalRead = unary(
  302,
  'worker.openLocalRead',
  z.object({ blockId: id }),
  z.object({ path: z.string(), length: nonNegInt, storageType: storageTypeSchema }),
);

/** Short-circuit write: a staging file the client fills directly, then commits or aborts. */
export const OpenLocalWrite = unary(
  303,
  'worker.openLocalWrite',
  z.object({
    blockId: id,
    storageType: storageTypeSchema,
    lengthHint: nonNegInt.optional(),
    pinned: z.boolean().optional(),
  }),
  z.object({ path: z.string(), storageType: storageTypeSchema }),
);

/** Chunk size of the checksum table a short-circuit writer may hand over at commit. */
export const LOCAL_WRITE_CHECKSUM_CHUNK_BYTES = 64 * 1024;

/**
 * Verifies the staged file's length, checksums it and publishes it as the block. With
 * `checksummed: true` the call's raw payload is the table of CRC32s (zlib's, little-endian u32)
 * of every LOCAL_WRITE_CHECKSUM_CHUNK_BYTES chunk the writer wrote, and the worker uses it
 * instead of reading the file back (workers that predate the field ignore it and read back).
 */
export const CommitLocalWrite = unary(
  304,
  'worker.commitLocalWrite',
  z.object({ blockId: id, length: nonNegInt, checksummed: z.boolean().optional() }),
  z.object({ length: nonNegInt, storageType: storageTypeSchema }),
  { mutating: true },
);

export const AbortLocalWrite = unary(305, 'worker.abortLocalWrite', z.object({ blockId: id }), z.object({}));

export const GetBlockInfo = unary(
  306,
  'worker.getBlockInfo',
  z.object({ blockId: id }),
  z.object({ length: nonNegInt, storageType: storageTypeSchema, reads: nonNegInt }),
);

export const WORKER_CALLS = [
  ReadBlock,
  WriteBlock,
  OpenLocalRead,
  OpenLocalWrite,
  CommitLocalWrite,
  AbortLocalWrite,
  GetBlockInfo,
] as const;
