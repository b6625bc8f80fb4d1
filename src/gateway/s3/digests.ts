/**
 * Hashes computed over a body as it streams by: MD5 for the ETag and Content-MD5, SHA-256 for a
 * signed payload, and the `x-amz-checksum-*` algorithm the client chose (every one S3 defines).
 * They are checked before an upload is committed, so a corrupted body never becomes an object.
 * Uploads hash on the hash threads (hash-pool.ts); small documents hash inline with BodyDigests.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc64Nvme, crc32c } from './checksums.js';
import { S3Error } from './errors.js';

/** The `x-amz-checksum-*` algorithms: each is computed over the body and checked. */
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
  crc32c: boolean;
  crc64nvme: boolean;
}

/** The finished hashes of a body. */
export interface Digests {
  md5: Buffer;
  sha256?: Buffer;
  sha1?: Buffer;
  crc32?: number;
  crc32c?: number;
  /** 8 bytes, big-endian. */
  crc64nvme?: Buffer;
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
    crc32c: algo === 'crc32c',
    crc64nvme: algo === 'crc64nvme',
  };
}

/** The hashes of one body, on this thread. */
export class InlineHasher {
  readonly #md5 = createHash('md5');
  readonly #sha256: Hash | undefined;
  readonly #sha1: Hash | undefined;
  #crc32: number | undefined;
  #crc32c: number | undefined;
  readonly #crc64nvme: Crc64Nvme | undefined;

  constructor(algos: DigestAlgorithms) {
    if (algos.sha256) this.#sha256 = createHash('sha256');
    if (algos.sha1) this.#sha1 = createHash('sha1');
    if (algos.crc32) this.#crc32 = 0;
    if (algos.crc32c) this.#crc32c = 0;
    if (algos.crc64nvme) this.#crc64nvme = new Crc64Nvme();
  }

  update(chunk: Uint8Array): void {
    this.#md5.update(chunk);
    this.#sha256?.update(chunk);
    this.#sha1?.update(chunk);
    if (this.#crc32 !== undefined) this.#crc32 = crc32(chunk, this.#crc32);
    if (this.#crc32c !== undefined) this.#crc32c = crc32c(chunk, this.#crc32c);
    this.#crc64nvme?.update(chunk);
  }

  async digest(): Promise<Digests> {
    return {
      md5: this.#md5.digest(),
      ...(this.#sha256 === undefined ? {} : { sha256: this.#sha256.digest() }),
      ...(this.#sha1 === undefined ? {} : { sha1: this.#sha1.digest() }),
      ...(this.#crc32 === undefined ? {} : { crc32: this.#crc32 >>> 0 }),
      ...(this.#crc32c === undefined ? {} : { crc32c: this.#crc32c >>> 0 }),
      ...(this.#crc64nvme === undefined ? {} : { crc64nvme: await this.#crc64nvme.digest() }),
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
  if (c.algorithm === 'crc32') actual = u32Base64(d.crc32);
  else if (c.algorithm === 'crc32c') actual = u32Base64(d.crc32c);
  else if (c.algorithm === 'crc64nvme') actual = d.crc64nvme?.toString('base64');
  else if (c.algorithm === 'sha1') actual = d.sha1?.toString('base64');
  else if (c.algorithm === 'sha256') actual = d.sha256?.toString('base64');
  if (actual === undefined) {
    // Every algorithm a request may name is computed (http.ts refuses the others): a missing
    // digest is a bug here, and an unchecked body must not become an object.
    throw new S3Error('InternalError', `The ${c.algorithm.toUpperCase()} checksum was not computed.`);
  }
  if (actual !== c.base64) {
    throw new S3Error(
      'BadDigest',
      `The ${c.algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
    );
  }
}

function u32Base64(v: number | undefined): string | undefined {
  if (v === undefined) return undefined;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b.toString('base64');
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
  async verify(expected: ExpectedDigests): Promise<Buffer> {
    const d = await this.#hasher.digest();
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
