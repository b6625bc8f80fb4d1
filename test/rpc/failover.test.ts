// Proves the client's failover: a down first address is skipped, "not leader" jumps to the hinted
// leader (or the next address without a hint), non-retryable errors surface at once, retries stop
// within their bound, a silent peer is detected by keepalive pings, a restarted server is
// reconnected to, and the configuration's [client] keys become the client's options.
import { strict as assert } from 'node:assert';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { StrataError } from '../../src/common/errors.js';
import { createRegistry } from '../../src/common/metrics.js';
import { parseConfigText } from '../../src/common/config/index.js';
import { NotLeaderError, RpcServer, masterClientOptions, retryCacheOptions } from '../../src/rpc/index.js';
import type { RemoteAddress } from '../../src/rpc/index.js';
import { freePort } from '../helpers/ports.js';
import { echo, fail } from './fixtures/calls.js';
import { newState, serveTestCalls } from './fixtures/handlers.js';
import { newClient, startServer } from './helpers.js';

async function metricValue(
  registry: ReturnType<typeof createRegistry>,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

test('a call fails over to the second address when the first is down, and stays there', async (t) => {
  const down: RemoteAddress = { host: '127.0.0.1', port: await freePort() };
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()));
  const registry = createRegistry('test');
  const client = newClient(t, [down, address], { registry });
  assert.equal((await client.call(echo, { text: 'a' })).text, 'a');
  assert.equal((await client.call(echo, { text: 'b' })).text, 'b');
  assert.equal(await metricValue(registry, 'strata_rpc_client_connects_total', { result: 'failed' }), 1);
  assert.equal(await metricValue(registry, 'strata_rpc_client_connects_total', { result: 'ok' }), 1);
  assert.equal(
    await metricValue(registry, 'strata_rpc_client_retries_total', {
      call: 'test.echo',
      reason: 'STRATA_CONNECTION',
    }),
    1,
  );
});

test('"not leader" sends the call to the hinted leader, skipping the addresses between', async (t) => {
  const hits = { a: 0, b: 0, c: 0 };
  const c = await startServer(t, (s) => serveTestCalls(s, newState()), {
    gate: () => {
      hits.c++;
    },
  });
  const standby = (name: 'a' | 'b') => () => {
    hits[name]++;
    throw new NotLeaderError(c.address);
  };
  const a = await startServer(t, (s) => serveTestCalls(s, newState()), { gate: standby('a') });
  const b = await startServer(t, (s) => serveTestCalls(s, newState()), { gate: standby('b') });
  const client = newClient(t, [a.address, b.address, c.address]);
  assert.equal((await client.call(echo, { text: 'to the leader' })).text, 'to the leader');
  assert.deepEqual(hits, { a: 1, b: 0, c: 1 });
  await client.call(echo, { text: 'again' });
  assert.deepEqual(hits, { a: 1, b: 0, c: 2 }, 'the client remembers the leader');
});

test('"not leader" without a hint moves on to the next address', async (t) => {
  const hits = { a: 0, b: 0 };
  const a = await startServer(t, (s) => serveTestCalls(s, newState()), {
    gate: () => {
      hits.a++;
      throw new NotLeaderError(undefined);
    },
  });
  const b = await startServer(t, (s) => serveTestCalls(s, newState()), {
    gate: () => {
      hits.b++;
    },
  });
  const client = newClient(t, [a.address, b.address]);
  assert.equal((await client.call(echo, { text: 'x' })).text, 'x');
  assert.deepEqual(hits, { a: 1, b: 1 });
});

test('non-retryable errors surface at once, without retries', async (t) => {
  let attempts = 0;
  const { address } = await startServer(t, (s) => serveTestCalls(s, newState()), {
    gate: () => {
      attempts++;
    },
  });
  const client = newClient(t, [address]);
  const started = Date.now();
  await assert.rejects(client.call(fail, { kind: 'strata' }), (err: unknown) => {
    return err instanceof StrataError && err.code === 'STRATA_QUOTA';
  });
  assert.equal(attempts, 1);
  assert.ok(Date.now() - started < 500);
});

test('retries are bounded: with every address down the call fails with the connection error', async (t) => {
  const addresses = [
    { host: '127.0.0.1', port: await freePort() },
    { host: '127.0.0.1', port: await freePort() },
  ];
  const registry = createRegistry('test');
  const client = newClient(t, addresses, {
    retryMax: 3,
    reconnectBaseDelayMs: 10,
    reconnectMaxDelayMs: 20,
    registry,
  });
  const started = Date.now();
  await assert.rejects(client.call(echo, { text: 'x' }, { deadlineMs: 5_000 }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_CONNECTION');
    assert.match(err.message, /cannot connect to 127\.0\.0\.1:\d+: ECONNREFUSED/);
    return true;
  });
  assert.ok(Date.now() - started < 2_000, 'gave up long before the deadline');
  assert.equal(await metricValue(registry, 'strata_rpc_client_retries_total', { call: 'test.echo' }), 3);
});

test('keepalive pings detect a peer that stopped answering', async (t) => {
  // A "server" that accepts and reads but never answers: a hung process or a dead host.
  const sockets = new Set<Socket>();
  const blackHole = createServer((s) => {
    sockets.add(s);
    s.on('data', () => {});
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    blackHole.close();
  });
  const port = (blackHole.address() as { port: number }).port;
  const client = newClient(t, [{ host: '127.0.0.1', port }], {
    keepaliveIntervalMs: 100,
    keepaliveTimeoutMs: 200,
    retryMax: 0,
  });
  const started = Date.now();
  await assert.rejects(client.call(echo, { text: 'x' }, { deadlineMs: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof StrataError);
    assert.equal(err.code, 'STRATA_CONNECTION');
    assert.match(err.message, /did not answer a keepalive ping within 200 ms/);
    return true;
  });
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2_000, `detected after ${elapsed} ms`);
});

test('a restarted server is reconnected to', async (t) => {
  const port = await freePort();
  const first = new RpcServer();
  serveTestCalls(first, newState());
  await first.listen('127.0.0.1', port);
  const client = newClient(t, [{ host: '127.0.0.1', port }], { reconnectBaseDelayMs: 10 });
  assert.equal((await client.call(echo, { text: 'one' })).text, 'one');
  await first.close(100);
  const second = new RpcServer();
  serveTestCalls(second, newState());
  await second.listen('127.0.0.1', port);
  t.after(() => second.close(100));
  assert.equal((await client.call(echo, { text: 'two' })).text, 'two');
});

test('the configuration gives the masters client its addresses, deadline, connect timeout and retries', () => {
  const { config } = parseConfigText(
    [
      '[client]',
      'rpc_timeout = "7s"',
      'conn_timeout = "2s"',
      'rpc_retry_max = 4',
      '[[client.master_addrs]]',
      'hostname = "m1"',
      'port = 9001',
      '[[client.master_addrs]]',
      'hostname = "m2"',
      'port = 9002',
      '[master]',
      'retry_cache_ttl = "5m"',
    ].join('\n'),
    'test.toml',
    { env: {} },
  );
  assert.deepEqual(masterClientOptions(config), {
    addresses: [
      { host: 'm1', port: 9001 },
      { host: 'm2', port: 9002 },
    ],
    deadlineMs: 7000,
    connectTimeoutMs: 2000,
    retryMax: 4,
  });
  assert.deepEqual(retryCacheOptions(config), { ttlMs: 300_000 });
});
