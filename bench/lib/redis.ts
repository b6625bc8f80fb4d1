/** The redis reference: a redis-server on a free port and redis-benchmark against it. */
import { mkdirSync } from 'node:fs';
import { freePort, requireTool, runOk, startBackground, waitForPort } from './proc.js';
import type { Background } from './proc.js';

export interface RedisServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * Starts redis-server on a free loopback port: without persistence, or with `durableDir` an
 * append-only log there fsynced before every answer (`appendfsync always`; redis batches the
 * writes of one event-loop turn into one fsync), the durable counterpart of a metadata commit.
 */
export async function startRedisServer(opts: { durableDir?: string } = {}): Promise<RedisServer> {
  const bin = requireTool('redis-server', 'redis-server');
  const port = await freePort();
  const persistence =
    opts.durableDir === undefined
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', opts.durableDir];
  if (opts.durableDir !== undefined) mkdirSync(opts.durableDir, { recursive: true });
  const bg: Background = await startBackground(
    bin,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--protected-mode', 'no'],
    () => waitForPort(port),
  );
  return { port, stop: () => bg.stop() };
}

export interface RedisBenchmarkOptions {
  port: number;
  /** e.g. "ping_mbulk", "set", "get". */
  test: string;
  clients: number;
  pipeline: number;
  requests: number;
  dataSizeBytes?: number;
}

/** Runs redis-benchmark in quiet mode and returns its requests per second. */
export async function runRedisBenchmark(o: RedisBenchmarkOptions): Promise<number> {
  const bin = requireTool('redis-benchmark', 'redis-tools');
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(o.port),
    '-t',
    o.test,
    '-c',
    String(o.clients),
    '-P',
    String(o.pipeline),
  ];
  args.push('-n', String(o.requests), '-q');
  if (o.dataSizeBytes !== undefined) args.push('-d', String(o.dataSizeBytes));
  return parseRedisBenchmark(await runOk(bin, args));
}

/** "PING_MBULK: 70060.72 requests per second, p50=0.359 msec" → 70060.72 (the last such line). */
export function parseRedisBenchmark(output: string): number {
  const matches = [...output.matchAll(/([\d.]+) requests per second/g)];
  const last = matches.at(-1);
  if (last === undefined) throw new Error(`no "requests per second" in redis-benchmark output:\n${output}`);
  return Number(last[1]);
}
