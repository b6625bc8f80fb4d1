// Bad arguments give one clear line and the documented exit code (docs/cli.md) before any
// cluster is contacted: the compiled CLI is run as a user would run it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const env = { ...process.env, STRATA_CONF_FILE: '' };

async function strata(args: string[], cwd?: string) {
  return runStrata(args, { env, timeoutMs: 30_000, ...(cwd === undefined ? {} : { cwd }) });
}

test('usage errors exit 2 with a line saying what is wrong', async (t) => {
  const cwd = tempDir(t, 'strata-cli-');
  const cases: [string[], RegExp][] = [
    [['fs', 'bogus'], /unknown command 'bogus'/],
    [['fs', 'put', 'only-one'], /expected one or more sources and a destination/],
    [['fs', 'put', '--replicas', 'x', 'a', '/b'], /--replicas: expected a number from 1 to 16 \(got "x"\)/],
    [['fs', 'put', '--block-size', '1000', 'a', '/b'], /--block-size: expected a size of at least 64KB/],
    [
      ['fs', 'put', '--storage-type', 'TAPE', 'a', '/b'],
      /--storage-type: expected MEM, NVME, SSD, DISK or HDD/,
    ],
    [['fs', 'put', '-', '-', '/b'], /"-" \(stdin\) must be the only source/],
    [['fs', 'chmod', '999', '/x'], /bad mode "999"/],
    [['fs', 'chown', 'no-such-user-here', '/x'], /unknown user "no-such-user-here"/],
    [['fs', 'mv', '/a'], /expected one or more sources and a destination/],
    [['fs', 'ls', '--bogus'], /unknown option '--bogus'/],
    [['--master', 'nonsense', 'fs', 'ls'], /--master: expected host:port/],
    [['report', 'bogus'], /unknown view "bogus"/],
    [['node', '--list', '--decommission', 'h:1'], /either --list or --decommission/],
    [['local', '--mem', 'lots'], /--mem: expected a size/],
    [['fs', 'ls', ''], /empty path/],
  ];
  for (const [args, message] of cases) {
    const r = await strata(args, cwd);
    assert.equal(r.code, 2, `${args.join(' ')}: exit ${String(r.code)}\n${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /^strata: /, 'one line starting with "strata: "');
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('a bad configuration file exits 2 naming the key', async (t) => {
  const dir = tempDir(t, 'strata-cli-');
  const conf = join(dir, 'bad.toml');
  writeFileSync(conf, '[client]\nreplicas = 40\n');
  const r = await strata(['--conf', conf, 'fs', 'ls']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /client\.replicas: expected a replica count from 1 to 16/);
});

test('strata local: a taken port is named with the key to change (exit 1)', async (t) => {
  const dir = tempDir(t, 'strata-local-');
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => holder.close());
  const port = (holder.address() as AddressInfo).port;
  const conf = join(dir, 'conf.toml');
  writeFileSync(conf, `[master]\nrpc_port = ${port}\n`);
  const r = await strata(['--conf', conf, 'local', '--data-dir', join(dir, 'data'), '--mem', '0']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`port ${port} \\(master, master\\.rpc_port\\) is already in use`));
  assert.match(r.stderr, /change master\.rpc_port in a config file passed with --conf/);
});
