/**
 * Checks of the size options both ends share: a clear error naming the option and what is
 * allowed, instead of a stream that can never make progress.
 */
import { StrataError } from '../common/errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_STREAM_CHUNK_BYTES,
  DEFAULT_STREAM_WINDOW_BYTES,
  MIN_MAX_FRAME_BYTES,
  MIN_STREAM_WINDOW_BYTES,
} from './limits.js';

export interface SizeOptions {
  maxFrameBytes?: number;
  streamWindowBytes?: number;
  streamChunkBytes?: number;
}

/** Room left in a frame for the prefix and header of a data chunk (it has none; kept for safety). */
const CHUNK_HEADROOM_BYTES = 1024;

export function checkSizeOptions(owner: string, opts: SizeOptions): Required<SizeOptions> {
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const streamWindowBytes = opts.streamWindowBytes ?? DEFAULT_STREAM_WINDOW_BYTES;
  const requestedChunk = opts.streamChunkBytes ?? DEFAULT_STREAM_CHUNK_BYTES;
  const bad = (name: string, value: number, allowed: string): StrataError =>
    new StrataError('STRATA_USAGE', `${owner}: ${name} must be ${allowed} (got ${value})`);
  if (
    !Number.isSafeInteger(maxFrameBytes) ||
    maxFrameBytes < MIN_MAX_FRAME_BYTES ||
    maxFrameBytes >= 2 ** 32 - 64
  ) {
    throw bad('maxFrameBytes', maxFrameBytes, `an integer from ${MIN_MAX_FRAME_BYTES} to 4 GiB`);
  }
  if (!Number.isSafeInteger(streamWindowBytes) || streamWindowBytes < MIN_STREAM_WINDOW_BYTES) {
    throw bad('streamWindowBytes', streamWindowBytes, `an integer of at least ${MIN_STREAM_WINDOW_BYTES}`);
  }
  if (!Number.isSafeInteger(requestedChunk) || requestedChunk <= 0) {
    throw bad('streamChunkBytes', requestedChunk, 'a positive integer');
  }
  // A chunk larger than the window or the frame limit could never be sent: cap it quietly only
  // when the default was used, otherwise say so.
  const cap = Math.min(Math.floor(streamWindowBytes / 2), maxFrameBytes - CHUNK_HEADROOM_BYTES);
  if (opts.streamChunkBytes !== undefined && requestedChunk > cap) {
    throw bad(
      'streamChunkBytes',
      requestedChunk,
      `at most half the stream window and below the frame limit (${cap})`,
    );
  }
  return { maxFrameBytes, streamWindowBytes, streamChunkBytes: Math.min(requestedChunk, cap) };
}
