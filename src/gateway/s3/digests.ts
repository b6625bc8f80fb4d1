/**
 * Hashes computed over a body as it streams by: MD5 for the ETag and Content-MD5, SHA-256 for a
 * signed payload, and the `x-amz-checksum-*` algorithm the client chose. They are checked before
 * an upload is committed, so a corrupted body never becomes an object.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { S3Error } from './errors.js';

/** Checksum algorithms of `x-amz-checksum-*` that are verified; others are accepted unverified. */
export const VERIFIED_CHECKSUMS = ['crc32', 'sha1', 'sha256'] as const;
export type VerifiedChecksum = (typeof VERIFIED_CHECKSUMS)[number];
export const KNOWN_CHECKSUMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;

export interface ExpectedDigests {
  /** Content-MD5, base64. */
  md5Base64?: string;
  /** x-amz-content-sha256 when it is a hash (not UNSIGNED-PAYLOAD or STREAMING-…). */
  sha256Hex?: string;
  /** x-amz-checksum-ALGO, base64 (may also arrive in a trailer, set later). */
  checksum?: { algorithm: string; base64: string };
}

export class BodyDigests {
  readonly #md5 = createHash('md5');
  #sha256: Hash | undefined;
  #sha1: Hash | undefined;
  #crc32 = 0;
  #wantCrc32 = false;
  bytes = 0;

  constructor(expected: ExpectedDigests, checksumAlgorithm: string | undefined) {
    const algo = expected.checksum?.algorithm ?? checksumAlgorithm;
    if (expected.sha256Hex !== undefined || algo === 'sha256') this.#sha256 = createHash('sha256');
    if (algo === 'sha1') this.#sha1 = createHash('sha1');
    if (algo === 'crc32') this.#wantCrc32 = true;
  }

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.#md5.update(chunk);
    this.#sha256?.update(chunk);
    this.#sha1?.update(chunk);
    if (this.#wantCrc32) this.#crc32 = crc32(chunk, this.#crc32);
  }

  /** Finishes the hashes and throws the S3 error of the first mismatch. Returns the MD5. */
  verify(expected: ExpectedDigests): Buffer {
    const md5 = this.#md5.digest();
    const sha256 = this.#sha256?.digest();
    if (expected.md5Base64 !== undefined && md5.toString('base64') !== expected.md5Base64) {
      throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    if (expected.sha256Hex !== undefined && sha256?.toString('hex') !== expected.sha256Hex.toLowerCase()) {
      throw new S3Error(
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    const c = expected.checksum;
    if (c !== undefined) {
      let actual: string | undefined;
      if (c.algorithm === 'crc32') {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(this.#crc32 >>> 0);
        actual = b.toString('base64');
      } else if (c.algorithm === 'sha1') actual = this.#sha1?.digest('base64');
      else if (c.algorithm === 'sha256') actual = sha256?.toString('base64');
      if (actual !== undefined && actual !== c.base64) {
        throw new S3Error(
          'BadDigest',
          `The ${c.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
        );
      }
    }
    return md5;
  }
}

/** Validates Content-MD5's shape (base64 of 16 bytes). */
export function checkContentMd5(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (Buffer.from(value, 'base64').length !== 16) {
    throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid.');
  }
  return value;
}
