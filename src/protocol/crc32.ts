/**
 * The CRC32 (IEEE, zlib's polynomial) of the block format's chunk checksums, for both sides:
 * workers verify every byte a read serves and checksum every byte a remote write stores; clients
 * checksum what they write short-circuit. zlib's routine in Node 20 is table-driven (~5 GiB/s
 * here); @node-rs/crc32 uses the CPU's carry-less multiply (~2.5× faster on the same 64 KiB
 * chunks). Measured: remote reads of cached blocks cost the worker ~17 % less event-loop CPU per
 * GiB, writes ~15 % (docs/worker.md). The native module is optional: where its binary does not
 * load, or gives another answer than zlib on a probe (whole buffers and continued ones), zlib's
 * routine is used; both compute the same function, so stored checksums do not depend on it.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC32 of `data`, continuing from `previous` (the CRC32 of the bytes before it; 0 to start). */
type Crc32 = (data: Uint8Array, previous?: number) => number;

function pick(): { crc32: Crc32; engine: 'native' | 'zlib' } {
  const zlib: Crc32 = (data, previous = 0) => zlibCrc32(data, previous) >>> 0;
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32?: unknown };
    if (typeof mod.crc32 !== 'function') return { crc32: zlib, engine: 'zlib' };
    const native = mod.crc32 as (data: Uint8Array, initialState?: number) => number;
    // Unaligned lengths and offsets, as chunk tails and subarrays give.
    const probe = Buffer.alloc(70_001);
    for (let i = 0; i < probe.length; i++) probe[i] = (i * 2654435761) >>> 24;
    for (const view of [probe, probe.subarray(3, 65_539), probe.subarray(0, 1), probe.subarray(0, 0)]) {
      if (native(view) >>> 0 !== zlib(view)) return { crc32: zlib, engine: 'zlib' };
    }
    // Continued over pieces, as a chunk arriving in several network reads is.
    const head = probe.subarray(0, 40_003);
    const tail = probe.subarray(40_003);
    if (native(tail, native(head)) >>> 0 !== zlib(probe)) return { crc32: zlib, engine: 'zlib' };
    return { crc32: (data, previous = 0) => native(data, previous) >>> 0, engine: 'native' };
  } catch {
    return { crc32: zlib, engine: 'zlib' };
  }
}

const chosen = pick();

/**
 * CRC32 of `data` as an unsigned 32-bit number (the same value as zlib's `crc32`), continuing
 * from `previous` when given.
 */
export const crc32: Crc32 = chosen.crc32;

/** Which routine `crc32` runs: the native one, or zlib's where the native one is not available. */
export const crc32Engine: 'native' | 'zlib' = chosen.engine;
