// Proves read and write streams: 100 MiB each way arrive intact (sha256) while memory stays far
// below the stream size with a slow consumer (credit flow control), a read stream that reuses its
// receive buffers arrives intact through a few buffers, a stalled stream does not block
// another on the same connection, and cancel, server errors, deadlines and a dropped connection
// end streams with clear errors.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { z } from 'zod';
import { StrataError, TimeoutError } from '../../src/common/errors.js';
import { readStream, writeStream } from '../../src/rpc/index.js';
import { waitFor } from '../helpers/wait.js';
import { download, upload } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { newClient, sleep, startServer, testBytes } from './helpers.js';
import { TcpProxy } from './proxy.js';

const MiB = 1024 * 1024;
const STREAM_BYTES = 100 * MiB;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Samples live memory (after a full GC) while `fn` runs; returns the peak growth over the start. */
async function peakGrowth<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; liveBytes: number; rssBytes: number }> {
  gc();
  const live = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const baseLive = live();
  const baseRss = process.memoryUsage().rss;
  let peakLive = 0;
  let peakRss = 0;
  const timer = setInterval(() => {
    gc();
    peakLive = Math.max(peakLive, live() - baseLive);
    peakRss = Math.max(peakRss, process.memoryUsage().rss - baseRss);
  }, 25);
  try {
    const result = await fn();
    return { result, liveBytes: peakLive, rssBytes: peakRss };
  } finally {
    clearInterval(timer);
  }
}

test('a 100 MiB read stream arrives intact with bounded memory and a slow consumer', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address]);
  const { result, liveBytes, rssBytes } = await peakGrowth(async () => {
    const call = client.read(
      download,
      { totalBytes: STREAM_BYTES, chunkBytes: 256 * 1024, seed: 7 },
      { deadlineMs: 60_000 },
    );
    const h = createHash('sha256');
    let bytes = 0;
    let sinceNap = 0;
    for await (const chunk of call) {
      h.update(chunk);
      bytes += chunk.length;
      sinceNap += chunk.length;
      if (sinceNap >= 2 * MiB) {
        sinceNap = 0;
        await sleep(5); // a slow consumer: the server must wait for credit
      }
    }
    return { got: h.digest('hex'), bytes, res: await call.result };
  });
  assert.equal(result.bytes, STREAM_BYTES);
  assert.equal(result.res.bytes, STREAM_BYTES);
  assert.equal(result.got, result.res.sha256, 'sha256 of what arrived matches what was sent');
  t.diagnostic(
    `read stream: live growth ${(liveBytes / MiB).toFixed(1)} MiB, rss growth ${(rssBytes / MiB).toFixed(1)} MiB`,
  );
  assert.ok(liveBytes < 32 * MiB, `live memory grew ${(liveBytes / MiB).toFixed(1)} MiB (limit 32 MiB)`);
  assert.ok(rssBytes < 50 * MiB, `rss grew ${(rssBytes / MiB).toFixed(1)} MiB (limit 50 MiB)`);
});

test('a read stream with reuseBuffers arrives intact through a few reused receive buffers', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address]);
  const total = 64 * MiB;
  const call = client.read(
    download,
    { totalBytes: total, chunkBytes: MiB, seed: 11 },
    { deadlineMs: 60_000, reuseBuffers: true },
  );
  const h = createHash('sha256');
  const uses = new Map<ArrayBufferLike, number>();
  let bytes = 0;
  let chunks = 0;
  for await (const chunk of call) {
    // Consumed before the next chunk is asked for, as the option requires.
    h.update(chunk);
    bytes += chunk.length;
    chunks++;
    uses.set(chunk.buffer, (uses.get(chunk.buffer) ?? 0) + 1);
    if (chunks % 8 === 0) await sleep(2); // let frames queue up behind the consumer
  }
  const res = await call.result;
  assert.equal(bytes, total);
  assert.equal(h.digest('hex'), res.sha256, 'sha256 of what arrived matches what was sent');
  const reused = [...uses.values()].filter((n) => n > 1).length;
  t.diagnostic(`${chunks} chunks in ${uses.size} distinct buffers, ${reused} of them reused`);
  assert.ok(reused > 0, 'receive buffers were reused');
  assert.ok(uses.size <= 16, `${uses.size} distinct buffers for ${chunks} chunks (at most 16 expected)`);
});

test('a 100 MiB write stream arrives intact with bounded memory and a slow consumer', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address]);
  const { result, liveBytes, rssBytes } = await peakGrowth(async () => {
    const call = client.write(upload, { name: 'big', slowEveryBytes: 2 * MiB }, { deadlineMs: 60_000 });
    const h = createHash('sha256');
    const chunkBytes = 300 * 1024;
    for (let off = 0; off < STREAM_BYTES; off += chunkBytes) {
      const chunk = testBytes(11, off, Math.min(chunkBytes, STREAM_BYTES - off));
      h.update(chunk);
      await call.write(chunk);
    }
    return { sent: h.digest('hex'), res: await call.end() };
  });
  assert.equal(result.res.bytes, STREAM_BYTES);
  assert.equal(result.res.sha256, result.sent, 'sha256 of what the server received matches what was sent');
  t.diagnostic(
    `write stream: live growth ${(liveBytes / MiB).toFixed(1)} MiB, rss growth ${(rssBytes / MiB).toFixed(1)} MiB`,
  );
  assert.ok(liveBytes < 32 * MiB, `live memory grew ${(liveBytes / MiB).toFixed(1)} MiB (limit 32 MiB)`);
  assert.ok(rssBytes < 50 * MiB, `rss grew ${(rssBytes / MiB).toFixed(1)} MiB (limit 50 MiB)`);
});

test('a stalled stream does not hold up another stream or calls on the same connection', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address], { streamWindowBytes: 1 * MiB });
  const stalled = client.read(download, { totalBytes: 32 * MiB, chunkBytes: 128 * 1024, seed: 1 });
  const stalledIt = stalled[Symbol.asyncIterator]();
  const first = await stalledIt.next(); // take one chunk, then stop reading
  assert.equal(first.done, false);
  // Meanwhile a second stream on the same connection runs to completion.
  const other = client.read(download, { totalBytes: 16 * MiB, chunkBytes: 128 * 1024, seed: 2 });
  const h = createHash('sha256');
  for await (const chunk of other) h.update(chunk);
  assert.equal(h.digest('hex'), (await other.result).sha256);
  // The stalled one resumes and is intact too.
  const h1 = createHash('sha256').update(first.value);
  for (let r = await stalledIt.next(); r.done !== true; r = await stalledIt.next()) h1.update(r.value);
  assert.equal(h1.digest('hex'), (await stalled.result).sha256);
});

const failingDownload = readStream(
  30,
  'test.failingDownload',
  z.object({ chunks: z.number().int() }),
  z.object({}),
);
const watchedDownload = readStream(31, 'test.watchedDownload', z.object({}), z.object({}));
const pickyUpload = writeStream(
  32,
  'test.pickyUpload',
  z.object({ failAfterBytes: z.number() }),
  z.object({}),
);

test('stream errors and cancels reach the other side', async (t) => {
  const seen: string[] = [];
  const { address } = await startServer(t, (s) => {
    s.handle(failingDownload, async (req, _ctx, out) => {
      for (let i = 0; i < req.chunks; i++) await out.write(Buffer.alloc(1000, i));
      throw new StrataError('STRATA_SOURCE_GONE', 'the source disappeared');
    });
    s.handle(watchedDownload, async (_req, ctx, out) => {
      try {
        for (;;) await out.write(Buffer.alloc(64 * 1024));
      } catch (err) {
        seen.push(`download:${(err as StrataError).code}:${String(ctx.signal.aborted)}`);
        throw err;
      }
    });
    s.handle(pickyUpload, async (req, ctx, input) => {
      let bytes = 0;
      try {
        for await (const chunk of input) {
          bytes += chunk.length;
          if (bytes > req.failAfterBytes)
            throw new StrataError('STRATA_REJECTED', `refused after ${bytes} bytes`);
        }
      } catch (err) {
        seen.push(`upload:${(err as StrataError).code}:${String(ctx.signal.aborted)}`);
        throw err;
      }
      return {};
    });
  });
  const client = newClient(t, [address]);

  // A server error mid-stream: the chunks sent before it arrive, then the error.
  const failing = client.read(failingDownload, { chunks: 5 });
  let got = 0;
  await assert.rejects(
    (async () => {
      for await (const chunk of failing) got += chunk.length;
    })(),
    (err: unknown) => err instanceof StrataError && err.code === 'STRATA_SOURCE_GONE',
  );
  assert.equal(got, 5000);
  await assert.rejects(failing.result, /the source disappeared/);

  // The reader cancels: the server's next write fails and its signal is aborted.
  const watched = client.read(watchedDownload, {});
  for await (const _chunk of watched) break; // leaving the loop cancels the stream
  await assert.rejects(
    watched.result,
    (err: unknown) => err instanceof StrataError && err.code === 'STRATA_CANCELLED',
  );
  await waitFor('the server to see the cancel', () => seen.includes('download:STRATA_CANCELLED:true'));

  // The server refuses a write stream part-way: the writer's next write or end() fails with its error.
  const picky = client.write(pickyUpload, { failAfterBytes: 100_000 });
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 1000; i++) await picky.write(Buffer.alloc(10_000));
      await picky.end();
    })(),
    (err: unknown) => err instanceof StrataError && err.code === 'STRATA_REJECTED',
  );

  // The writer cancels: the server's input ends with STRATA_CANCELLED.
  const cancelled = client.write(pickyUpload, { failAfterBytes: 1e12 });
  await cancelled.write(Buffer.alloc(1000));
  await waitFor('the upload to start', async () => {
    await sleep(10);
    return true;
  });
  cancelled.cancel('changed my mind');
  await assert.rejects(
    cancelled.end(),
    (err: unknown) => err instanceof StrataError && err.code === 'STRATA_CANCELLED',
  );
  await waitFor('the server to see the write cancel', () => seen.includes('upload:STRATA_CANCELLED:true'));
});

test('a stream deadline fails it with STRATA_DEADLINE_EXCEEDED', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address], { streamWindowBytes: 64 * 1024 });
  const call = client.read(
    download,
    { totalBytes: 64 * MiB, chunkBytes: 64 * 1024, seed: 3 },
    { deadlineMs: 300 },
  );
  const it = call[Symbol.asyncIterator]();
  await it.next();
  await assert.rejects(call.result, (err: unknown) => err instanceof TimeoutError);
});

test('a dropped connection fails every stream on it with a connection error', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const proxy = await TcpProxy.start(t, address);
  const client = newClient(t, [proxy.address], { streamWindowBytes: 256 * 1024 });
  const reading = client.read(download, { totalBytes: 64 * MiB, chunkBytes: 64 * 1024, seed: 4 });
  const writing = client.write(upload, { name: 'x' });
  const it = reading[Symbol.asyncIterator]();
  await it.next();
  await writing.write(Buffer.alloc(1000));
  proxy.cutAll();
  const isConnectionError = (err: unknown): boolean =>
    err instanceof StrataError && err.code === 'STRATA_CONNECTION' && /127\.0\.0\.1:\d+/.test(err.message);
  await assert.rejects(reading.result, isConnectionError);
  await assert.rejects(
    (async () => {
      for (;;) await it.next().then((r) => (r.done === true ? Promise.reject(new Error('ended')) : r));
    })(),
    isConnectionError,
  );
  await assert.rejects(writing.end(), isConnectionError);
});
