/**
 * The CRC checksums S3 clients send besides SHA-1/SHA-256: CRC32C (Castagnoli) and CRC64NVME
 * (the AWS CLI v2's default for every upload). CRC32C is the native routine of
 * src/protocol/crc32.ts, checked at load like the block format's CRC32. CRC64NVME is the AWS
 * SDK's own implementation (`@aws-sdk/checksums/crc`, slice-by-8 in JavaScript, ~300-600 MB/s on
 * one core here): it runs on the hash threads like MD5 does.
 */
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';

export { crc32c } from '../../protocol/crc32.js';

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
