// Proves unary calls on real loopback connections: hundreds in flight on one connection reach the
// right callers, payloads travel both ways, errors keep their type and code, bad requests and
// unknown calls are answered without closing the connection, and deadlines cancel on the server.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { z } from 'zod';
import { FsError, StrataError, TimeoutError } from '../../src/common/errors.js';
import { createRegistry } from '../../src/common/metrics.js';
import { readStream, unary } from '../../src/rpc/index.js';
import { waitFor } from '../helpers/wait.js';
import { echo, fail, hang, reversePayload } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { captureLogger, newClient, startServer } from './helpers.js';

test('hundreds of concurrent calls on one connection each get their own answer', async (t) => {
  const registry = createRegistry('test');
  const state = newState();
  const { address } = await startServer(t, (s) => serveTestCalls(s, state), { registry });
  const client = newClient(t, [address]);
  const n = 500;
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => client.call(echo, { text: `call-${i}`, delayMs: (i * 7) % 23 })),
  );
  results.forEach((r, i) => assert.equal(r.text, `call-${i}`));
  const metrics = await registry.getMetricsAsJSON();
  const conns = metrics.find((m) => m.name === 'strata_rpc_server_connections');
  assert.equal(conns?.values[0]?.value, 1, 'all calls shared one connection');
  const reqs = metrics.find((m) => m.name === 'strata_rpc_server_requests_total');
  const ok = reqs?.values.find((v) => v.labels.call === 'test.echo' && v.labels.status === 'ok');
  assert.equal(ok?.value, n);
});

test('payloads travel beside the body in both directions, unchanged', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address]);
  for (const size of [0, 1, 1000, 70_000, 3 * 1024 * 1024]) {
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 31 + size) & 0xff;
    const res = await client.callWithPayload(reversePayload, { tag: `s${size}` }, { payload });
    assert.equal(res.body.tag, `s${size}`);
    assert.equal(res.body.bytes, size);
    assert.ok(
      res.payload.equals(Buffer.from(payload).reverse()),
      `payload of ${size} bytes came back reversed`,
    );
  }
});

test('errors keep their code, type, message and details; other errors become internal and are logged', async (t) => {
  const { log, lines } = captureLogger();
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()), { log });
  const client = newClient(t, [address]);

  await assert.rejects(client.call(fail, { kind: 'strata' }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_QUOTA');
    assert.equal(err.message, 'quota of /a exceeded');
    return true;
  });
  await assert.rejects(client.call(fail, { kind: 'posix' }), (err: unknown) => {
    assert.ok(err instanceof FsError, 'a POSIX code comes back as an FsError');
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.errno, 2);
    assert.deepEqual(err.details, { path: '/a/b' });
    return true;
  });
  await assert.rejects(client.call(fail, { kind: 'details' }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.deepEqual(err.details, { limit: 5, seen: [1, 2, 3] });
    return true;
  });
  await assert.rejects(client.call(fail, { kind: 'plain' }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_INTERNAL');
    assert.equal(err.message, 'internal error', 'the internal detail does not leak to the caller');
    return true;
  });
  const logged = lines.find((l) => l.msg === 'rpc handler failed');
  assert.ok(logged !== undefined, 'the real error is logged');
  assert.match(JSON.stringify(logged), /secret internal detail/);
  assert.equal(logged.call, 'test.fail');
});

test('a bad request gets STRATA_BAD_REQUEST naming the problem, and the connection stays', async (t) => {
  const registry = createRegistry('test');
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()), { registry });
  const client = newClient(t, [address]);
  // The same call code with a looser schema: what a buggy or older client might send.
  const loose = unary(1, 'test.echo', z.object({ text: z.unknown(), delayMs: z.unknown() }), z.unknown());
  await assert.rejects(client.call(loose, { text: 42, delayMs: -1 }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_BAD_REQUEST');
    assert.match(err.message, /^test\.echo: bad request: /);
    assert.match(err.message, /text: .*expected string/i);
    assert.match(err.message, /delayMs: /);
    return true;
  });
  const unknownCall = unary(999, 'test.nothing', z.object({}), z.object({}));
  await assert.rejects(client.call(unknownCall, {}), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_UNKNOWN_CALL');
    assert.match(err.message, /unknown call code 999/);
    return true;
  });
  // A definition of another kind under the same code (client and server out of step).
  const asStream = readStream(1, 'test.echo', z.object({ text: z.string() }), z.unknown());
  await assert.rejects(
    client.read(asStream, { text: 'x' }).result,
    /test\.echo is a unary call but was called as a read call/,
  );
  assert.equal((await client.call(echo, { text: 'still here' })).text, 'still here');
  const metrics = await registry.getMetricsAsJSON();
  const conns = metrics.find((m) => m.name === 'strata_rpc_server_connections');
  assert.equal(conns?.values[0]?.value, 1, 'the same connection served all four calls');
  const protocolErrors = metrics.find((m) => m.name === 'strata_rpc_server_protocol_errors_total');
  assert.equal(protocolErrors?.values.length ?? 0, 0);
});

test('a deadline fails the call with STRATA_DEADLINE_EXCEEDED and the server sees the cancellation', async (t) => {
  const state = newState();
  const { address } = await startServer(t, (s) => serveTestCalls(s, state));
  const client = newClient(t, [address]);
  const started = Date.now();
  // The server's deadline timer (the caller's remaining time, armed when the request arrives) can
  // fire before the caller's own on a loaded machine; the handler then returns at once and its
  // answer could beat the caller's timer (seen once in a loaded run: the call succeeded). This
  // test is about the caller's deadline, so the handler answers well after it.
  const req = { maxMs: 10_000, answerAfterAbortMs: 1_000 };
  await assert.rejects(client.call(hang, req, { deadlineMs: 200 }), (err: unknown) => {
    assert.ok(err instanceof TimeoutError);
    assert.equal(err.code, 'STRATA_DEADLINE_EXCEEDED');
    assert.match(err.message, /test\.hang: deadline of 200 ms exceeded/);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 190 && elapsed < 2000, `failed after ${elapsed} ms`);
  await waitFor('the handler to see its signal aborted', () => state.aborts.length === 1, 2000);
  assert.ok(
    ['STRATA_CANCELLED', 'STRATA_DEADLINE_EXCEEDED'].includes(state.aborts[0] ?? ''),
    `abort reason ${state.aborts[0]}`,
  );
});

test("the caller's abort signal cancels the call on the server", async (t) => {
  const state = newState();
  const { server, address } = await startServer(t, (s) => serveTestCalls(s, state));
  const client = newClient(t, [address]);
  const ac = new AbortController();
  const call = client.call(hang, { maxMs: 10_000 }, { signal: ac.signal });
  await waitFor('the handler to start', () => state.hangStarted === 1);
  ac.abort();
  await assert.rejects(call, (err: unknown) => err instanceof StrataError && err.code === 'STRATA_CANCELLED');
  await waitFor('the cancel frame to abort the handler', () => state.aborts[0] === 'STRATA_CANCELLED', 2000);
  await waitFor('no call left in flight', () => server.inFlight === 0);
});

test("the handler sees the caller's deadline and request id", async (t) => {
  let seen: { deadlineAt: number; requestId: string } | undefined;
  const probe = unary(20, 'test.probe', z.object({}), z.object({}));
  const { address } = await startServer(t, (s) =>
    s.handle(probe, async (_req, ctx) => {
      seen = { deadlineAt: ctx.deadlineAt, requestId: ctx.requestId };
      return {};
    }),
  );
  const client = newClient(t, [address]);
  const before = Date.now();
  await client.call(probe, {}, { deadlineMs: 5_000, requestId: 'req-1' });
  assert.ok(seen !== undefined);
  assert.equal(seen.requestId, 'req-1');
  assert.ok(
    seen.deadlineAt > before + 4_000 && seen.deadlineAt <= Date.now() + 5_000,
    'deadline carried over',
  );
});

test('a gate can refuse calls; its error reaches the caller', async (t) => {
  let open = false;
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()), {
    gate: (call) => {
      if (!open) throw new StrataError('STRATA_FENCED', `${call.name}: not serving yet`);
    },
  });
  const client = newClient(t, [address]);
  await assert.rejects(client.call(echo, { text: 'x' }), /test\.echo: not serving yet/);
  open = true;
  assert.equal((await client.call(echo, { text: 'x' })).text, 'x');
});

test('a request over the frame limit fails locally with STRATA_TOO_LARGE', async (t) => {
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const client = newClient(t, [address], { maxFrameBytes: 64 * 1024 });
  await assert.rejects(
    client.call(reversePayload, { tag: 'big' }, { payload: Buffer.alloc(100 * 1024) }),
    (err: unknown) => err instanceof StrataError && err.code === 'STRATA_TOO_LARGE',
  );
  assert.equal((await client.call(echo, { text: 'fine' })).text, 'fine');
});
