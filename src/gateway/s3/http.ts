/**
 * The per-request context and the HTTP shapes every operation shares: request bodies (plain,
 * aws-chunked, with digests to check), XML and error responses with request ids, and the
 * headers that describe an object.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
} from './auth.js';
import type { AuthResult } from './auth.js';
import { AwsChunkedDecoder } from './chunked.js';
import { BodyDigests, KNOWN_CHECKSUMS, checkContentMd5 } from './digests.js';
import type { ExpectedDigests } from './digests.js';
import { S3Error, toS3Error } from './errors.js';
import { DEFAULT_CONTENT_TYPE } from './object-meta.js';
import type { ObjectInfo } from './object-meta.js';
import { XML_DECLARATION, escapeXml } from './xml.js';

export interface S3Context {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  method: string;
  bucket: string | undefined;
  key: string | undefined;
  /** Decoded query pairs in order, and the same as a map (last value wins). */
  queryPairs: [string, string][];
  query: Map<string, string>;
  auth: AuthResult;
  /** Operation name for logs and metrics, set by the router. */
  op: string;
  /** Bytes of request body received and response body sent (for metrics). */
  bytesIn: number;
  bytesOut: number;
  /**
   * The status the operation ended with when it is not the one sent: an error document inside a
   * 200 that had already gone out (sendXmlKeepingAlive). Metrics count this one.
   */
  outcomeStatus?: number;
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function parseLength(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,16}$/.test(text.trim())) {
    throw new S3Error('InvalidArgument', `${name} must be a non-negative integer (got "${text}").`);
  }
  return Number(text.trim());
}

export interface RequestBody {
  stream: AsyncIterable<Buffer>;
  /** Payload length when announced (Content-Length, or x-amz-decoded-content-length for aws-chunked). */
  expectedBytes: number | undefined;
  /** Digests to check at the end (trailer checksums are read once the body has ended). */
  expected: () => ExpectedDigests;
  /** The x-amz-checksum algorithm in use, if any. */
  checksumAlgorithm: string | undefined;
  /** The checksum header to echo in the response. */
  checksumEcho: () => [string, string] | undefined;
}

/**
 * The request's payload: aws-chunked frames are decoded (signed chunks verified), so only the
 * object's bytes come out; digests (Content-MD5, SHA-256 of a signed payload, x-amz-checksum-*
 * from a header or trailer) are returned to be checked before committing.
 */
export function requestBody(ctx: S3Context): RequestBody {
  const { req, auth } = ctx;
  const payloadHash = auth.payloadHash;
  const encoding = (header(req, 'content-encoding') ?? '').toLowerCase();
  const chunked =
    payloadHash.startsWith('STREAMING-') || encoding.split(',').some((e) => e.trim() === 'aws-chunked');
  if (
    chunked &&
    ![STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER].includes(payloadHash)
  ) {
    if (payloadHash !== UNSIGNED_PAYLOAD) {
      throw new S3Error(
        'InvalidArgument',
        `x-amz-content-sha256 "${payloadHash}" is not supported with aws-chunked.`,
      );
    }
  }
  const md5Base64 = checkContentMd5(header(req, 'content-md5'));
  let checksum: { algorithm: string; base64: string } | undefined;
  for (const a of KNOWN_CHECKSUMS) {
    const v = header(req, `x-amz-checksum-${a}`);
    if (v !== undefined) checksum = { algorithm: a, base64: v };
  }
  const trailerNames = (header(req, 'x-amz-trailer') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  let checksumAlgorithm = checksum?.algorithm;
  for (const t of trailerNames) {
    const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(t);
    if (m?.[1] === undefined) continue;
    if (!(KNOWN_CHECKSUMS as readonly string[]).includes(m[1])) {
      // Never stored unchecked: the client believes the checksum it names is verified.
      throw new S3Error(
        'InvalidRequest',
        `The checksum algorithm of the trailer "${t}" is not supported: use one of ${KNOWN_CHECKSUMS.join(', ')}.`,
      );
    }
    checksumAlgorithm = m[1];
  }
  const sha256Hex = /^[0-9a-fA-F]{64}$/.test(payloadHash) ? payloadHash : undefined;
  const base: ExpectedDigests = {
    ...(md5Base64 === undefined ? {} : { md5Base64 }),
    ...(sha256Hex === undefined ? {} : { sha256Hex }),
    ...(checksum === undefined ? {} : { checksum }),
  };
  if (!chunked) {
    const expectedBytes = parseLength(header(req, 'content-length'), 'Content-Length');
    if (expectedBytes === undefined && header(req, 'transfer-encoding') === undefined) {
      throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header.');
    }
    return {
      stream: counted(ctx, req),
      expectedBytes,
      expected: () => base,
      checksumAlgorithm,
      checksumEcho: () =>
        checksum === undefined ? undefined : [`x-amz-checksum-${checksum.algorithm}`, checksum.base64],
    };
  }
  let trailerChecksum: { algorithm: string; base64: string } | undefined;
  const decoder = new AwsChunkedDecoder({
    ...(auth.chunkSigning === undefined ? {} : { signing: auth.chunkSigning }),
    onTrailer: (name, value) => {
      const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name);
      if (m?.[1] !== undefined) trailerChecksum = { algorithm: m[1], base64: value };
    },
  });
  // Errors of either side end the pipeline; the iterator below then throws and the upload aborts.
  pipeline(counted(ctx, req), decoder).catch(() => undefined);
  return {
    stream: decoder,
    expectedBytes: parseLength(header(req, 'x-amz-decoded-content-length'), 'x-amz-decoded-content-length'),
    expected: () => (trailerChecksum === undefined ? base : { ...base, checksum: trailerChecksum }),
    checksumAlgorithm,
    checksumEcho: () => {
      const c = trailerChecksum ?? checksum;
      return c === undefined ? undefined : [`x-amz-checksum-${c.algorithm}`, c.base64];
    },
  };
}

/** The request as an async iterable that counts bytes and fails when the client goes away. */
async function* counted(ctx: S3Context, req: IncomingMessage): AsyncGenerator<Buffer> {
  for await (const chunk of req) {
    const b = chunk as Buffer;
    ctx.bytesIn += b.length;
    yield b;
  }
  if (!req.complete) throw new S3Error('IncompleteBody', 'The request body ended before it was complete.');
}

/** Reads a small request body (an XML document) whole, with its digests checked. */
export async function readSmallBody(ctx: S3Context, limitBytes: number): Promise<Buffer> {
  const body = requestBody(ctx);
  const chunks: Buffer[] = [];
  let size = 0;
  const digests = new BodyDigests(body.expected(), body.checksumAlgorithm);
  for await (const c of body.stream) {
    size += c.length;
    if (size > limitBytes) {
      throw new S3Error('MalformedXML', `The request document is larger than ${limitBytes} bytes.`);
    }
    digests.update(c);
    chunks.push(c);
  }
  await digests.verify(body.expected());
  return Buffer.concat(chunks);
}

/** Reads and throws away a body the operation does not need (so the connection can be reused). */
export async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req) {
    // discard
  }
}

export function commonHeaders(ctx: S3Context): Record<string, string> {
  return { 'x-amz-request-id': ctx.requestId, 'x-amz-id-2': ctx.requestId, server: 'Strata' };
}

export function sendXml(
  ctx: S3Context,
  status: number,
  xml: string,
  extra: Record<string, string> = {},
): void {
  const body = Buffer.from(xml);
  ctx.res.writeHead(status, {
    ...commonHeaders(ctx),
    'content-type': 'application/xml',
    'content-length': String(body.length),
    ...extra,
  });
  ctx.res.end(body);
  ctx.bytesOut += body.length;
}

export function sendEmpty(ctx: S3Context, status: number, extra: Record<string, string | number> = {}): void {
  const headers: Record<string, string> = { ...commonHeaders(ctx) };
  for (const [k, v] of Object.entries(extra)) headers[k] = String(v);
  if (headers['content-length'] === undefined) headers['content-length'] = '0';
  ctx.res.writeHead(status, headers);
  ctx.res.end();
}

/** Spaces sent while a long operation runs (S3 sends whitespace in the same way). */
export const KEEPALIVE_INTERVAL_MS = 5_000;

/**
 * Answers an operation whose result is an XML document and that may take long (completing a
 * multipart upload onto a `through` mount writes the object to the UFS; a copy streams the whole
 * object), as S3 does: when no answer is ready after `afterMs`, the 200 status, the headers and
 * the XML declaration go out, then a space every KEEPALIVE_INTERVAL_MS, so clients and proxies
 * with idle timeouts (the AWS CLI's is 60 s) keep waiting; the document follows, or, when the
 * operation fails, an `<Error>` document in the 200 response ("200 with an error", which the AWS
 * SDKs and CLI read as the error). A failure after the headers is thrown again once the error
 * document is sent, for the caller's logs and metrics.
 */
export async function sendXmlKeepingAlive(
  ctx: S3Context,
  afterMs: number,
  run: () => Promise<string>,
): Promise<void> {
  const res = ctx.res;
  let ticker: NodeJS.Timeout | undefined;
  const write = (text: string): void => {
    // A client gone meanwhile: nothing to write to (the operation still finishes).
    if (res.destroyed || res.writableEnded) return;
    res.write(text);
    ctx.bytesOut += Buffer.byteLength(text);
  };
  const begin = (): void => {
    if (res.destroyed) return;
    res.writeHead(200, { ...commonHeaders(ctx), 'content-type': 'application/xml' });
    write(XML_DECLARATION);
    ticker = setInterval(() => write(' '), KEEPALIVE_INTERVAL_MS);
  };
  // 0: at once (a deterministic path for tests and for clients that want it always).
  const start = afterMs === 0 ? undefined : setTimeout(begin, afterMs);
  if (afterMs === 0) begin();
  const stop = (): void => {
    clearTimeout(start);
    if (ticker !== undefined) clearInterval(ticker);
  };
  res.once('close', stop);
  let xml: string;
  try {
    xml = await run();
  } catch (err) {
    stop();
    if (!res.headersSent) throw err;
    const e = toS3Error(err, {
      ...(ctx.bucket === undefined ? {} : { bucket: ctx.bucket }),
      ...(ctx.key === undefined ? {} : { key: ctx.key }),
    });
    const doc = errorXml(e, ctx.req.url?.split('?')[0] ?? '/', ctx.requestId);
    ctx.outcomeStatus = e.status;
    write(doc.slice(XML_DECLARATION.length));
    if (!res.destroyed) res.end();
    throw err;
  }
  stop();
  if (!res.headersSent) {
    sendXml(ctx, 200, xml);
    return;
  }
  write(xml.startsWith(XML_DECLARATION) ? xml.slice(XML_DECLARATION.length) : xml);
  if (!res.destroyed) res.end();
}

export function errorXml(err: S3Error, resource: string, requestId: string): string {
  const extra = Object.entries(err.fields)
    .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
    .join('');
  return `${XML_DECLARATION}<Error><Code>${err.s3Code}</Code><Message>${escapeXml(err.message)}</Message>${extra}<Resource>${escapeXml(resource)}</Resource><RequestId>${requestId}</RequestId><HostId>${requestId}</HostId></Error>`;
}

export function sendError(ctx: S3Context, err: S3Error): void {
  const res = ctx.res;
  if (res.headersSent) {
    // Answered already (an error document after keep-alive, see sendXmlKeepingAlive); otherwise
    // a half-sent response cannot carry the error: the connection goes.
    if (!res.writableEnded) res.destroy();
    return;
  }
  const headers: Record<string, string> = { ...commonHeaders(ctx) };
  if (err.s3Code === 'InvalidRange' && err.fields.ActualObjectSize !== undefined) {
    headers['content-range'] = `bytes */${err.fields.ActualObjectSize}`;
  }
  if (ctx.method === 'HEAD') {
    res.writeHead(err.status, { ...headers, 'content-length': '0' });
    res.end();
    return;
  }
  const resource = ctx.req.url?.split('?')[0] ?? '/';
  const body = Buffer.from(errorXml(err, resource, ctx.requestId));
  // A body the client is still sending is not read: closing keeps a failed upload from streaming on.
  if (!ctx.req.complete) headers.connection = 'close';
  res.writeHead(err.status, {
    ...headers,
    'content-type': 'application/xml',
    'content-length': String(body.length),
  });
  res.end(body);
  ctx.bytesOut += body.length;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Headers that describe an object on GET and HEAD (before response-* overrides). */
export function objectHeaders(info: ObjectInfo): Record<string, string> {
  const h: Record<string, string> = {
    etag: `"${info.meta.etag}"`,
    'last-modified': httpDate(info.mtimeMs),
    'accept-ranges': 'bytes',
    'content-type': info.meta.headers['content-type'] ?? DEFAULT_CONTENT_TYPE,
  };
  for (const [k, v] of Object.entries(info.meta.headers)) if (v !== undefined) h[k] = v;
  for (const [k, v] of Object.entries(info.meta.user)) h[`x-amz-meta-${k}`] = v;
  return h;
}

/** `encoding-type=url`: keys in listings are URL-encoded ('/' kept). */
export function encodeKey(key: string, urlEncoding: boolean): string {
  return urlEncoding ? encodeURIComponent(key).replace(/%2F/g, '/') : key;
}
