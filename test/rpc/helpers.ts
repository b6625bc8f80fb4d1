/** Shared pieces of the RPC tests: servers and clients cleaned up after each test, test data, logs. */
import { createCipheriv, createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/common/logging.js';
import { RpcClient, RpcServer } from '../../src/rpc/index.js';
import type { RemoteAddress, RpcClientOptions, RpcServerOptions } from '../../src/rpc/index.js';

type After = Pick<TestContext, 'after'>;

export async function startServer(
  t: After,
  setup: (server: RpcServer) => void,
  opts: RpcServerOptions = {},
): Promise<{ server: RpcServer; address: RemoteAddress }> {
  const server = new RpcServer(opts);
  setup(server);
  const address = await server.listen('127.0.0.1', 0);
  t.after(() => server.close(100));
  return { server, address };
}

export function newClient(
  t: After,
  addresses: RemoteAddress[],
  opts: Partial<RpcClientOptions> = {},
): RpcClient {
  const client = new RpcClient({ addresses, ...opts });
  t.after(() => client.close());
  return client;
}

/** A logger whose lines are kept as parsed objects. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/**
 * Deterministic test bytes: the stream at offset `o` is a window into a pseudo-random block whose
 * length is not a multiple of any chunk size, so no two chunks of a long stream repeat in step.
 */
const BLOCK_PERIOD_BYTES = 1024 * 1024 + 4093;
const blocks = new Map<number, Buffer>();

function block(seed: number, minBytes: number): Buffer {
  const have = blocks.get(seed);
  if (have !== undefined && have.length >= minBytes) return have;
  // An AES-CTR keystream: deterministic per seed and fast (GB/s), unlike hashing in small steps.
  const key = createHash('sha256').update(`seed:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const out = cipher.update(Buffer.alloc(Math.max(minBytes, 2 * BLOCK_PERIOD_BYTES)));
  blocks.set(seed, out);
  return out;
}

export function testBytes(seed: number, offset: number, length: number): Buffer {
  const b = block(seed, BLOCK_PERIOD_BYTES + length);
  const start = offset % BLOCK_PERIOD_BYTES;
  return b.subarray(start, start + length);
}

export function sha256(parts: Iterable<Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
