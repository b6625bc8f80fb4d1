/**
 * The server half of the RPC benchmark, in its own process so client and server each get a core.
 * Prints "listening <port>"; stops on SIGTERM.
 */
import { Lifecycle } from '../../src/common/lifecycle.js';
import { createLogger } from '../../src/common/logging.js';
import { createRegistry } from '../../src/common/metrics.js';
import { RpcServer } from '../../src/rpc/index.js';
import { cpu, ping, sink, source } from './calls.js';

const log = createLogger({ level: 'WARN', logDir: 'stderr', role: 'bench-rpc-server' });
// A real registry, so the benchmark pays for metrics like a production server does.
const server = new RpcServer({ log, registry: createRegistry('bench') });
const PONG = { s: 'PONG' };
let lastCpu = process.cpuUsage();
const chunks = new Map<number, Buffer>();

server.handle(ping, async () => PONG);
server.handle(cpu, async () => {
  const used = process.cpuUsage(lastCpu);
  lastCpu = process.cpuUsage();
  return { userUs: used.user, systemUs: used.system };
});
server.handle(source, async (req, _ctx, out) => {
  let chunk = chunks.get(req.chunkBytes);
  if (chunk === undefined) {
    chunk = Buffer.alloc(req.chunkBytes, 0x5a);
    chunks.set(req.chunkBytes, chunk);
  }
  let sent = 0;
  while (sent < req.totalBytes) {
    const n = Math.min(chunk.length, req.totalBytes - sent);
    await out.write(n === chunk.length ? chunk : chunk.subarray(0, n));
    sent += n;
  }
  return { bytes: sent };
});
server.handle(sink, async (_req, _ctx, input) => {
  let bytes = 0;
  for await (const c of input) bytes += c.length;
  return { bytes };
});

const lifecycle = new Lifecycle(log, 5_000);
lifecycle.add('rpc server', () => server.close(1_000));
lifecycle.installSignalHandlers();
const address = await server.listen('127.0.0.1', Number(process.argv[2] ?? 0));
process.stdout.write(`listening ${address.port}\n`);
