// The README's quick start as a new user runs it: `git clone` the repository into a temp dir,
// `npm ci`, `npm start` (a local cluster on the default ports), `npx strata fs put` / `cat` from
// another "terminal", Ctrl-C, start again: the data is still there. Skips locally when the
// default ports are taken (another cluster running); fails under CI.
import { readFileSync, rmSync } from 'node:fs';
import { delimiter, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IN_CI } from '../helpers/ci.js';
import { run, startProcess } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { localMemRoot, portFree } from '../../src/cli/local/layout.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_PORTS = [8995, 9000, 8997, 9001, 8998, 9002];

async function skipReason(): Promise<string | undefined> {
  const taken: number[] = [];
  for (const p of DEFAULT_PORTS) if (!(await portFree(p))) taken.push(p);
  if (taken.length === 0) return undefined;
  const reason = `default ports in use here (${taken.join(', ')}): another cluster is running`;
  if (IN_CI) throw new Error(`CI=true and ${reason}`);
  return reason;
}

const skip = await skipReason();

test(
  'README quick start from a clean clone: npm ci, npm start, put/cat, Ctrl-C, restart',
  { skip, timeout: 1_200_000 },
  async (t) => {
    const dir = tempDir(t, 'strata-clone-');
    const clone = join(dir, 'strata');
    // The MEM tier lives on /dev/shm, outside the temporary clone: remove it too.
    t.after(() => rmSync(localMemRoot(join(clone, 'strata-data')), { recursive: true, force: true }));
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['STRATA_CONF_FILE', 'STRATA_MASTER_ENDPOINTS', 'STRATA_HOST_ID', 'STRATA_TEST'])
      delete env[k];
    // A new user's shell: under `npm test` the PATH starts with node_modules/.bin, where a dev
    // dependency (http-cache-tests) installs an old npm 6 that cannot read our lockfile.
    env.PATH = (env.PATH ?? '')
      .split(delimiter)
      .filter((d) => !d.includes(`node_modules${sep}.bin`) && !d.includes('node-gyp-bin'))
      .join(delimiter);
    const git = await run('git', ['clone', '--quiet', REPO, clone], { timeoutMs: 60_000 });
    assert.equal(git.code, 0, git.stderr);
    const ci = await run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: clone,
      env,
      // Its `prepare` compiles the whole tree: over 5 minutes was seen on a loaded 2-core host.
      timeoutMs: 600_000,
    });
    assert.equal(ci.code, 0, `npm ci failed:\n${ci.stderr.slice(-3000)}`);

    const procs: Proc[] = [];
    t.after(async () => {
      for (const p of procs)
        if (p.child.exitCode === null && p.child.pid !== undefined) killGroup(p.child.pid, 'SIGKILL');
      killLeftovers(join(clone, 'strata-data'));
    });
    const start = async (): Promise<Proc> => {
      // Its own process group, so Ctrl-C can be sent to the group as a terminal does.
      const p = startProcess('npm', ['start'], { cwd: clone, env, detached: true });
      procs.push(p);
      await p.waitForOutput('Press Ctrl-C to stop', 300_000);
      return p;
    };
    const ctrlC = async (p: Proc): Promise<void> => {
      killGroup(p.child.pid as number, 'SIGINT');
      await Promise.race([
        p.exited,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`npm start did not stop:\n${p.stderr}`)), 60_000),
        ),
      ]);
      // Every role is down: the ports are free again.
      await waitFor(
        'the default ports to be free',
        async () => (await skipReason()) === undefined,
        20_000,
        100,
      );
    };
    const npx = (args: string[]) => run('npx', ['strata', ...args], { cwd: clone, env, timeoutMs: 60_000 });

    const first = await start();
    assert.match(first.stdout, /master\s+rpc 127\.0\.0\.1:8995/);
    assert.match(first.stdout, /worker-1\s+rpc 127\.0\.0\.1:8998/);
    const put = await npx(['fs', 'put', 'README.md', '/hello/README.md']);
    assert.equal(put.code, 0, put.stderr);
    const readme = readFileSync(join(clone, 'README.md'), 'utf8');
    const cat = await npx(['fs', 'cat', '/hello/README.md']);
    assert.equal(cat.code, 0, cat.stderr);
    assert.equal(cat.stdout, readme);
    await ctrlC(first);

    const second = await start();
    const again = await npx(['fs', 'cat', '/hello/README.md']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, readme, 'the data survived the restart');
    await ctrlC(second);
  },
);

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Roles of a strata local that did not stop (they run in their own process groups). */
function killLeftovers(dataDir: string): void {
  try {
    const rec = JSON.parse(readFileSync(join(dataDir, 'local.pid'), 'utf8')) as { children?: number[] };
    for (const pid of rec.children ?? []) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // no pid file: nothing left
  }
}
