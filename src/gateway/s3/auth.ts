/**
 * AWS Signature V4 verification, in the Authorization header and in presigned URLs. The
 * canonical request, string to sign and signature come from `@smithy/signature-v4` (the AWS SDK's
 * own signer), fed with the request exactly as received; this file only extracts the pieces,
 * checks credentials, dates and scope, and compares.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Hash, Hmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ALGORITHM_IDENTIFIER, SignatureV4, getCanonicalHeaders, getSigningKey } from '@smithy/signature-v4';
import { S3Error } from './errors.js';

/** How far a request's date may be from ours (S3 allows 15 minutes). */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** Longest validity of a presigned URL (S3: 7 days). */
export const MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600;
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
const EMPTY_SHA256 = createHash('sha256').digest('hex');

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** SHA-256 / HMAC-SHA256 from node:crypto in the shape smithy's signer expects. */
class NodeSha256 {
  readonly #secret: SourceData | undefined;
  #h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#h = this.#fresh();
  }
  #fresh(): Hash | Hmac {
    return this.#secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(this.#secret));
  }
  update(data: Uint8Array): void {
    this.#h.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.#h.digest());
  }
  reset(): void {
    this.#h = this.#fresh();
  }
}

/** Exposes smithy's canonical-request and string-to-sign steps for a request we received. */
class Verifier extends SignatureV4 {
  async signatureOf(
    request: {
      method: string;
      path: string;
      query: Record<string, string | string[]>;
      headers: Record<string, string>;
    },
    signedHeaders: readonly string[],
    payloadHash: string,
    longDate: string,
    scope: string,
    signingDate: Date,
    region: string,
  ): Promise<string> {
    const http = { ...request, protocol: 'http:', hostname: request.headers.host ?? '' };
    const canonicalHeaders = getCanonicalHeaders(http, undefined, new Set(signedHeaders));
    const canonical = this.createCanonicalRequest(http, canonicalHeaders, payloadHash);
    const toSign = await this.createStringToSign(longDate, scope, canonical, ALGORITHM_IDENTIFIER);
    return this.sign(toSign, { signingDate, signingRegion: region, signingService: 's3' });
  }
}

/** What a verified request may do and how to check its streamed chunks. */
export interface AuthResult {
  /** Undefined for an anonymous request. */
  accessKey: string | undefined;
  /** x-amz-content-sha256 (or UNSIGNED-PAYLOAD for presigned URLs). */
  payloadHash: string;
  /** For STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies: the seed signature and what chunk signatures need. */
  chunkSigning?: ChunkSigning;
}

export interface ChunkSigning {
  signingKey: Buffer;
  longDate: string;
  scope: string;
  seedSignature: string;
}

export interface AuthOptions {
  region: string;
  /** access key → secret key */
  credentials: ReadonlyMap<string, string>;
  anonymousRead: boolean;
}

interface ParsedCredential {
  accessKey: string;
  shortDate: string;
  region: string;
  service: string;
}

function parseCredential(text: string, where: 'header' | 'query'): ParsedCredential {
  const parts = text.split('/');
  const code = where === 'header' ? 'AuthorizationHeaderMalformed' : 'AuthorizationQueryParametersError';
  if (parts.length !== 5 || parts[4] !== 'aws4_request') {
    throw new S3Error(
      code,
      `The credential "${text}" is malformed; expected "<key>/<date>/<region>/s3/aws4_request".`,
    );
  }
  const [accessKey = '', shortDate = '', region = '', service = ''] = parts;
  return { accessKey, shortDate, region, service };
}

/** "20130524T000000Z" → Date, or undefined. */
function parseAmzDate(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (m !== null) return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function headerString(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class SigV4Authenticator {
  readonly #opts: AuthOptions;
  readonly #verifiers = new Map<string, Verifier>();

  constructor(opts: AuthOptions) {
    this.#opts = opts;
  }

  /**
   * Verifies a request. `rawPath` is the path as sent (still percent-encoded), `query` the
   * decoded query pairs in order. Throws the S3 error a client expects.
   */
  async verify(
    req: IncomingMessage,
    rawPath: string,
    query: readonly [string, string][],
    readOnly: boolean,
    nowMs = Date.now(),
  ): Promise<AuthResult> {
    const authz = headerString(req, 'authorization');
    const hasQueryAuth = query.some(([k]) => k === 'X-Amz-Signature' || k === 'X-Amz-Credential');
    if (authz === undefined && !hasQueryAuth) {
      if (this.#opts.anonymousRead && readOnly)
        return { accessKey: undefined, payloadHash: UNSIGNED_PAYLOAD };
      throw new S3Error('AccessDenied', 'Access Denied (anonymous requests are not allowed).');
    }
    if (authz !== undefined && hasQueryAuth) {
      throw new S3Error(
        'InvalidArgument',
        'Only one auth mechanism allowed; both the header and the query carry one.',
      );
    }
    return authz !== undefined
      ? this.#verifyHeader(req, authz, rawPath, query, nowMs)
      : this.#verifyQuery(req, rawPath, query, nowMs);
  }

  #secretFor(
    cred: ParsedCredential,
    code: 'AuthorizationHeaderMalformed' | 'AuthorizationQueryParametersError',
  ): string {
    const secret = this.#opts.credentials.get(cred.accessKey);
    if (secret === undefined) {
      throw new S3Error(
        'InvalidAccessKeyId',
        'The AWS Access Key Id you provided does not exist in our records.',
        { AWSAccessKeyId: cred.accessKey },
      );
    }
    if (cred.region !== this.#opts.region) {
      throw new S3Error(code, `the region '${cred.region}' is wrong; expecting '${this.#opts.region}'`, {
        Region: this.#opts.region,
      });
    }
    if (cred.service !== 's3')
      throw new S3Error(code, `the service '${cred.service}' is wrong; expecting 's3'`);
    return secret;
  }

  #verifier(accessKey: string, secret: string): Verifier {
    let v = this.#verifiers.get(accessKey);
    if (v === undefined) {
      v = new Verifier({
        service: 's3',
        region: this.#opts.region,
        credentials: { accessKeyId: accessKey, secretAccessKey: secret },
        sha256: NodeSha256,
        // S3 signs the path as sent, without the double encoding other services use.
        uriEscapePath: false,
        applyChecksum: false,
      });
      this.#verifiers.set(accessKey, v);
    }
    return v;
  }

  #signedHeaderValues(req: IncomingMessage, signed: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of signed) {
      const v = headerString(req, name);
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  async #verifyHeader(
    req: IncomingMessage,
    authz: string,
    rawPath: string,
    query: readonly [string, string][],
    nowMs: number,
  ): Promise<AuthResult> {
    const m = /^AWS4-HMAC-SHA256\s+(.*)$/.exec(authz.trim());
    if (m === null) {
      throw new S3Error(
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed; only AWS4-HMAC-SHA256 (Signature V4) is supported.',
      );
    }
    const fields = new Map<string, string>();
    for (const part of (m[1] ?? '').split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const credential = fields.get('Credential');
    const signedList = fields.get('SignedHeaders');
    const signature = fields.get('Signature');
    if (credential === undefined || signedList === undefined || signature === undefined) {
      throw new S3Error(
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed; it needs Credential, SignedHeaders and Signature.',
      );
    }
    const cred = parseCredential(credential, 'header');
    const secret = this.#secretFor(cred, 'AuthorizationHeaderMalformed');
    const amzDate = headerString(req, 'x-amz-date') ?? headerString(req, 'date');
    const date = parseAmzDate(amzDate);
    if (date === undefined) {
      throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header.');
    }
    if (Math.abs(date.getTime() - nowMs) > MAX_CLOCK_SKEW_MS) {
      throw new S3Error(
        'RequestTimeTooSkewed',
        'The difference between the request time and the current time is too large.',
        {
          RequestTime: amzDate ?? '',
          ServerTime: new Date(nowMs).toISOString(),
          MaxAllowedSkewMilliseconds: String(MAX_CLOCK_SKEW_MS),
        },
      );
    }
    const longDate = formatLongDate(date);
    if (longDate.slice(0, 8) !== cred.shortDate) {
      throw new S3Error(
        'AuthorizationHeaderMalformed',
        'The credential date does not match the request date.',
      );
    }
    const payloadHash = headerString(req, 'x-amz-content-sha256');
    if (payloadHash === undefined) {
      throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256.');
    }
    const signed = signedList.split(';');
    if (!signed.includes('host')) {
      throw new S3Error('AuthorizationHeaderMalformed', 'SignedHeaders must include host.');
    }
    const headers = this.#signedHeaderValues(req, signed);
    // smithy signs x-amz-date as the date header; a request dated by `Date:` alone keeps that one.
    const scope = `${cred.shortDate}/${cred.region}/s3/aws4_request`;
    const expected = await this.#verifier(cred.accessKey, secret).signatureOf(
      { method: req.method ?? 'GET', path: rawPath, query: queryObject(query), headers },
      signed,
      payloadHash,
      longDate,
      scope,
      date,
      cred.region,
    );
    if (!sameHex(expected, signature)) {
      throw new S3Error(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { AWSAccessKeyId: cred.accessKey },
      );
    }
    const result: AuthResult = { accessKey: cred.accessKey, payloadHash };
    if (payloadHash === STREAMING_SIGNED || payloadHash === STREAMING_SIGNED_TRAILER) {
      const key = await getSigningKey(
        NodeSha256,
        { accessKeyId: cred.accessKey, secretAccessKey: secret },
        cred.shortDate,
        cred.region,
        's3',
      );
      result.chunkSigning = { signingKey: Buffer.from(key), longDate, scope, seedSignature: signature };
    }
    return result;
  }

  async #verifyQuery(
    req: IncomingMessage,
    rawPath: string,
    query: readonly [string, string][],
    nowMs: number,
  ): Promise<AuthResult> {
    const q = new Map(query);
    const bad = (what: string): S3Error =>
      new S3Error('AuthorizationQueryParametersError', `Query-string authentication: ${what}.`);
    if (q.get('X-Amz-Algorithm') !== ALGORITHM_IDENTIFIER) {
      throw bad('X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    }
    const credential = q.get('X-Amz-Credential');
    const amzDate = q.get('X-Amz-Date');
    const expiresText = q.get('X-Amz-Expires');
    const signedList = q.get('X-Amz-SignedHeaders');
    const signature = q.get('X-Amz-Signature');
    if (
      credential === undefined ||
      amzDate === undefined ||
      signedList === undefined ||
      signature === undefined
    ) {
      throw bad('X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Signature are required');
    }
    const cred = parseCredential(credential, 'query');
    const secret = this.#secretFor(cred, 'AuthorizationQueryParametersError');
    const date = parseAmzDate(amzDate);
    if (date === undefined || !/^\d{8}T\d{6}Z$/.test(amzDate))
      throw bad('X-Amz-Date must be YYYYMMDDTHHMMSSZ');
    const expiresS = expiresText === undefined ? MAX_PRESIGN_EXPIRES_S : Number(expiresText);
    if (!Number.isInteger(expiresS) || expiresS < 1 || expiresS > MAX_PRESIGN_EXPIRES_S) {
      throw bad(`X-Amz-Expires must be 1..${MAX_PRESIGN_EXPIRES_S} seconds`);
    }
    if (date.getTime() - nowMs > MAX_CLOCK_SKEW_MS) {
      throw new S3Error('AccessDenied', 'Request is not valid yet (X-Amz-Date is in the future).');
    }
    if (nowMs > date.getTime() + expiresS * 1000) {
      throw new S3Error('AccessDenied', 'Request has expired.', {
        Expires: new Date(date.getTime() + expiresS * 1000).toISOString(),
        ServerTime: new Date(nowMs).toISOString(),
      });
    }
    if (amzDate.slice(0, 8) !== cred.shortDate) throw bad('the credential date does not match X-Amz-Date');
    const signed = signedList.split(';');
    const headers = this.#signedHeaderValues(req, signed);
    const payloadHash =
      q.get('X-Amz-Content-Sha256') ?? headerString(req, 'x-amz-content-sha256') ?? UNSIGNED_PAYLOAD;
    const scope = `${cred.shortDate}/${cred.region}/s3/aws4_request`;
    const expected = await this.#verifier(cred.accessKey, secret).signatureOf(
      { method: req.method ?? 'GET', path: rawPath, query: queryObject(query), headers },
      signed,
      payloadHash,
      amzDate,
      scope,
      date,
      cred.region,
    );
    if (!sameHex(expected, signature)) {
      throw new S3Error(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
        { AWSAccessKeyId: cred.accessKey },
      );
    }
    return { accessKey: cred.accessKey, payloadHash };
  }
}

function formatLongDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** Query pairs as smithy's signer takes them (repeated keys become arrays). */
function queryObject(query: readonly [string, string][]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of query) {
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [prev, v];
  }
  return out;
}

/** The signature of one aws-chunked chunk (or of the trailer), chained from the previous one. */
export function chunkSignature(s: ChunkSigning, previous: string, chunkSha256Hex: string): string {
  const toSign = [
    'AWS4-HMAC-SHA256-PAYLOAD',
    s.longDate,
    s.scope,
    previous,
    EMPTY_SHA256,
    chunkSha256Hex,
  ].join('\n');
  return createHmac('sha256', s.signingKey).update(toSign).digest('hex');
}

export function trailerSignature(s: ChunkSigning, previous: string, trailerText: string): string {
  const hash = createHash('sha256').update(trailerText).digest('hex');
  const toSign = ['AWS4-HMAC-SHA256-TRAILER', s.longDate, s.scope, previous, hash].join('\n');
  return createHmac('sha256', s.signingKey).update(toSign).digest('hex');
}

export { sameHex };
