/**
 * The CRC32 (IEEE, zlib's polynomial: the block format's chunk checksums) that block reads verify
 * with. Verification runs on the worker's event loop for every byte a remote read serves, and
 * zlib's routine in Node 20 is table-driven (~5 GiB/s here); @node-rs/crc32 uses the CPU's
 * carry-less multiply (~13 GiB/s on the same 64 KiB chunks). Measured on remote reads of cached
 * blocks: the worker's event-loop CPU per GiB fell by ~17 % (docs/worker.md). The native module is
 * optional: where its binary does not load, or gives another answer than zlib on a probe, zlib's
 * routine is used; both compute the same function, so stored checksums do not depend on it.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

type Crc32 = (data: Uint8Array) => number;

function pick(): { crc32: Crc32; engine: 'native' | 'zlib' } {
  const zlib: Crc32 = (data) => zlibCrc32(data) >>> 0;
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32?: unknown };
    if (typeof mod.crc32 !== 'function') return { crc32: zlib, engine: 'zlib' };
    const native = mod.crc32 as (data: Uint8Array) => number;
    // Unaligned lengths and offsets, as chunk tails and subarrays give.
    const probe = Buffer.alloc(70_001);
    for (let i = 0; i < probe.length; i++) probe[i] = (i * 2654435761) >>> 24;
    for (const view of [probe, probe.subarray(3, 65_539), probe.subarray(0, 1), probe.subarray(0, 0)]) {
      if (native(view) >>> 0 !== zlib(view)) return { crc32: zlib, engine: 'zlib' };
    }
    return { crc32: (data) => native(data) >>> 0, engine: 'native' };
  } catch {
    return { crc32: zlib, engine: 'zlib' };
  }
}

const chosen = pick();

/** CRC32 of `data` as an unsigned 32-bit number (the same value as zlib's `crc32`). */
export const crc32: Crc32 = chosen.crc32;

/** Which routine `crc32` runs: the native one, or zlib's where the native one is not available. */
export const crc32Engine: 'native' | 'zlib' = chosen.engine;
