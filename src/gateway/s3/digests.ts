/**
 * Hashes computed over a body as it streams by: MD5 for the ETag and Content-MD5, SHA-256 for a
 * signed payload, and the `x-amz-checksum-*` algorithm the client chose. They are checked before
 * an upload is committed, so a corrupted body never becomes an object. Uploads hash on the
 * hash threads (hash-pool.ts); small documents hash inline with BodyDigests.
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

/** Which hashes a body needs besides MD5 (always computed, it is the ETag). */
export interface DigestAlgorithms {
  sha256: boolean;
  sha1: boolean;
  crc32: boolean;
}

/** The finished hashes of a body. */
export interface Digests {
  md5: Buffer;
  sha256?: Buffer;
  sha1?: Buffer;
  crc32?: number;
}

export function algorithmsFor(
  expected: ExpectedDigests,
  checksumAlgorithm: string | undefined,
): DigestAlgorithms {
  const algo = expected.checksum?.algorithm ?? checksumAlgorithm;
  return {
    sha256: expected.sha256Hex !== undefined || algo === 'sha256',
    sha1: algo === 'sha1',
    crc32: algo === 'crc32',
  };
}

/** The hashes of one body, on this thread. */
export class InlineHasher {
  readonly #md5 = createHash('md5');
  readonly #sha256: Hash | undefined;
  readonly #sha1: Hash | undefined;
  #crc32: number | undefined;

  constructor(algos: DigestAlgorithms) {
    if (algos.sha256) this.#sha256 = createHash('sha256');
    if (algos.sha1) this.#sha1 = createHash('sha1');
    if (algos.crc32) this.#crc32 = 0;
  }

  update(chunk: Uint8Array): void {
    this.#md5.update(chunk);
    this.#sha256?.update(chunk);
    this.#sha1?.update(chunk);
    if (this.#crc32 !== undefined) this.#crc32 = crc32(chunk, this.#crc32);
  }

  digest(): Digests {
    return {
      md5: this.#md5.digest(),
      ...(this.#sha256 === undefined ? {} : { sha256: this.#sha256.digest() }),
      ...(this.#sha1 === undefined ? {} : { sha1: this.#sha1.digest() }),
      ...(this.#crc32 === undefined ? {} : { crc32: this.#crc32 >>> 0 }),
    };
  }
}

/** Throws the S3 error of the first digest that does not match what the client announced. */
export function verifyDigests(d: Digests, expected: ExpectedDigests): void {
  if (expected.md5Base64 !== undefined && d.md5.toString('base64') !== expected.md5Base64) {
    throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  if (expected.sha256Hex !== undefined && d.sha256?.toString('hex') !== expected.sha256Hex.toLowerCase()) {
    throw new S3Error(
      'XAmzContentSHA256Mismatch',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  const c = expected.checksum;
  if (c === undefined) return;
  let actual: string | undefined;
  if (c.algorithm === 'crc32' && d.crc32 !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(d.crc32);
    actual = b.toString('base64');
  } else if (c.algorithm === 'sha1') actual = d.sha1?.toString('base64');
  else if (c.algorithm === 'sha256') actual = d.sha256?.toString('base64');
  if (actual !== undefined && actual !== c.base64) {
    throw new S3Error(
      'BadDigest',
      `The ${c.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
    );
  }
}

/** Inline digests of a small body (an XML document) with its byte count. */
export class BodyDigests {
  readonly #hasher: InlineHasher;
  bytes = 0;

  constructor(expected: ExpectedDigests, checksumAlgorithm: string | undefined) {
    this.#hasher = new InlineHasher(algorithmsFor(expected, checksumAlgorithm));
  }

  update(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.#hasher.update(chunk);
  }

  /** Finishes the hashes and throws the S3 error of the first mismatch. Returns the MD5. */
  verify(expected: ExpectedDigests): Buffer {
    const d = this.#hasher.digest();
    verifyDigests(d, expected);
    return d.md5;
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
