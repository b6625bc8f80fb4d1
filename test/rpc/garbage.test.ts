// Proves a server survives hostile input: 10,000 garbage frames (random bytes, oversized lengths,
// bad msgpack, wrong header shapes, unknown types, truncated frames) over hundreds of connections
// close only those connections, with a logged reason, while a well-behaved client keeps being served.
// The generator is seeded; the seed is printed (STRATA_FUZZ_SEED=<n> replays a run).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { pack } from 'msgpackr';
import { createRegistry } from '../../src/common/metrics.js';
import { waitFor } from '../helpers/wait.js';
import { echo, upload } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { captureLogger, newClient, startServer } from './helpers.js';
import { RawConnection, T, frame } from './wire.js';

const FRAMES = 10_000;
const FRAMES_PER_CONNECTION = 25;
const PARALLEL_CONNECTIONS = 20;
/** A small stream window, so overrunning it takes few bytes. */
const STREAM_WINDOW_BYTES = 64 * 1024;

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function garbageFrame(rand: () => number): Buffer {
  const int = (n: number): number => Math.floor(rand() * n);
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
  const id = int(50);
  switch (int(14)) {
    case 0:
      return bytes(1 + int(200)); // random bytes
    case 1: {
      const b = bytes(13); // a prefix announcing more than the 16 MiB limit
      b.writeUInt32BE(16 * 1024 * 1024 + 10 + int(2 ** 31), 0);
      return b;
    }
    case 2:
      return frame(T.Request, id, bytes(1 + int(40))); // bad msgpack
    case 3:
      return frame([0, 9, 10, 100, 255][int(5)] ?? 0, id, { c: 1 }); // unknown type
    case 4: {
      const shapes: unknown[] = [
        [1, 2, 3],
        'text',
        42,
        null,
        { c: 'one' },
        { c: 1 },
        { c: 1, r: 5, d: 1 },
        { c: 1, r: 'x', d: -1 },
        { c: 1, r: 'x'.repeat(500), d: 10 },
        { c: 1, k: 7, r: 'x', d: 10 },
        { c: 10, k: 1, r: 'x', d: 10 },
      ];
      return frame(T.Request, id, pack(shapes[int(shapes.length)])); // wrong header shape
    }
    case 5:
      return frame(T.Request, id, { c: 900 + int(100), k: 0, r: `r${id}`, d: 1000, b: {} }); // unknown call
    case 6:
      return frame(T.Request, id, { c: echo.code, k: 0, r: `r${id}`, d: 1000, b: { text: int(10) } }); // bad body
    case 7: {
      const f = frame(T.Request, id, { c: echo.code, k: 0, r: 'x', d: 1000, b: { text: 'a' } });
      f.writeUInt32BE(f.length, 9); // header length beyond the frame
      return f;
    }
    case 8: {
      const f = frame(T.Data, id, undefined, bytes(100));
      return f.subarray(0, 5 + int(f.length - 6)); // truncated (the connection then ends)
    }
    case 9:
      return frame([T.Response, T.Pong][int(2)] ?? T.Response, id, { s: 0 }); // server-only types
    case 10:
      return frame([T.Data, T.End, T.Cancel][int(3)] ?? T.Data, 1000 + id, undefined, bytes(int(50))); // no such call
    case 11:
      return frame(T.Credit, id, pack({ n: [-1, 0, 'x', 1.5][int(4)] })); // bad credit
    case 12:
      // A write stream that sends more than its credit allows.
      return Buffer.concat([
        frame(T.Request, id, { c: upload.code, k: 2, r: `u${id}`, d: 5000, b: { name: 'x' } }),
        frame(T.Data, id, undefined, Buffer.alloc(1)),
        frame(T.Data, id, undefined, Buffer.alloc(STREAM_WINDOW_BYTES)),
      ]);
    default:
      return frame(T.Request, id, Buffer.from([0xc1])); // the never-used msgpack byte
  }
}

test('10,000 garbage frames close only their connections; a good client is served throughout', async (t) => {
  const seed = Number(process.env.STRATA_FUZZ_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`fuzz seed ${seed} (replay with STRATA_FUZZ_SEED=${seed})`);
  const rand = prng(seed);
  const registry = createRegistry('test');
  const { log, lines } = captureLogger();
  const { server, address } = await startServer(t, (s) => serveTestCalls(s, newState()), {
    registry,
    log,
    streamWindowBytes: STREAM_WINDOW_BYTES,
  });
  const client = newClient(t, [address]);

  // The well-behaved client keeps calling while the garbage flows.
  let good = 0;
  let stop = false;
  const goodLoop = (async () => {
    while (!stop) {
      const r = await client.call(echo, { text: `ok-${good}` });
      assert.equal(r.text, `ok-${good}`);
      good++;
    }
  })();

  let sent = 0;
  let closedByServer = 0;
  const connections = Math.ceil(FRAMES / FRAMES_PER_CONNECTION);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < connections) {
      next++;
      const raw = new RawConnection(address);
      try {
        await raw.ready();
        for (let i = 0; i < FRAMES_PER_CONNECTION && sent < FRAMES; i++, sent++) raw.send(garbageFrame(rand));
        raw.socket.end();
        if (await raw.closedWithin(5_000)) closedByServer++;
      } finally {
        raw.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_CONNECTIONS }, worker));
  stop = true;
  await goodLoop;

  assert.equal(sent, FRAMES);
  assert.equal(closedByServer, connections, 'every garbage connection was closed');
  assert.ok(good > 0, 'the good client was served while the garbage flowed');
  assert.equal((await client.call(echo, { text: 'after' })).text, 'after');

  const metrics = await registry.getMetricsAsJSON();
  const errors = metrics.find((m) => m.name === 'strata_rpc_server_protocol_errors_total');
  const total = (errors?.values ?? []).reduce((n, v) => n + v.value, 0);
  const reasons = new Set((errors?.values ?? []).map((v) => v.labels.reason));
  t.diagnostic(`protocol errors: ${total} (${[...reasons].join(', ')}); good calls during the run: ${good}`);
  assert.ok(total > connections / 2, `most garbage connections broke the protocol (${total})`);
  for (const r of ['oversized_frame', 'unknown_frame_type', 'bad_header', 'unexpected_frame']) {
    assert.ok(reasons.has(r), `saw ${r}`);
  }
  assert.ok(!reasons.has('internal'), 'no garbage reached an internal error');
  const warned = lines.filter((l) => l.msg === 'closing rpc connection: protocol error');
  assert.equal(warned.length, total, 'each protocol error was logged with its reason');
  assert.ok(warned.every((l) => typeof l.reason === 'string' && typeof l.violation === 'string'));
  await waitFor('garbage calls to finish', () => server.inFlight === 0, 5_000);
  const conns = (await registry.getMetricsAsJSON()).find((m) => m.name === 'strata_rpc_server_connections');
  assert.equal(conns?.values[0]?.value, 1, 'only the good client is still connected');
});
