/**
 * s3rver (a real S3-compatible server) on 127.0.0.1 for UFS tests and benchmarks: a fresh data
 * directory, buckets made up front, every request logged (to count upstream fetches), and a way to
 * cut every open connection (an outage mid-read). s3rver accepts the key pair S3RVER/S3RVER and
 * rejects unknown access keys (InvalidAccessKeyId); it does not check V4 signatures, so a wrong
 * secret with a known key is accepted: tests of bad credentials use an unknown key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createRequire } from 'node:module';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET_KEY = 'S3RVER';

interface S3rverInstance {
  configureBuckets(): Promise<unknown>;
  listen(port: number, address: string): Promise<Server>;
  on(event: 'error', fn: (err: unknown) => void): void;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;

export interface S3Request {
  method: string;
  url: string;
  range: string | undefined;
}

export class S3Server {
  readonly requests: S3Request[] = [];
  readonly dir: string;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #ownDir: boolean;

  private constructor(server: Server, dir: string, ownDir: boolean) {
    this.#server = server;
    this.dir = dir;
    this.#ownDir = ownDir;
    server.prependListener(
      'request',
      (req: { method?: string; url?: string; headers: Record<string, unknown> }) => {
        const range = req.headers.range;
        this.requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          range: typeof range === 'string' ? range : undefined,
        });
      },
    );
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  static async start(
    buckets: readonly string[],
    opts: { dir?: string; port?: number } = {},
  ): Promise<S3Server> {
    const require = createRequire(import.meta.url);
    const S3rver = require('s3rver') as S3rverCtor;
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'strata-s3rver-'));
    const s3 = new S3rver({
      silent: true,
      directory: dir,
      configureBuckets: buckets.map((name) => ({ name })),
      vhostBuckets: false,
    });
    s3.on('error', () => undefined);
    await s3.configureBuckets();
    const server = await s3.listen(opts.port ?? 0, '127.0.0.1');
    return new S3Server(server, dir, opts.dir === undefined);
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Mount options for this server with the accepted key pair. */
  options(extra: Record<string, string> = {}): Record<string, string> {
    return {
      's3.endpoint_url': this.endpoint,
      's3.region_name': 'us-east-1',
      's3.credentials.access': S3RVER_ACCESS_KEY,
      's3.credentials.secret': S3RVER_SECRET_KEY,
      ...extra,
    };
  }

  /**
   * A client for the test's own requests straight to this server (seeding, checking what
   * reached the bucket). Checksums only when required: s3rver knows no flexible checksums.
   */
  client(extra: Partial<S3ClientConfig> = {}): S3Client {
    return new S3Client({
      endpoint: this.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_ACCESS_KEY, secretAccessKey: S3RVER_SECRET_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...extra,
    });
  }

  /** GETs of one object (path-style URL "/bucket/key"). */
  gets(bucket: string, key: string): S3Request[] {
    const want = `/${bucket}/${key}`;
    return this.requests.filter(
      (r) => r.method === 'GET' && decodeURIComponent(r.url.split('?')[0] ?? '') === want,
    );
  }

  /** Drops every open connection (requests in flight fail mid-way). */
  cutConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.cutConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
