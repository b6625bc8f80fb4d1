// GET responses sent from pooled buffers (send.ts), over a real HTTP server on loopback: the
// exact bytes of ranges across chunk edges, a client that stops reading holds at most
// SEND_DEPTH buffers, and a client that goes away ends the send with every buffer given back.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { SEND_CHUNK_BYTES, SEND_DEPTH, SendBufferPool, sendRange } from '../../src/gateway/s3/send.js';
import type { PositionalSource } from '../../src/gateway/s3/send.js';
import { waitFor } from '../helpers/wait.js';

/** Counts buffers taken and not yet given back. */
class CountingPool extends SendBufferPool {
  out = 0;
  maxOut = 0;
  override take(): Buffer {
    this.out++;
    this.maxOut = Math.max(this.maxOut, this.out);
    return super.take();
  }
  override give(buf: Buffer): void {
    this.out--;
    super.give(buf);
  }
}

/** A source over `data` that answers in pieces of at most 300,000 bytes and counts reads. */
function source(data: Buffer): PositionalSource & { reads: number } {
  return {
    path: '/test/object',
    reads: 0,
    async read(buffer, position, offset, length) {
      this.reads++;
      await new Promise((resolve) => setImmediate(resolve));
      const n = Math.max(0, Math.min(length, 300_000, data.length - position));
      data.copy(buffer, offset, position, position + n);
      return n;
    },
  };
}

async function serve(
  t: { after: (fn: () => unknown) => void },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<number> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

function get(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    request({ port, host: '127.0.0.1', path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

test('send: ranges across chunk edges arrive exactly, and every buffer is given back', async (t) => {
  const data = randomBytes(3 * SEND_CHUNK_BYTES + 12_345);
  const pool = new CountingPool();
  const ranges = [
    { start: 0, end: data.length - 1 },
    { start: 7, end: SEND_CHUNK_BYTES + 3 },
    { start: SEND_CHUNK_BYTES - 1, end: SEND_CHUNK_BYTES },
    { start: 100, end: 100 },
  ];
  let which = 0;
  let sent = 0;
  const port = await serve(t, (_req, res) => {
    const r = ranges[which++] as { start: number; end: number };
    res.writeHead(200, { 'content-length': String(r.end - r.start + 1) });
    void sendRange(res, source(data), r, pool, (n) => (sent += n));
  });
  for (const r of ranges) {
    const body = await get(port);
    assert.ok(body.equals(data.subarray(r.start, r.end + 1)), `range ${r.start}-${r.end}`);
  }
  assert.equal(
    sent,
    ranges.reduce((s, r) => s + r.end - r.start + 1, 0),
  );
  await waitFor('buffers given back', () => pool.out === 0, 5000);
  assert.ok(pool.maxOut <= SEND_DEPTH * 2, `at most ${SEND_DEPTH} buffers per response (${pool.maxOut})`);
});

test('send: a client that stops reading holds few buffers; one that leaves ends the send', async (t) => {
  const data = randomBytes(64 * SEND_CHUNK_BYTES);
  const pool = new CountingPool();
  const src = source(data);
  let outcome: Promise<void> | undefined;
  const port = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(data.length) });
    outcome = sendRange(res, src, { start: 0, end: data.length - 1 }, pool, () => undefined);
    outcome.catch(() => undefined); // asserted below
  });
  const req = request({ port, host: '127.0.0.1', path: '/' });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve).on('error', reject).end();
  });
  res.pause();
  // The socket fills, then the send waits for it to drain: reads stop well before the end.
  await waitFor('the send to block on the socket', async () => {
    const before = src.reads;
    await new Promise((resolve) => setTimeout(resolve, 200));
    return src.reads === before && src.reads > 0;
  });
  assert.ok(src.reads * 300_000 < data.length, `read ${src.reads} pieces of a paused response`);
  assert.ok(pool.out <= SEND_DEPTH, `${pool.out} buffers held by a paused response`);
  req.destroy();
  await assert.rejects(outcome as Promise<void>, /closed the connection/);
  await waitFor('buffers given back', () => pool.out === 0, 5000);
});
