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

/** A CRC of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start). */
type Crc32 = (data: Uint8Array, previous?: number) => number;

/**
 * @node-rs/crc32's routine `name`, when its binary loads and gives the same answers as
 * `reference` on a probe: whole buffers, unaligned lengths and offsets (as chunk tails and
 * subarrays give), and a CRC continued over pieces (as a chunk arriving in several network
 * reads is). Undefined otherwise, and the caller uses the reference.
 */
function checkedNative(name: 'crc32' | 'crc32c', reference: Crc32): Crc32 | undefined {
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as Record<string, unknown>;
    const fn = mod[name];
    if (typeof fn !== 'function') return undefined;
    const native = fn as (data: Uint8Array, initialState?: number) => number;
    const probe = Buffer.alloc(70_001);
    for (let i = 0; i < probe.length; i++) probe[i] = (i * 2654435761) >>> 24;
    for (const view of [probe, probe.subarray(3, 65_539), probe.subarray(0, 1), probe.subarray(0, 0)]) {
      if (native(view) >>> 0 !== reference(view)) return undefined;
    }
    const head = probe.subarray(0, 40_003);
    const tail = probe.subarray(40_003);
    if (native(tail, native(head)) >>> 0 !== reference(probe)) return undefined;
    return (data, previous = 0) => native(data, previous) >>> 0;
  } catch {
    return undefined;
  }
}

function pick(): { crc32: Crc32; engine: 'native' | 'zlib' } {
  const zlib: Crc32 = (data, previous = 0) => zlibCrc32(data, previous) >>> 0;
  const native = checkedNative('crc32', zlib);
  return native === undefined ? { crc32: zlib, engine: 'zlib' } : { crc32: native, engine: 'native' };
}

const chosen = pick();

/**
 * CRC32 of `data` as an unsigned 32-bit number (the same value as zlib's `crc32`), continuing
 * from `previous` when given.
 */
export const crc32: Crc32 = chosen.crc32;

/** Which routine `crc32` runs: the native one, or zlib's where the native one is not available. */
export const crc32Engine: 'native' | 'zlib' = chosen.engine;

const CASTAGNOLI = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  CASTAGNOLI[i] = c >>> 0;
}

/** CRC32C one byte at a time: the reference, and the routine where the native one is missing. */
function crc32cTable(data: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (let i = 0; i < data.length; i++)
    crc = (CASTAGNOLI[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

/**
 * CRC32C (Castagnoli, what S3's `x-amz-checksum-crc32c` carries) of `data`, unsigned, continuing
 * from `previous`: @node-rs/crc32's native routine (SSE 4.2 / ARMv8 CRC instructions), checked as
 * `crc32`'s is, else a table-driven one.
 */
export const crc32c: Crc32 = checkedNative('crc32c', crc32cTable) ?? crc32cTable;
