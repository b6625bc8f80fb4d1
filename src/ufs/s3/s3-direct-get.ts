/**
 * Object-data GETs (and HEADs) without the SDK's middleware stack: each request is signed with
 * the SDK's own SigV4 signer (`@smithy/signature-v4`, with the client's credential provider, so
 * the default chain, session tokens and refreshes behave as in the SDK) and sent on an undici
 * pool, to the URL the SDK's own endpoint rules resolve for the bucket (path or virtual-hosted
 * style, FIPS, dual-stack: whatever the client would dial).
 *
 * Why: a 64 KiB GET through `S3Client.send` costs 1.2-1.6 ms of CPU in the calling process on
 * this project's reference machine (the middleware stack, the request and response serde, the
 * log filters), the same GET here 0.3-0.4 ms. A read-through of small files is one GET per file,
 * so the SDK was most of a worker's CPU per file.
 *
 * Only a 200 or 206 is answered here. Every other outcome (an error status, a network error) is
 * for the caller to send again through the SDK, whose error mapping, retries and redirects stay
 * the one source of truth; see `S3Ufs.#either`. A HEAD's 404 is answered here too (no such
 * key). Only GETs and HEADs take this path: listings, writes, copies and deletes go through the
 * SDK.
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import { UFS_MAX_SOCKETS } from '../limits.js';

/** The object headers openRead and stat read. */
export interface ObjectHeaders {
  contentRange: string | undefined;
  contentLength: number | undefined;
  etag: string | undefined;
  lastModifiedMs: number | undefined;
}

/** A GET's answer as openRead reads it, from either path: the object headers and the body. */
export interface GetAnswer extends ObjectHeaders {
  body: Readable;
}

/** A direct GET that did not answer 200/206: the status (undefined: no response). */
export class DirectGetRefused extends Error {
  readonly status: number | undefined;
  constructor(status: number | undefined, cause?: unknown) {
    super(status === undefined ? 'no response' : `HTTP ${status}`, cause === undefined ? {} : { cause });
    this.name = 'DirectGetRefused';
    this.status = status;
  }
}

export interface DirectGetOptions {
  client: S3Client;
  bucket: string;
  region: string;
  endpointUrl: string | undefined;
  forcePathStyle: boolean;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Told once, when the direct path is given up (for the operator's log). */
  onDisabled?: (reason: string) => void;
}

/** RFC 3986 unreserved characters stay; everything else is %-encoded, as the SDK encodes a key. */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

interface Target {
  origin: string;
  /** The path of the bucket's root, without a trailing slash ("" or "/bucket", "/base/bucket"…). */
  basePath: string;
  host: string;
  signer: SignatureV4;
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function objectHeaders(h: Record<string, string | string[] | undefined>): ObjectHeaders {
  const len = header(h, 'content-length');
  const lm = header(h, 'last-modified');
  const lmMs = lm === undefined ? undefined : Date.parse(lm);
  return {
    contentRange: header(h, 'content-range'),
    contentLength: len === undefined ? undefined : Number(len),
    etag: header(h, 'etag'),
    lastModifiedMs: lmMs === undefined || Number.isNaN(lmMs) ? undefined : lmMs,
  };
}

export class S3DirectGet {
  readonly #opts: DirectGetOptions;
  readonly #agent: Agent;
  #target: Promise<Target | undefined> | undefined;
  #disabled: string | undefined;

  constructor(opts: DirectGetOptions) {
    this.#opts = opts;
    this.#agent = new Agent({
      connections: UFS_MAX_SOCKETS,
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
    });
  }

  /** Why GETs and HEADs go through the SDK now (undefined while this path is in use). */
  get disabledReason(): string | undefined {
    return this.#disabled;
  }

  /** From now on every GET and HEAD goes through the SDK (see S3Ufs.#either for when). */
  disable(reason: string): void {
    if (this.#disabled !== undefined) return;
    this.#disabled = reason;
    this.#opts.onDisabled?.(reason);
  }

  /**
   * The endpoint the SDK would dial for this bucket, from its own endpoint rules. Undefined (the
   * SDK keeps every GET) when the rules ask for anything but plain SigV4 signing for `s3`
   * (SigV4a multi-region access points, S3 Express sessions).
   */
  #resolve(): Promise<Target | undefined> {
    this.#target ??= (async () => {
      const c = this.#opts.client.config;
      const ep = c.endpointProvider({
        Bucket: this.#opts.bucket,
        Region: this.#opts.region,
        UseFIPS: await c.useFipsEndpoint(),
        UseDualStack: await c.useDualstackEndpoint(),
        ForcePathStyle: this.#opts.forcePathStyle,
        Accelerate: false,
        UseGlobalEndpoint: false,
        DisableMultiRegionAccessPoints: false,
        UseArnRegion: false,
        ...(this.#opts.endpointUrl === undefined ? {} : { Endpoint: this.#opts.endpointUrl }),
      });
      const schemes = (ep.properties?.authSchemes ?? []) as {
        name?: string;
        signingName?: string;
        signingRegion?: string;
      }[];
      const scheme = schemes[0];
      if (scheme === undefined || scheme.name !== 'sigv4' || (scheme.signingName ?? 's3') !== 's3') {
        this.disable(`the endpoint asks for ${scheme?.name ?? 'no'} signing`);
        return undefined;
      }
      const url = ep.url;
      return {
        origin: url.origin,
        basePath: url.pathname.replace(/\/+$/, ''),
        host: url.host,
        signer: new SignatureV4({
          service: 's3',
          region: scheme.signingRegion ?? this.#opts.region,
          credentials: c.credentials,
          sha256: c.sha256,
          // S3 signs the path as sent (no second encoding), as the SDK does for S3.
          uriEscapePath: false,
        }),
      };
    })().catch((err: unknown) => {
      // Rules that refuse the bucket (an invalid name): the SDK gives the user its error.
      this.disable(`the endpoint rules failed: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    return this.#target;
  }

  /** Signs and sends one bodiless request; a network failure is DirectGetRefused(undefined). */
  async #send(
    method: 'GET' | 'HEAD',
    key: string,
    extra: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const t = await this.#resolve();
    if (t === undefined) throw new DirectGetRefused(undefined);
    const path = `${t.basePath}/${encodeKeyPath(key)}`;
    const signed = await t.signer.sign({
      method,
      protocol: t.origin.startsWith('https:') ? 'https:' : 'http:',
      hostname: t.host,
      path,
      headers: { host: t.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...extra },
      query: {},
    });
    try {
      return await this.#agent.request({
        origin: t.origin,
        path,
        method,
        headers: signed.headers,
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (err) {
      signal?.throwIfAborted();
      throw new DirectGetRefused(undefined, err);
    }
  }

  /**
   * GETs `key` (already prefixed), optionally a byte range and an If-Match ETag. Resolves with a
   * 200/206 answer; rejects with DirectGetRefused for anything else (the body already discarded),
   * or with the abort reason when `signal` fired.
   */
  async get(
    key: string,
    range: string | undefined,
    ifMatch: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GetAnswer> {
    const res = await this.#send(
      'GET',
      key,
      {
        ...(range === undefined ? {} : { range }),
        ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }),
      },
      signal,
    );
    if (res.statusCode !== 200 && res.statusCode !== 206) {
      // Read off (a short error document) so the connection stays in the pool.
      res.body.dump().catch(() => undefined);
      throw new DirectGetRefused(res.statusCode);
    }
    return { ...objectHeaders(res.headers), body: res.body };
  }

  /**
   * HEADs `key`: its headers on a 200, `undefined` on a 404 (no such key: a HEAD answer has no
   * body to tell a missing bucket apart, for the SDK either); DirectGetRefused for anything else.
   */
  async head(key: string, signal: AbortSignal | undefined): Promise<ObjectHeaders | undefined> {
    const res = await this.#send('HEAD', key, {}, signal);
    res.body.dump().catch(() => undefined);
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw new DirectGetRefused(res.statusCode);
    return objectHeaders(res.headers);
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => undefined);
  }
}
