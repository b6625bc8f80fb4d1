// Proves the framing: any split of a byte stream (including onread-style reads into the decoder's
// own buffers) yields the same frames, and each framing violation is rejected with its reason.
// Also proves, on a raw connection, that the server honours the wire format by hand.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/rpc/index.js';
import { FrameDecoder } from '../../src/rpc/frame.js';
import { echo, hang } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { startServer } from './helpers.js';
import { RawConnection, T, frame } from './wire.js';

interface F {
  type: number;
  callId: number;
  header: Buffer;
  payload: Buffer;
}

const frameArb = fc.record({
  type: fc.integer({ min: 1, max: 8 }),
  callId: fc.nat({ max: 0xffffffff }),
  header: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
    fc.integer({ min: 60_000, max: 300_000 }).map((n) => Buffer.alloc(n, n & 0xff)),
  ),
});

function decodeAll(bytes: Buffer, cuts: number[], onread: boolean): F[] {
  const out: F[] = [];
  const decoder = new FrameDecoder(16 * 1024 * 1024, (type, callId, header, payload) => {
    out.push({ type, callId, header: Buffer.from(header), payload });
  });
  let off = 0;
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  points.push(bytes.length);
  for (const p of points) {
    while (off < p) {
      if (!onread) {
        decoder.push(bytes.subarray(off, p));
        off = p;
        continue;
      }
      // Like the kernel: fill as much of the decoder's target as this read has.
      const target = decoder.readTarget();
      const n = Math.min(target.length, p - off);
      bytes.copy(target, 0, off, off + n);
      decoder.readDone(n);
      off += n;
    }
  }
  return out;
}

test('any split of the byte stream decodes to the same frames', () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.boolean(),
      (frames, cuts, onread) => {
        const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.callId, f.header, f.payload)));
        const got = decodeAll(bytes, cuts, onread);
        assert.equal(got.length, frames.length);
        got.forEach((g, i) => {
          const f = frames[i] as F;
          assert.equal(g.type, f.type);
          assert.equal(g.callId, f.callId);
          assert.ok(g.header.equals(f.header));
          assert.ok(g.payload.equals(f.payload));
        });
      },
    ),
    { numRuns: 300 },
  );
});

test('with splitData, data frames may arrive in pieces but carry the same bytes in order', () => {
  fc.assert(
    fc.property(
      fc.array(frameArb, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.callId, f.header, f.payload)));
        // What a receiver sees: data bytes per call id joined, every other frame whole and in order.
        const summarise = (list: F[]): string[] => {
          const out: string[] = [];
          for (const f of list) {
            const last = out.at(-1);
            const isData = f.type === 3 && f.header.length === 0;
            const key = `${f.type}:${f.callId}:${f.header.toString('hex')}`;
            if (isData && last?.startsWith(`${key}|`) === true)
              out[out.length - 1] = last + f.payload.toString('hex');
            else out.push(`${key}|${f.payload.toString('hex')}`);
          }
          return out.filter((e) => !e.startsWith('3:') || !e.endsWith('|'));
        };
        const got: F[] = [];
        const decoder = new FrameDecoder(
          16 * 1024 * 1024,
          (type, callId, header, payload) => got.push({ type, callId, header: Buffer.from(header), payload }),
          true,
        );
        let off = 0;
        for (const p of [...new Set(cuts.map((c) => c % (bytes.length + 1)))]
          .sort((a, b) => a - b)
          .concat(bytes.length)) {
          decoder.push(bytes.subarray(off, p));
          off = p;
        }
        assert.deepEqual(summarise(got), summarise(frames));
      },
    ),
    { numRuns: 200 },
  );
});

test('framing violations are rejected with their reason', () => {
  const cases: [string, Buffer, string][] = [
    ['oversized', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 'oversized_frame'],
    ['too short', Buffer.from([0, 0, 0, 3, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 'malformed_frame'],
    ['unknown type', frame(42, 1, undefined), 'unknown_frame_type'],
    ['type zero', frame(0, 1, undefined), 'unknown_frame_type'],
    ['header longer than frame', Buffer.from([0, 0, 0, 9, 1, 0, 0, 0, 1, 0, 0, 0, 5]), 'malformed_frame'],
  ];
  for (const [what, bytes, violation] of cases) {
    const decoder = new FrameDecoder(1024 * 1024, () => assert.fail(`${what}: no frame expected`));
    assert.throws(
      () => decoder.push(bytes),
      (err: unknown) => err instanceof ProtocolError && err.violation === violation,
      what,
    );
    assert.ok(decoder.failed);
  }
  // The limit is configurable: a frame just over it is refused, one at it is accepted.
  const limit = 64 * 1024;
  let got = 0;
  const ok = new FrameDecoder(limit, () => got++);
  ok.push(frame(3, 1, undefined, Buffer.alloc(limit)));
  assert.equal(got, 1);
  assert.throws(
    () => ok.push(frame(3, 1, undefined, Buffer.alloc(limit + 1))),
    /exceeds the limit of 65536 bytes/,
  );
});

test('a hand-built request is answered; a byte-at-a-time sender is served too', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const raw = new RawConnection(address);
  t.after(() => raw.destroy());
  await raw.ready();
  const req = frame(T.Request, 7, { c: echo.code, k: 0, r: 'raw-1', d: 5000, b: { text: 'hi' } });
  for (const byte of req) raw.send(Buffer.from([byte]));
  raw.send(frame(T.Ping, 0, undefined, Buffer.from('12345678')));
  const deadline = Date.now() + 5000;
  while (raw.frames.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const response = raw.frames.find((f) => f.type === T.Response);
  assert.ok(response !== undefined);
  assert.equal(response.callId, 7);
  const h = response.header as { s: number; b: { text: string } };
  assert.equal(h.s, 0);
  assert.equal(h.b.text, 'hi');
  const pong = raw.frames.find((f) => f.type === T.Pong);
  assert.equal(pong?.payload.toString(), '12345678');
});

test('the server aborts a call at its deadline even when the caller never cancels', async (t) => {
  const state = newState();
  const { address } = await startServer(t, (s) => serveTestCalls(s, state));
  const raw = new RawConnection(address);
  t.after(() => raw.destroy());
  await raw.ready();
  const started = Date.now();
  raw.send(frame(T.Request, 1, { c: hang.code, k: 0, r: 'raw-2', d: 150, b: { maxMs: 10_000 } }));
  const deadline = Date.now() + 5000;
  while (raw.frames.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 140 && elapsed < 2000, `answered after ${elapsed} ms`);
  assert.deepEqual(state.aborts, ['STRATA_DEADLINE_EXCEEDED']);
  assert.equal((raw.frames[0]?.header as { b: { aborted: boolean } }).b.aborted, true);
});
