/**
 * The S3 gateway process: an HTTP server speaking the S3 REST API over the client SDK, an ops
 * server (`/metrics`, health), and a graceful stop that lets requests in flight finish.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FileSystem } from '../../client/index.js';
import type { ClusterConfig } from '../../common/config/index.js';
import type { Logger } from '../../common/logging.js';
import type { Registry } from '../../common/metrics.js';
import { OpsHttpServer } from '../../common/ops-http.js';
import { SigV4Authenticator, UNSIGNED_PAYLOAD } from './auth.js';
import type { HandlerDeps } from './deps.js';
import { S3Error, toS3Error } from './errors.js';
import { sendError } from './http.js';
import type { S3Context } from './http.js';
import { GATEWAY_ROOT } from './keys.js';
import { Lister } from './listing.js';
import { createGatewayMetrics } from './metrics.js';
import { SendBufferPool } from './send.js';
import type { GatewayMetrics } from './metrics.js';
import { Multipart } from './multipart.js';
import { isReadOnly, resolveTarget, route } from './router.js';
import { gatewaySettings } from './settings.js';
import type { GatewaySettings } from './settings.js';
import { HashPool } from './hash-pool.js';
import { ObjectStore } from './store.js';

/** How long a stop waits for requests in flight before cutting their connections. */
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** Deadline for a client to send the request headers. */
export const HEADERS_TIMEOUT_MS = 60_000;
/** Idle keep-alive connections are closed after this long. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface S3GatewayOptions {
  config: ClusterConfig;
  log: Logger;
  registry: Registry;
  /** Overrides of the settings derived from `[s3_gateway]` (tests: port 0). */
  settings?: Partial<GatewaySettings>;
}

export class S3Gateway {
  readonly settings: GatewaySettings;
  readonly #server: Server;
  readonly #ops: OpsHttpServer;
  readonly #fs: FileSystem;
  readonly #deps: HandlerDeps;
  readonly #auth: SigV4Authenticator;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  #inFlight = 0;
  #stopping = false;
  #drained: (() => void) | undefined;
  /** Threads hashing upload bodies (MD5 off the thread that serves HTTP). */
  readonly #hashes = new HashPool();

  private constructor(opts: S3GatewayOptions, settings: GatewaySettings, fs: FileSystem) {
    this.settings = settings;
    this.#fs = fs;
    this.#log = opts.log;
    this.#metrics = createGatewayMetrics(opts.registry);
    const store = new ObjectStore(fs, opts.log, this.#hashes, this.#metrics.uploadPhases);
    this.#deps = {
      store,
      lister: new Lister(fs),
      multipart: new Multipart(store),
      limits: { maxObjectBytes: settings.maxObjectBytes, maxPartBytes: settings.maxPartBytes },
      keepAliveAfterMs: settings.keepAliveAfterMs,
      region: settings.region,
      sendBuffers: new SendBufferPool(),
      getPhases: this.#metrics.getPhases,
    };
    this.#auth = new SigV4Authenticator({
      region: settings.region,
      credentials: settings.credentials,
      anonymousRead: settings.anonymousRead,
    });
    this.#server = createServer((req, res) => this.#handle(req, res));
    // Uploads of large objects may take long: no whole-request deadline, but headers must come promptly.
    this.#server.requestTimeout = 0;
    this.#server.headersTimeout = HEADERS_TIMEOUT_MS;
    this.#server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.#ops = new OpsHttpServer({
      host: settings.host,
      port: settings.webPort,
      registry: opts.registry,
      log: opts.log,
      ready: async () => {
        if (this.#stopping) return { ok: false, reason: 'stopping' };
        try {
          await fs.stat(GATEWAY_ROOT);
          return { ok: true };
        } catch (err) {
          return { ok: false, reason: `cluster not reachable: ${(err as Error).message}` };
        }
      },
    });
  }

  static async start(opts: S3GatewayOptions): Promise<S3Gateway> {
    const settings = { ...gatewaySettings(opts.config), ...opts.settings };
    const fs = await FileSystem.connect({
      config: opts.config,
      caller: null,
      registry: opts.registry,
      log: opts.log,
    });
    const gw = new S3Gateway(opts, settings, fs);
    try {
      await gw.#deps.store.init();
      await listen(gw.#server, settings.host, settings.port);
      await gw.#ops.listen();
    } catch (err) {
      gw.#server.close();
      await gw.#ops.close().catch(() => undefined);
      await gw.#hashes.close();
      await fs.close();
      throw err;
    }
    const a = gw.address();
    opts.log.info(
      {
        address: `${a.address}:${a.port}`,
        web: gw.webAddress().port,
        region: settings.region,
        users: settings.credentials.size,
      },
      `s3 gateway listening on ${a.address}:${a.port}`,
    );
    return gw;
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  webAddress(): AddressInfo {
    return this.#ops.address();
  }

  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes everything. */
  async stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#server.closeAllConnections();
    await closed;
    await this.#ops.close();
    await this.#hashes.close();
    await this.#fs.close();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    this.#inFlight++;
    this.#metrics.inFlight.inc();
    const ctx: S3Context = {
      req,
      res,
      requestId: randomBytes(8).toString('hex').toUpperCase(),
      method: req.method ?? 'GET',
      bucket: undefined,
      key: undefined,
      queryPairs: [],
      query: new Map(),
      auth: { accessKey: undefined, payloadHash: UNSIGNED_PAYLOAD },
      op: 'Unknown',
      bytesIn: 0,
      bytesOut: 0,
    };
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      this.#inFlight--;
      this.#metrics.inFlight.dec();
      const status = res.headersSent ? String(ctx.outcomeStatus ?? res.statusCode) : 'aborted';
      this.#metrics.requests.inc({ op: ctx.op, status });
      this.#metrics.seconds.observe({ op: ctx.op }, Number(process.hrtime.bigint() - started) / 1e9);
      this.#metrics.receivedBytes.inc({ op: ctx.op }, ctx.bytesIn);
      this.#metrics.sentBytes.inc({ op: ctx.op }, ctx.bytesOut);
      if (this.#inFlight === 0) this.#drained?.();
    };
    res.on('close', finish);
    if (this.#stopping) res.setHeader('connection', 'close');
    this.#serve(ctx).catch((err: unknown) => {
      const e = toS3Error(err, {
        ...(ctx.bucket === undefined ? {} : { bucket: ctx.bucket }),
        ...(ctx.key === undefined ? {} : { key: ctx.key }),
      });
      if (e.status >= 500 || !(err instanceof S3Error || e.cause !== undefined)) {
        this.#log.error(
          { err, op: ctx.op, requestId: ctx.requestId, url: req.url },
          `s3 ${ctx.op} failed: ${e.message}`,
        );
      } else {
        this.#log.debug({ op: ctx.op, requestId: ctx.requestId, code: e.s3Code }, e.message);
      }
      sendError(ctx, e);
    });
  }

  async #serve(ctx: S3Context): Promise<void> {
    const target = resolveTarget(ctx.req, this.settings.domain);
    ctx.bucket = target.bucket;
    ctx.key = target.key;
    ctx.queryPairs = target.queryPairs;
    ctx.query = new Map(target.queryPairs);
    const { op, handler } = route(ctx);
    ctx.op = op;
    ctx.auth = await this.#auth.verify(ctx.req, target.rawPath, target.queryPairs, isReadOnly(ctx.method));
    await handler(ctx, this.#deps);
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
