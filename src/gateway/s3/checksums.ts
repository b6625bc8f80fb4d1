/**
 * The CRC checksums S3 clients send besides SHA-1/SHA-256: CRC32C (Castagnoli) and CRC64NVME
 * (the AWS CLI v2's default for every upload). CRC32C runs on @node-rs/crc32's native routine
 * (SSE 4.2 / ARMv8 CRC instructions), checked against a table-driven one at load, which is used
 * where the binary does not load. CRC64NVME is the AWS SDK's own implementation
 * (`@aws-sdk/checksums/crc`, slice-by-8 in JavaScript, ~300-600 MB/s on one core here): it runs on
 * the hash threads like MD5 does.
 */
import { createRequire } from 'node:module';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';

type Crc32c = (data: Uint8Array, previous: number) => number;

const TABLE = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  TABLE[i] = c >>> 0;
}

/** CRC32C one byte at a time: the reference the native routine is checked against. */
function crc32cTable(data: Uint8Array, previous: number): number {
  let crc = ~previous >>> 0;
  for (let i = 0; i < data.length; i++)
    crc = (TABLE[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

function pick(): Crc32c {
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c?: unknown };
    if (typeof mod.crc32c !== 'function') return crc32cTable;
    const native = mod.crc32c as (data: Uint8Array, initialState?: number) => number;
    const probe = Buffer.alloc(5_003);
    for (let i = 0; i < probe.length; i++) probe[i] = (i * 2654435761) >>> 24;
    const head = probe.subarray(0, 1_001);
    const tail = probe.subarray(1_001);
    if (native(probe) >>> 0 !== crc32cTable(probe, 0)) return crc32cTable;
    if (native(tail, native(head)) >>> 0 !== crc32cTable(probe, 0)) return crc32cTable;
    return (data, previous) => native(data, previous) >>> 0;
  } catch {
    return crc32cTable;
  }
}

/** CRC32C of `data` continuing from `previous` (0 to start), unsigned. */
export const crc32c: Crc32c = pick();

/** A running CRC64NVME. */
export class Crc64Nvme {
  readonly #h = new Crc64NvmeJs();

  update(data: Uint8Array): void {
    this.#h.update(data);
  }

  /** The 8 checksum bytes, big-endian (what `x-amz-checksum-crc64nvme` carries in base64). */
  async digest(): Promise<Buffer> {
    return Buffer.from(await this.#h.digest());
  }
}
