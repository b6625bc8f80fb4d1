/**
 * The small HTTP server every long-running role exposes: `/metrics` (Prometheus), `/health`,
 * `/ready`, `/live`, plus any JSON routes the role adds (the master's API, the console).
 * Readiness is a callback so a role is Ready only when it can really serve.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { StrataError, isPosixCode } from './errors.js';
import type { Logger } from './logging.js';

export const MAX_JSON_BODY_BYTES = 1024 * 1024;

export interface HealthState {
  ok: boolean;
  /** Why not, shown in the body. */
  reason?: string;
  [key: string]: unknown;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface OpsHttpOptions {
  host: string;
  port: number;
  registry: Registry;
  log: Logger;
  /** Liveness: the process is not wedged. Defaults to always ok. */
  live?: () => HealthState;
  /** Readiness: the role can serve requests now. */
  ready?: () => HealthState | Promise<HealthState>;
  /** Paths served as health in addition to /health (e.g. the FUSE role's /healthz). */
  healthAliases?: string[];
}

export class OpsHttpServer {
  readonly #server: Server;
  readonly #opts: OpsHttpOptions;
  readonly #routes = new Map<string, RouteHandler>();
  readonly #prefixRoutes: { method: string; prefix: string; handler: RouteHandler }[] = [];

  constructor(opts: OpsHttpOptions) {
    this.#opts = opts;
    this.#server = createServer((req, res) => {
      this.#dispatch(req, res).catch((err: unknown) => {
        // A StrataError is the handler's answer (bad request, not found…); anything else is a bug.
        if (!(err instanceof StrataError)) opts.log.error({ err, url: req.url }, 'http handler failed');
        if (!res.headersSent) sendError(res, err);
        else res.destroy();
      });
    });
    this.#server.keepAliveTimeout = 5_000;
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
  }

  /** Adds an exact route, e.g. route('GET', '/api/workers', h). */
  route(method: string, path: string, handler: RouteHandler): this {
    this.#routes.set(`${method} ${path}`, handler);
    return this;
  }

  /** Adds a route matching every path under `prefix` (for static files, REST trees). */
  prefixRoute(method: string, prefix: string, handler: RouteHandler): this {
    this.#prefixRoutes.push({ method, prefix, handler });
    return this;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.address();
  }

  address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/metrics') {
        const body = await this.#opts.registry.metrics();
        res.writeHead(200, { 'content-type': this.#opts.registry.contentType });
        res.end(method === 'HEAD' ? undefined : body);
        return;
      }
      if (path === '/health' || path === '/live' || (this.#opts.healthAliases ?? []).includes(path)) {
        const state = this.#opts.live?.() ?? { ok: true };
        sendHealth(res, state);
        return;
      }
      if (path === '/ready') {
        const state = (await this.#opts.ready?.()) ?? { ok: true };
        sendHealth(res, state);
        return;
      }
    }
    const exact = this.#routes.get(`${method} ${path}`);
    if (exact !== undefined) {
      await exact(req, res, url);
      return;
    }
    for (const r of this.#prefixRoutes) {
      if (r.method === method && path.startsWith(r.prefix)) {
        await r.handler(req, res, url);
        return;
      }
    }
    sendJson(res, 404, { error: { code: 'STRATA_NOT_FOUND', message: `no route for ${method} ${path}` } });
  }
}

function sendHealth(res: ServerResponse, state: HealthState): void {
  const { ok, ...rest } = state;
  sendJson(res, ok ? 200 : 503, { status: ok ? 'healthy' : 'unhealthy', ...rest });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Maps an error to an HTTP status and JSON body; internal details stay in the log. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (err instanceof StrataError) {
    sendJson(res, httpStatusFor(err.code), { error: { code: err.code, message: err.message } });
    return;
  }
  sendJson(res, 500, { error: { code: 'STRATA_INTERNAL', message: 'internal error' } });
}

export function httpStatusFor(code: string): number {
  if (isPosixCode(code)) {
    switch (code) {
      case 'ENOENT':
        return 404;
      case 'EEXIST':
      case 'ENOTEMPTY':
      case 'EBUSY':
        return 409;
      case 'EACCES':
      case 'EPERM':
        return 403;
      case 'ENOSPC':
        return 507;
      case 'ETIMEDOUT':
        return 504;
      default:
        return 400;
    }
  }
  if (code === 'STRATA_USAGE' || code === 'STRATA_BAD_REQUEST' || code === 'STRATA_BAD_CONFIG') return 400;
  if (code === 'STRATA_UNAUTHORIZED') return 401;
  if (code === 'STRATA_FORBIDDEN') return 403;
  if (code === 'STRATA_NOT_LEADER' || code === 'STRATA_UNAVAILABLE') return 503;
  if (code === 'STRATA_TOO_LARGE') return 413;
  return 500;
}

/** Reads a JSON body with a size limit; a bad body is a STRATA_BAD_REQUEST naming the problem. */
export async function readJsonBody(req: IncomingMessage, limitBytes = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limitBytes) {
      throw new StrataError('STRATA_TOO_LARGE', `request body exceeds the limit of ${limitBytes} bytes`);
    }
    chunks.push(buf);
  }
  if (total === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new StrataError('STRATA_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
}
