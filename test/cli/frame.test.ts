// Proves the CLI frame: help and version work from the compiled binary, an unknown command is a
// usage error (exit 2) with a suggestion, and errors are one line without a stack trace.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { normaliseArgv } from '../../src/cli/program.js';
import { runStrata } from '../helpers/process.js';

test('help, version and usage errors', async () => {
  const help = await runStrata(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: strata/);
  assert.match(help.stdout, /check-config/);
  const version = await runStrata(['version', '--json']);
  assert.equal(version.code, 0);
  assert.match((JSON.parse(version.stdout) as { version: string }).version, /^\d+\.\d+\.\d+/);
  const typo = await runStrata(['versoin']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command 'versoin'/);
  assert.match(typo.stderr, /Did you mean version/);
  const badOpt = await runStrata(['version', '--bogus']);
  assert.equal(badOpt.code, 2);
  assert.match(badOpt.stderr, /unknown option '--bogus'/);
  assert.doesNotMatch(typo.stderr + badOpt.stderr, /\n\s+at /, 'no stack trace');
});

test('the seed KV spelling -config=FILE is accepted as --config=FILE', () => {
  assert.deepEqual(normaliseArgv(['node', 'strata', 'kv', '-config=config/node1.yaml']), [
    'node',
    'strata',
    'kv',
    '--config=config/node1.yaml',
  ]);
  assert.deepEqual(normaliseArgv(['fs', 'ls', '-lh', '-R']), ['fs', 'ls', '-lh', '-R']);
});
