// Proves graceful shutdown: close() stops new calls (STRATA_UNAVAILABLE, so clients fail over),
// lets in-flight calls finish, aborts what outlives the grace bound; and a server process on the
// common Lifecycle answers its in-flight calls and exits 0 on SIGTERM.
import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { StrataError } from '../../src/common/errors.js';
import { RpcServer } from '../../src/rpc/index.js';
import { startProcess } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { echo, hang } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { newClient } from './helpers.js';

const FIXTURE_SERVER = fileURLToPath(new URL('./fixtures/server.js', import.meta.url));

test('close() refuses new calls, lets in-flight calls finish, then closes', async (t) => {
  const server = new RpcServer();
  serveTestCalls(server, newState());
  const address = await server.listen('127.0.0.1', 0);
  const client = newClient(t, [address], { retryMax: 0 });
  const calls = Array.from({ length: 10 }, (_, i) => client.call(echo, { text: `slow-${i}`, delayMs: 300 }));
  await waitFor('ten calls in flight', () => server.inFlight === 10);
  const started = Date.now();
  const closing = server.close(5_000);
  await assert.rejects(client.call(echo, { text: 'late' }), (err: unknown) => {
    return err instanceof StrataError && err.code === 'STRATA_UNAVAILABLE';
  });
  const results = await Promise.all(calls);
  results.forEach((r, i) => assert.equal(r.text, `slow-${i}`));
  await closing;
  assert.ok(Date.now() - started < 2_000, 'close returned once the calls were done');
  await assert.rejects(client.call(echo, { text: 'after' }), (err: unknown) => {
    return err instanceof StrataError && err.code === 'STRATA_CONNECTION';
  });
});

test('close() aborts calls that outlive the grace bound', async (t) => {
  const state = newState();
  const server = new RpcServer();
  serveTestCalls(server, state);
  const address = await server.listen('127.0.0.1', 0);
  const client = newClient(t, [address], { retryMax: 0 });
  const call = client.call(hang, { maxMs: 60_000 });
  await waitFor('the call to start', () => state.hangStarted === 1);
  const started = Date.now();
  await server.close(200);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 190 && elapsed < 1_500, `closed after ${elapsed} ms`);
  assert.deepEqual(state.aborts, ['STRATA_UNAVAILABLE']);
  assert.deepEqual(await call, { aborted: true }, 'the aborted handler still answered');
});

test('SIGTERM: the server process answers its in-flight calls and exits 0', async (t) => {
  const proc = startProcess(process.execPath, [FIXTURE_SERVER], { t });
  await proc.waitForOutput(/listening \d+/);
  const port = Number(/listening (\d+)/.exec(proc.stdout)?.[1]);
  const client = newClient(t, [{ host: '127.0.0.1', port }], { retryMax: 0 });
  const calls = Array.from({ length: 20 }, (_, i) => client.call(echo, { text: `c${i}`, delayMs: 500 }));
  await waitFor('20 calls in flight', () => proc.stdout.split('call started').length - 1 === 20);
  proc.child.kill('SIGTERM');
  const results = await Promise.all(calls);
  results.forEach((r, i) => assert.equal(r.text, `c${i}`));
  assert.equal(await proc.exited, 0);
  assert.match(proc.stderr, /shutting down/);
});
