// Proves the Redis protocol listener with real clients (redis-cli, redis-benchmark from Debian's
// redis-tools) against a 2-node cluster: commands and their Redis replies, keys owned by the
// other node routed transparently (and shared with the HTTP API), pipelining (redis-cli --pipe
// and one raw write of many commands), errors, and protocol limits that close the connection.
import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { test } from 'node:test';
import { requireTools } from '../helpers/ci.js';
import { run } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { get, getJson, put, startKvCluster } from './cluster-helper.js';

const skip = requireTools('redis-cli', 'redis-benchmark');

async function cli(port: number, ...args: string[]): Promise<string> {
  const r = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trimEnd();
}

/** Sends raw bytes and collects the reply until `done(text)` or the socket closes. */
async function raw(
  port: number,
  payload: string | Buffer,
  done: (text: string) => boolean,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`raw RESP exchange timed out; got ${JSON.stringify(text.slice(0, 200))}`));
    }, 10_000);
    s.on('data', (b) => {
      text += b.toString('latin1');
      if (done(text)) {
        clearTimeout(timer);
        s.destroy();
        resolve({ text, closed: false });
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    s.on('error', () => undefined);
    s.write(payload);
  });
}

test('redis-cli and redis-benchmark against the cluster', { skip }, async (t) => {
  const c = await startKvCluster(t, { size: 2 });
  const [a, b] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];

  assert.equal(await cli(a.respPort, 'PING'), 'PONG');
  assert.equal(await cli(a.respPort, 'SET', 'greeting', 'hello world'), 'OK');
  assert.equal(await cli(b.respPort, 'GET', 'greeting'), 'hello world');

  // A key owned by node2, written through node1's RESP, read through node2's HTTP and back.
  let remote = '';
  for (let i = 0; remote === ''; i++) {
    const loc = (await getJson(`${a.base}/admin/locate?key=r${i}`)).body as { home: string[] };
    if (loc.home[0] === 'node2') remote = `r${i}`;
  }
  assert.equal(await cli(a.respPort, 'SET', remote, 'via-resp'), 'OK');
  assert.deepEqual((await get(b.base, remote)).body, { key: remote, value: 'via-resp' });
  assert.equal(
    (await getJson(`${b.base}/admin/locate?key=${remote}`)).text.includes('"held_here":true'),
    true,
  );
  await put(b.base, 'json', { value: { n: 1 } });
  assert.equal(await cli(a.respPort, 'GET', 'json'), '{"n":1}');

  // Options and TTLs.
  assert.equal(await cli(a.respPort, 'SET', 'nx', '1', 'NX'), 'OK');
  assert.equal(await cli(a.respPort, 'SET', 'nx', '2', 'NX'), '');
  assert.equal(await cli(a.respPort, 'SET', 'xx', '1', 'XX'), '');
  assert.equal(await cli(a.respPort, 'SET', 'ttl', 'v', 'EX', '100'), 'OK');
  assert.equal(await cli(a.respPort, 'TTL', 'ttl'), '100');
  assert.ok(Number(await cli(b.respPort, 'PTTL', 'ttl')) > 99_000);
  assert.equal(await cli(a.respPort, 'PERSIST', 'ttl'), '1');
  assert.equal(await cli(a.respPort, 'TTL', 'ttl'), '-1');
  assert.equal(await cli(a.respPort, 'TTL', 'missing'), '-2');
  assert.equal(await cli(a.respPort, 'EXPIRE', 'ttl', '0'), '1');
  assert.equal(await cli(a.respPort, 'EXISTS', 'ttl'), '0');
  // PX long enough to read back even when spawning redis-cli is slow on a loaded machine.
  assert.equal(await cli(a.respPort, 'SET', 'px', 'v', 'PX', '1500'), 'OK');
  const pttl = Number(await cli(a.respPort, 'PTTL', 'px'));
  assert.ok(pttl > 0 && pttl <= 1500, `PTTL within the PX given: ${pttl}`);
  await waitFor(
    'the 1500 ms TTL to expire',
    async () => (await cli(a.respPort, 'GET', 'px')) === '',
    5000,
    50,
  );
  assert.equal(await cli(b.respPort, 'EXISTS', 'px'), '0');

  // Counters, multi-key commands spanning both nodes.
  assert.equal(await cli(a.respPort, 'INCR', 'cnt'), '1');
  assert.equal(await cli(b.respPort, 'INCRBY', 'cnt', '41'), '42');
  assert.equal(await cli(a.respPort, 'DECR', 'cnt'), '41');
  const keys = Array.from({ length: 20 }, (_, i) => `m${i}`);
  assert.equal(await cli(a.respPort, 'MSET', ...keys.flatMap((k) => [k, `val-${k}`])), 'OK');
  assert.deepEqual((await cli(b.respPort, 'MGET', 'absent', ...keys)).split('\n'), [
    '',
    ...keys.map((k) => `val-${k}`),
  ]);
  assert.equal(await cli(a.respPort, 'EXISTS', ...keys, 'absent'), '20');
  assert.equal(await cli(b.respPort, 'DEL', 'm0', 'm1', 'absent'), '2');
  const sizes = (await Promise.all([a, b].map((n) => cli(n.respPort, 'DBSIZE')))).map(Number);
  assert.ok(sizes[0]! > 0 && sizes[1]! > 0, `DBSIZE per node: ${sizes.join(', ')}`);

  // Errors answer like Redis and keep the connection usable.
  assert.match(await cli(a.respPort, 'INCR', 'greeting'), /ERR value is not an integer or out of range/);
  assert.match(await cli(a.respPort, 'GET'), /ERR wrong number of arguments for 'get' command/);
  assert.match(await cli(a.respPort, 'NOSUCH', 'x'), /ERR unknown command 'NOSUCH'/);
  assert.match(await cli(a.respPort, 'SET', 'k', 'v', 'EX', 'soon'), /ERR value is not an integer/);
  assert.match(await cli(a.respPort, 'SET', 'k', 'v', 'BOGUS'), /ERR syntax error/);
  assert.match(
    await cli(a.respPort, 'SET', 'k'.repeat(2000), 'v'),
    /ERR key is 2000 bytes; the limit is limits.max_key_bytes = 1024/,
  );

  // Introspection redis-cli and redis-benchmark use.
  const info = await cli(a.respPort, 'INFO');
  assert.match(info, /redis_version:/);
  assert.match(info, /strata_nodes_up:2/);
  assert.match(info, /db0:keys=\d+/);
  assert.ok(Number(await cli(a.respPort, 'COMMAND', 'COUNT')) >= 30);
  assert.equal(await cli(a.respPort, 'CONFIG', 'GET', 'appendonly'), 'appendonly\nno');

  // Pipelining with a real client: 2000 commands streamed by redis-cli --pipe.
  const pipe = Array.from({ length: 2000 }, (_, i) => `SET pipe:${i} ${i}\r\n`).join('');
  const piped = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(b.respPort), '--pipe'], {
    input: pipe,
    timeoutMs: 20_000,
  });
  assert.equal(piped.code, 0, piped.stdout + piped.stderr);
  assert.match(piped.stdout, /errors: 0, replies: 2000/);
  assert.equal(await cli(a.respPort, 'GET', 'pipe:1999'), '1999');

  const bench = await run(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(a.respPort), '-t', 'set,get', '-n', '3000', '-P', '16', '-q', '--csv'],
    {
      timeoutMs: 30_000,
    },
  );
  assert.equal(bench.code, 0, bench.stderr);
  assert.match(bench.stdout, /"SET","\d+/);
  assert.match(bench.stdout, /"GET","\d+/);

  assert.equal(await cli(b.respPort, 'FLUSHALL'), 'OK');
  assert.equal(await cli(a.respPort, 'DBSIZE'), '0');
  assert.equal(await cli(b.respPort, 'DBSIZE'), '0');
  assert.equal((await get(a.base, 'greeting')).status, 404);
});

test('raw pipelining keeps order; protocol limits close the connection', { skip }, async (t) => {
  const c = await startKvCluster(t, {
    size: 2,
    extra: 'limits:\n  max_value_bytes: 1KB\n  resp_max_array_length: 8\n',
  });
  const port = (c.nodes[0] as { respPort: number }).respPort;
  // 100 commands in one write, keys spread over both nodes: replies come back in order.
  let payload = '';
  for (let i = 0; i < 50; i++)
    payload += `*3\r\n$3\r\nSET\r\n$${`p${i}`.length}\r\np${i}\r\n$${String(i).length}\r\n${i}\r\n`;
  for (let i = 0; i < 50; i++) payload += `*2\r\n$3\r\nGET\r\n$${`p${i}`.length}\r\np${i}\r\n`;
  const expected =
    '+OK\r\n'.repeat(50) + Array.from({ length: 50 }, (_, i) => `$${String(i).length}\r\n${i}\r\n`).join('');
  const r = await raw(port, payload, (text) => text.length >= expected.length);
  assert.equal(r.text, expected);

  const tooBig = await raw(port, '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n', () => false);
  assert.equal(tooBig.text, '-ERR Protocol error: invalid bulk length (limit 1024 bytes)\r\n');
  assert.equal(tooBig.closed, true);
  const tooMany = await raw(port, 'PING\r\n*9\r\n', () => false);
  assert.equal(tooMany.text, '+PONG\r\n-ERR Protocol error: invalid multibulk length (limit 8)\r\n');
  assert.equal(tooMany.closed, true);
  const quit = await raw(port, 'PING\r\nQUIT\r\nPING\r\n', () => false);
  assert.equal(quit.text, '+PONG\r\n+OK\r\n');
  assert.equal(quit.closed, true);
});
