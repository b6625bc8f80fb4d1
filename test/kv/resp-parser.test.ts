// Proves the streaming RESP parser: commands split at every byte boundary parse the same as in
// one chunk, pipelined and inline commands come out in order, and each limit (bulk length,
// array length, inline size) and malformed header is refused as a protocol error.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { RespParser, RespProtocolError, splitInline } from '../../src/kv/resp/parser.js';

const limits = { maxBulkBytes: 1024, maxArrayLength: 16, maxInlineBytes: 64 };

function encode(...args: string[]): Buffer {
  return Buffer.from(
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
  );
}

function asText(cmds: Buffer[][]): string[][] {
  return cmds.map((c) => c.map((b) => b.toString()));
}

test('pipelined commands split at every byte boundary parse the same', () => {
  const input = Buffer.concat([
    encode('SET', 'key:1', 'hello\r\nworld'),
    encode('GET', 'key:1'),
    Buffer.from('PING\r\n'),
    encode('MSET', 'a', '', 'b', 'x'.repeat(300)),
    Buffer.from('*0\r\n'),
    Buffer.from('ECHO "two words" \'and\\n\'\n'),
  ]);
  const expected = [
    ['SET', 'key:1', 'hello\r\nworld'],
    ['GET', 'key:1'],
    ['PING'],
    ['MSET', 'a', '', 'b', 'x'.repeat(300)],
    ['ECHO', 'two words', 'and\\n'],
  ];
  assert.deepEqual(asText(new RespParser(limits).push(input)), expected);
  for (let cut = 1; cut < input.length; cut++) {
    const p = new RespParser(limits);
    const out = [...p.push(input.subarray(0, cut)), ...p.push(input.subarray(cut))];
    assert.deepEqual(asText(out), expected, `cut at ${cut}`);
    assert.equal(p.buffered, 0);
  }
  // Byte by byte.
  const p = new RespParser(limits);
  const out: Buffer[][] = [];
  for (const b of input) p.push(Buffer.from([b]), out);
  assert.deepEqual(asText(out), expected);
});

test('binary values pass through unchanged', () => {
  const value = Buffer.from([0, 255, 13, 10, 36, 42, 128]);
  const msg = Buffer.concat([
    Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\n'),
    value,
    Buffer.from('\r\n'),
  ]);
  const [cmd] = new RespParser(limits).push(msg);
  assert.deepEqual(cmd?.[2], value);
});

function protocolError(input: string | Buffer, re: RegExp): void {
  const p = new RespParser(limits);
  assert.throws(
    () => p.push(typeof input === 'string' ? Buffer.from(input) : input),
    (err: unknown) => err instanceof RespProtocolError && re.test(err.message),
    String(input).slice(0, 40),
  );
}

test('limits and malformed input are protocol errors', () => {
  protocolError('*17\r\n', /invalid multibulk length \(limit 16\)/);
  protocolError('*x\r\n', /invalid multibulk length/);
  protocolError('*1\r\n$1025\r\n', /invalid bulk length \(limit 1024 bytes\)/);
  protocolError('*1\r\n$-5\r\n', /invalid bulk length/);
  protocolError('*1\r\n+OK\r\n', /expected '\$', got '\+'/);
  protocolError('*1\r\n$2\r\nabXY', /not terminated by CRLF/);
  protocolError(`${'x'.repeat(65)}`, /too big inline request/);
  protocolError(`*${'1'.repeat(70)}`, /multibulk count line too long/);
  protocolError('GET "unclosed\r\n', /unbalanced quotes/);
  // A bulk over the limit is refused from its header, before its body is buffered.
  const p = new RespParser(limits);
  assert.throws(() => p.push(Buffer.from('*2\r\n$3\r\nGET\r\n$999999\r\n')), RespProtocolError);
});

test('a large bulk arriving in many chunks is gathered once', () => {
  const big = 'v'.repeat(1000);
  const input = encode('SET', 'k', big);
  const p = new RespParser(limits);
  const out: Buffer[][] = [];
  for (let i = 0; i < input.length; i += 7) p.push(input.subarray(i, i + 7), out);
  assert.equal(out.length, 1);
  assert.equal(out[0]?.[2]?.toString(), big);
});

test('inline splitting follows redis-server quoting', () => {
  assert.deepEqual(splitInline(Buffer.from('SET  k "a b\\"c"  \'d e\'')).map(String), [
    'SET',
    'k',
    'a b"c',
    'd e',
  ]);
  assert.deepEqual(splitInline(Buffer.from('   ')), []);
});
