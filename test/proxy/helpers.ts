/**
 * Helpers for proxy tests: a scriptable origin on loopback that counts what it is asked, a
 * `strata proxy` child process on free ports with a generated YAML config, and small clients.
 */
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { stringify } from 'yaml';
import { freePorts } from '../helpers/ports.js';
import { startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A temporary directory for proxy tests, removed only after every proxy started in it has
 * stopped (a proxy still writing its L2 would race the removal). Kept with STRATA_KEEP_TMP=1.
 */
export function scratch(t: Pick<TestContext, 'after'>): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-proxy-test-'));
  t.after(async () => {
    for (const p of running.get(dir) ?? []) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      p.child.kill('SIGKILL');
      await Promise.race([p.exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    running.delete(dir);
    if (process.env.STRATA_KEEP_TMP === '1') return;
    // Cleanup never fails a test: a removal racing the kernel is retried, then left to tmp.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        rmSync(dir, { recursive: true, force: true });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  });
  return dir;
}

const running = new Map<string, Proc[]>();

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

export interface Origin {
  port: number;
  address: string;
  seen: SeenRequest[];
  /** Requests seen for a path (ignoring the query unless it is given). */
  count(url: string): number;
  server: Server;
}

export async function startOrigin(t: Pick<TestContext, 'after'>, handler: OriginHandler): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    Promise.resolve(handler(req, res, seen.length)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    seen,
    server,
    count: (url) =>
      seen.filter((s) => s.url === url || (!url.includes('?') && s.url.split('?')[0] === url)).length,
  };
}

export interface RunningProxy {
  proc: Proc;
  port: number;
  healthPort: number;
  metricsPort: number;
  configFile: string;
  url(path: string): string;
  metrics(): Promise<string>;
  metric(name: string): Promise<number>;
  /** Rewrites the config file (for SIGHUP tests). */
  rewrite(overrides: Record<string, unknown>): void;
}

/**
 * Bound on a proxy becoming ready. Usually well under a second; a raw-disk proxy restarted after
 * SIGKILL replays its journal first, and on a 2-core host shared with other jobs (load 20) that
 * once took more than 15 s. A generous deadline costs passing tests nothing.
 */
export const PROXY_READY_TIMEOUT_MS = 60_000;

export async function startProxy(
  t: Pick<TestContext, 'after'>,
  dir: string,
  config: Record<string, unknown>,
  opts: { waitReady?: boolean } = {},
): Promise<RunningProxy> {
  const [port, healthPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const configFile = join(dir, `proxy-${port}.yaml`);
  const base = {
    listen_address: `127.0.0.1:${port}`,
    health_address: `127.0.0.1:${healthPort}`,
    metrics_endpoint: { enabled: true, address: `127.0.0.1:${metricsPort}` },
    log_level: process.env.STRATA_TEST_LOG ?? 'info',
  };
  const write = (c: Record<string, unknown>): void => writeFileSync(configFile, stringify({ ...base, ...c }));
  write(config);
  const proc = startStrata(['proxy', '--config', configFile], {
    t,
    echo: process.env.STRATA_TEST_ECHO === '1',
  });
  const running: RunningProxy = {
    proc,
    port,
    healthPort,
    metricsPort,
    configFile,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    async metrics() {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      return r.text();
    },
    async metric(name: string) {
      const text = await running.metrics();
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
      if (line === undefined) throw new Error(`metric ${name} not exported`);
      return Number(line.trim().split(/\s+/).pop());
    },
    rewrite(overrides) {
      write({ ...config, ...overrides });
    },
  };
  if (opts.waitReady !== false) {
    await waitFor(
      'proxy ready',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`proxy exited: ${proc.stderr}${proc.stdout}`);
        const r = await fetch(`http://127.0.0.1:${healthPort}/ready`).catch(() => undefined);
        return r?.status === 200;
      },
      PROXY_READY_TIMEOUT_MS,
    );
  }
  return running;
}

export interface Got {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A request with a fresh connection (no agent), body collected. */
export function get(
  url: string,
  headers: OutgoingHttpHeaders = {},
  method = 'GET',
  body?: Buffer | string,
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Deterministic content: byte i of object `seed` is a function of both. */
export function pattern(seed: number, length: number, from = 0): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = ((from + i) * 31 + seed * 7 + ((from + i) >> 8)) & 0xff;
  return out;
}

/** Serves `body` with Range support (206, Content-Range, 416) and the given validators. */
export function serveRanged(
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  headers: OutgoingHttpHeaders,
): void {
  const range = req.headers.range;
  const m = range === undefined ? null : /^bytes=(\d+)-(\d*)$/.exec(range);
  if (m === null) {
    res.writeHead(200, { ...headers, 'content-length': body.length, 'accept-ranges': 'bytes' });
    res.end(body);
    return;
  }
  const first = Number(m[1]);
  const last = Math.min(m[2] === '' ? body.length - 1 : Number(m[2]), body.length - 1);
  if (first >= body.length) {
    res.writeHead(416, { 'content-range': `bytes */${body.length}` });
    res.end();
    return;
  }
  res.writeHead(206, {
    ...headers,
    'content-range': `bytes ${first}-${last}/${body.length}`,
    'content-length': last - first + 1,
  });
  res.end(body.subarray(first, last + 1));
}
