/** The calls the RPC benchmark makes (a private code range: 9000+). */
import { z } from 'zod';
import { readStream, unary, writeStream } from '../../src/rpc/index.js';

/** The analogue of redis PING with a bulk reply: a tiny request, a tiny response. */
export const ping = unary(9001, 'bench.ping', z.object({ s: z.string() }), z.object({ s: z.string() }));

/** CPU time the server process used since the last `cpu` call, in microseconds. */
export const cpu = unary(
  9002,
  'bench.cpu',
  z.object({}),
  z.object({ userUs: z.number(), systemUs: z.number() }),
);

/** The server sends `totalBytes` in chunks of `chunkBytes` (one preallocated buffer, like iperf3). */
export const source = readStream(
  9003,
  'bench.source',
  z.object({ totalBytes: z.number().int().min(0), chunkBytes: z.number().int().min(1) }),
  z.object({ bytes: z.number() }),
);

/** The server counts what it receives. */
export const sink = writeStream(9004, 'bench.sink', z.object({}), z.object({ bytes: z.number() }));
