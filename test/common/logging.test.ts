// A log destination that fails for good stops logging instead of hanging or crashing the process:
// a real master whose stdout/stderr pipes lost their reader (an orphaned child) still exits on
// SIGTERM, and a logger writing to a full disk (/dev/full) keeps its process alive and says why on stderr.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../helpers/ports.js';
import { STRATA_BIN, run } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor, withDeadline } from '../helpers/wait.js';

const LOGGING_MODULE = fileURLToPath(new URL('../../src/common/logging.js', import.meta.url));

test('a master whose log pipe lost its reader still stops on SIGTERM', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const [rpcPort, webPort] = await freePorts(2);
  const conf = join(dir, 'strata.toml');
  writeFileSync(
    conf,
    `cluster_id = "logs"\n[master]\nhostname = "127.0.0.1"\nrpc_port = ${rpcPort}\nweb_port = ${webPort}\nmeta_dir = "${join(dir, 'meta')}"\n[log]\nlog_dir = "stdout"\n`,
  );
  const child = spawn(process.execPath, [STRATA_BIN, '--conf', conf, 'master'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor(
    'the master to serve /ready',
    async () => (await fetch(`http://127.0.0.1:${webPort}/ready`).catch(() => undefined))?.status === 200,
    30_000,
  );
  assert.match(out, /"role":"master"/, 'the master logs to stdout');
  // The reader goes away, as when the parent of an orphaned process dies.
  child.stdout.destroy();
  child.stderr.destroy();
  child.kill('SIGTERM');
  const code = await withDeadline('the master to exit after SIGTERM', 8_000, () => exited);
  assert.equal(code, 0);
});

test(
  'a logger whose disk is full keeps its process alive and says so once',
  { timeout: 60_000 },
  async (t) => {
    // The log file is /dev/full: every write fails with ENOSPC, as on a full disk, and no mount
    // (nor root) is needed.
    const dir = tempDir(t);
    symlinkSync('/dev/full', join(dir, 'full.log'));
    const script = `
    import { createLogger } from ${JSON.stringify(LOGGING_MODULE)};
    const log = createLogger({ level: 'INFO', logDir: ${JSON.stringify(dir)}, role: 'full' });
    for (let i = 0; i < 2000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'filling the disk');
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (let i = 0; i < 10; i++) log.info({ i }, 'after the failure');
    log.flush(() => { process.stdout.write('alive\\n'); process.exit(0); });
  `;
    // Killed at the deadline: its code is then the signal, and the assertion below shows stderr.
    const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'alive\n');
    const notes = r.stderr.split('\n').filter((l) => l.includes('logging stopped'));
    assert.equal(notes.length, 1, r.stderr);
    assert.match(notes[0] ?? '', /full\.log failed \(ENOSPC\)/);
  },
);
