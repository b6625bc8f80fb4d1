/**
 * Request signing for tests that speak HTTP to the gateway directly (virtual-hosted style,
 * presigned URLs, signed aws-chunked bodies, cut-off uploads): smithy's SignatureV4 as the AWS
 * SDK configures it for S3, and node:http for full control over the bytes sent.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Hash, Hmac } from 'node:crypto';
import { request } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders } from 'node:http';
import { SignatureV4, getSigningKey } from '@smithy/signature-v4';
import { ACCESS_KEY, REGION, SECRET_KEY } from './harness.js';

type SourceData = string | ArrayBuffer | ArrayBufferView;

class Sha256 {
  readonly #secret: SourceData | undefined;
  #h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret;
    this.#h = this.#fresh();
  }
  #fresh(): Hash | Hmac {
    if (this.#secret === undefined) return createHash('sha256');
    const s = this.#secret;
    const key =
      typeof s === 'string'
        ? s
        : ArrayBuffer.isView(s)
          ? Buffer.from(s.buffer, s.byteOffset, s.byteLength)
          : Buffer.from(s);
    return createHmac('sha256', key);
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

export interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
}

export const DEFAULT_CREDS: Creds = { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY };

export function signer(creds: Creds = DEFAULT_CREDS): SignatureV4 {
  return new SignatureV4({
    service: 's3',
    region: REGION,
    credentials: creds,
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: true,
  });
}

export interface RawRequest {
  method: string;
  port: number;
  /** Host header (default 127.0.0.1:port). */
  host?: string;
  /** Encoded path. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Signs a request in the Authorization header; returns the headers to send. */
export async function signHeaders(
  r: RawRequest,
  payloadHash: string,
  opts: { creds?: Creds; date?: Date } = {},
): Promise<Record<string, string>> {
  const host = r.host ?? `127.0.0.1:${r.port}`;
  const signed = await signer(opts.creds).sign(
    {
      method: r.method,
      protocol: 'http:',
      hostname: host.replace(/:\d+$/, ''),
      port: r.port,
      path: r.path,
      query: r.query ?? {},
      headers: { host, 'x-amz-content-sha256': payloadHash, ...r.headers },
    },
    { signingDate: opts.date ?? new Date() },
  );
  return signed.headers;
}

/** A presigned URL (as the SDK's S3 presigner builds it: UNSIGNED-PAYLOAD, host signed). */
export async function presign(
  r: RawRequest,
  expiresInS: number,
  opts: { date?: Date; creds?: Creds } = {},
): Promise<string> {
  const host = `127.0.0.1:${r.port}`;
  const out = await signer(opts.creds).presign(
    {
      method: r.method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: r.port,
      path: r.path,
      query: r.query ?? {},
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    {
      expiresIn: expiresInS,
      signingDate: opts.date ?? new Date(),
      unsignableHeaders: new Set(['x-amz-content-sha256']),
      unhoistableHeaders: new Set(['x-amz-content-sha256']),
    },
  );
  const qs = Object.entries(out.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `http://${host}${r.path}?${qs}`;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Sends a request and collects the response; `write` controls how the body goes out. */
export function send(
  r: RawRequest,
  headers: Record<string, string>,
  write: (req: ClientRequest) => void,
): Promise<RawResponse> {
  const qs = Object.entries(r.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return new Promise<RawResponse>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: r.port,
        method: r.method,
        path: qs === '' ? r.path : `${r.path}?${qs}`,
        headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    write(req);
  });
}

/** The S3 error code in an XML error body. */
export function errorCode(body: Buffer): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(body.toString())?.[1];
}

/**
 * Frames `payload` as a signed aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) chained
 * from the seed signature of the request's Authorization header. `tamper` flips a byte of the
 * chunk with that index after signing.
 */
export async function signedChunkedBody(
  payload: Buffer,
  chunkBytes: number,
  seedSignature: string,
  date: Date,
  tamper?: number,
): Promise<Buffer> {
  const longDate = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${REGION}/s3/aws4_request`;
  const key = Buffer.from(await getSigningKey(Sha256, DEFAULT_CREDS, shortDate, REGION, 's3'));
  const emptyHash = sha256Hex('');
  const out: Buffer[] = [];
  let prev = seedSignature;
  const pieces: Buffer[] = [];
  for (let i = 0; i < payload.length; i += chunkBytes) pieces.push(payload.subarray(i, i + chunkBytes));
  pieces.push(Buffer.alloc(0));
  pieces.forEach((piece, idx) => {
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', longDate, scope, prev, emptyHash, sha256Hex(piece)].join(
      '\n',
    );
    const sig = createHmac('sha256', key).update(toSign).digest('hex');
    prev = sig;
    const data = Buffer.from(piece);
    if (tamper === idx && data.length > 0) data[0] = (data[0] ?? 0) ^ 0xff;
    out.push(
      Buffer.from(`${piece.length.toString(16)};chunk-signature=${sig}\r\n`),
      data,
      Buffer.from('\r\n'),
    );
  });
  return Buffer.concat(out);
}

export function chunkedLength(payloadBytes: number, chunkBytes: number): number {
  let n = 0;
  const frame = (size: number): number =>
    size.toString(16).length + ';chunk-signature='.length + 64 + 2 + size + 2;
  for (let i = 0; i < payloadBytes; i += chunkBytes) n += frame(Math.min(chunkBytes, payloadBytes - i));
  return n + frame(0);
}
