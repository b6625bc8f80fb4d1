/**
 * Process helpers for benchmarks: find a tool, pick a free port, run a command to completion,
 * start a long-running server and stop it. Benchmarks print figures; they never assert.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer, connect } from 'node:net';
import { delimiter, join } from 'node:path';

export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Throws a one-line error naming the Debian package when a reference tool is missing. */
export function requireTool(name: string, debianPackage: string): string {
  const p = which(name);
  if (p === undefined) throw new Error(`${name} is not installed (apt-get install ${debianPackage})`);
  return p;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        reject(new Error('no port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

export interface RunResult {
  code: number | NodeJS.Signals;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  // 'close', not 'exit': the process can end before its last output is read from the pipe.
  const code = await new Promise<number | NodeJS.Signals>((resolve) =>
    child.on('close', (c, s) => resolve(c ?? s ?? 1)),
  );
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Runs a command and fails with its output when it does not exit 0. */
export async function runOk(cmd: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}\n${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

export interface Background {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a server process; `ready` is awaited (e.g. a port accepting connections). */
export async function startBackground(
  cmd: string,
  args: readonly string[],
  ready: (output: () => string) => Promise<void>,
  opts: SpawnOptions = {},
): Promise<Background> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const bg: Background = {
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await ready(() => out);
  } catch (err) {
    await bg.stop();
    throw err;
  }
  return bg;
}

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves once `pattern` appears in the process output. */
export async function waitForOutput(
  output: () => string,
  pattern: RegExp,
  timeoutMs = 10_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(output());
    if (m !== null) return m;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${String(pattern)}; output:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
