// Proves the seed's tooling against the compiled CLI: scripts/start_cluster.sh starts three
// nodes from the shipped config/node*.yaml (ports moved to free ones), scripts/test_cluster.sh
// passes every check, scripts/stop_cluster.sh stops them all and removes the pid files.
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireTools } from '../helpers/ci.js';
import { freePorts } from '../helpers/ports.js';
import { run } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { processAlive } from '../../src/common/runtime.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const skip = requireTools('bash', 'curl');

/** Pids of the nodes a script run says it started ("node2: started (pid 1234, …)"). */
function startedPids(stdout: string): number[] {
  return [...stdout.matchAll(/: started \(pid (\d+)/g)].map((m) => Number(m[1]));
}

test('start_cluster.sh → test_cluster.sh → stop_cluster.sh', { skip }, async (t) => {
  // Registered before the temp dir's removal (after-hooks run in order): whatever happens below,
  // every node a script started is stopped, by its pid.
  const started: number[] = [];
  t.after(() => {
    for (const pid of started) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const dir = tempDir(t, 'strata-kv-scripts-');
  const configDir = join(dir, 'config');
  mkdirSync(configDir);
  const ports = await freePorts(6);
  for (let i = 1; i <= 3; i++) {
    // One pass, so a new port containing "8002" is not rewritten again.
    const text = readFileSync(join(ROOT, 'config', `node${i}.yaml`), 'utf8').replace(
      /\b(800|638)([123])\b/g,
      (_m, base: string, n: string) => String(ports[Number(n) - 1 + (base === '638' ? 3 : 0)]),
    );
    writeFileSync(join(configDir, `node${i}.yaml`), text);
  }
  const env = {
    ...process.env,
    KV_CONFIG_DIR: configDir,
    KV_LOG_DIR: join(dir, 'logs'),
    KV_PID_DIR: join(dir, 'pids'),
  };
  const script = (name: string) =>
    run('bash', [join(ROOT, 'scripts', name)], { env, cwd: dir, timeoutMs: 90_000 });
  const start = await script('start_cluster.sh');
  started.push(...startedPids(start.stdout));
  assert.equal(start.code, 0, start.stdout + start.stderr);
  assert.match(start.stdout, /cluster up: node1, node2, node3/);
  const pids = [1, 2, 3].map((i) => Number(readFileSync(join(dir, 'pids', `node${i}.pid`), 'utf8')));
  assert.deepEqual([...pids].sort(), [...started].sort());
  for (const pid of pids) assert.ok(processAlive(pid));
  assert.ok(existsSync(join(dir, 'logs', 'node1.log')));

  const again = await script('start_cluster.sh');
  assert.equal(again.code, 0);
  assert.match(again.stdout, /node1: already running/);

  const check = await script('test_cluster.sh');
  assert.equal(check.code, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /(\d+) passed, 0 failed/);
  assert.doesNotMatch(check.stdout, /^FAIL/m);

  const stop = await script('stop_cluster.sh');
  assert.equal(stop.code, 0, stop.stdout + stop.stderr);
  assert.match(stop.stdout, /node1: stopped/);
  for (const pid of pids) assert.equal(processAlive(pid), false, 'the node process is gone');
  for (let i = 1; i <= 3; i++) assert.equal(existsSync(join(dir, 'pids', `node${i}.pid`)), false);
  assert.match(readFileSync(join(dir, 'logs', 'node2.log'), 'utf8'), /"msg":"stopped"/);

  // A bad configuration is refused before anything starts, with the problem named.
  writeFileSync(join(configDir, 'node1.yaml'), 'node_id: node1\naddress: ":x"\n');
  const bad = await script('start_cluster.sh');
  started.push(...startedPids(bad.stdout));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /address: expected an address to listen on/);
  for (let i = 1; i <= 3; i++) assert.equal(existsSync(join(dir, 'pids', `node${i}.pid`)), false);
  // The nodes that did start were stopped again: nothing is left half-running.
  const others = startedPids(bad.stdout);
  assert.equal(others.length, 3);
  await waitFor(
    'the nodes started by the failed run to exit',
    () => others.every((pid) => !processAlive(pid)),
    15_000,
  );
});
