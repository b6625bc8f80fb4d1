// CLI helpers in isolation: chmod mode parsing (octal and symbolic, checked against what
// chmod(1) does), permission strings, the progress line (rate, ETA) and column alignment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliPath, parseMode } from '../../src/cli/client.js';
import { modeString, table } from '../../src/cli/format.js';
import { Progress } from '../../src/cli/progress.js';

test('chmod modes: octal and symbolic, relative to the current mode', () => {
  assert.equal(parseMode('755', 0, false), 0o755);
  assert.equal(parseMode('1777', 0, true), 0o1777);
  assert.equal(parseMode('u+x', 0o644, false), 0o744);
  assert.equal(parseMode('go-w', 0o666, false), 0o644);
  assert.equal(parseMode('a=r,u+w', 0o777, false), 0o644);
  assert.equal(parseMode('+x', 0o644, false), 0o755);
  assert.equal(parseMode('o=', 0o757, false), 0o750);
  // X: execute only for directories or files already executable by someone.
  assert.equal(parseMode('a+X', 0o644, false), 0o644);
  assert.equal(parseMode('a+X', 0o644, true), 0o755);
  assert.equal(parseMode('a+X', 0o744, false), 0o755);
  assert.equal(parseMode('u+s', 0o755, false), 0o4755);
  assert.equal(parseMode('+t', 0o777, true), 0o1777);
  for (const bad of ['888', '12345', 'u+q', 'x+r', '', 'rwx']) {
    assert.equal(parseMode(bad, 0o644, false), undefined, bad);
  }
});

test('permission strings like ls -l', () => {
  assert.equal(modeString('file', 0o644), '-rw-r--r--');
  assert.equal(modeString('dir', 0o755), 'drwxr-xr-x');
  assert.equal(modeString('symlink', 0o777), 'lrwxrwxrwx');
  assert.equal(modeString('dir', 0o1777), 'drwxrwxrwt');
  assert.equal(modeString('file', 0o4644), '-rwSr--r--');
  assert.equal(modeString('file', 0o2755), '-rwxr-sr-x');
});

test('paths typed without a slash are taken from the root', () => {
  assert.equal(cliPath('a/b'), '/a/b');
  assert.equal(cliPath('/a'), '/a');
  assert.throws(() => cliPath(''), /empty path/);
});

test('progress line shows bytes, rate and ETA; it stays silent off a terminal', () => {
  let now = 1000;
  const writes: string[] = [];
  const out = {
    isTTY: true,
    columns: 200,
    write: (s: string) => writes.push(s),
  } as unknown as NodeJS.WriteStream;
  const p = new Progress({ label: 'big.bin', totalBytes: 100 * 1024 * 1024, out, now: () => now });
  now = 2000;
  p.add(25 * 1024 * 1024);
  const line = p.line(now);
  assert.match(line, /big\.bin/);
  assert.match(line, / 25%/);
  assert.match(line, /25\.0MiB\/100MiB/);
  assert.match(line, /25\.0MiB\/s/);
  assert.match(line, /ETA 3\.0s/);
  assert.ok(writes.length > 0, 'drew on a TTY');
  p.finish();
  const quiet: string[] = [];
  const pipe = { isTTY: false, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream;
  const q = new Progress({ label: 'x', totalBytes: 100 * 1024 * 1024, out: pipe, now: () => now });
  q.add(1024 * 1024);
  q.finish();
  assert.deepEqual(quiet, []);
  // Unknown total (stdin): bytes and rate only.
  const s = new Progress({ label: 'stdin', out, now: () => now, enabled: true });
  now = 3000;
  s.add(2048);
  assert.match(s.line(now), /^stdin {2}2\.00KiB {2}2\.00KiB\/s$/);
});

test('tables align columns, numbers to the right', () => {
  const lines = table(
    [
      ['a', '1', 'x'],
      ['bbb', '100', 'yy'],
    ],
    new Set([1]),
  );
  assert.deepEqual(lines, ['a      1  x', 'bbb  100  yy']);
});
