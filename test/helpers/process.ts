/**
 * Child processes for tests: the real `strata` binary (compiled JS) or any program, with output
 * captured, a readiness wait with a deadline, and a kill in `t.after` so nothing outlives a test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';

/** Absolute path of the compiled CLI entry. */
export const STRATA_BIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface Proc {
  child: ChildProcess;
  /** Everything written so far to stdout and stderr. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Waits until `pattern` appears in stdout or stderr. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Sends a signal and waits for the exit, escalating to SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | NodeJS.Signals>;
}

export interface StartOptions extends SpawnOptions {
  /** Registers a kill when the test ends. */
  t?: Pick<TestContext, 'after'>;
  /** Echo output to this process's stderr (debugging). */
  echo?: boolean;
}

export function startProcess(cmd: string, args: readonly string[], opts: StartOptions = {}): Proc {
  const { t, echo, ...spawnOpts } = opts;
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    if (echo === true) process.stderr.write(b);
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (b: Buffer) => {
    err += b.toString();
    if (echo === true) process.stderr.write(b);
    for (const l of listeners) l();
  });
  const exited = settled(child).then((code) => {
    for (const l of listeners) l();
    return code;
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const proc: Proc = {
    child,
    get stdout() {
      return out;
    },
    get stderr() {
      return err;
    },
    exited,
    waitForOutput(pattern, timeoutMs = 15_000) {
      const test = (): boolean =>
        typeof pattern === 'string' ? (out + err).includes(pattern) : pattern.test(out + err);
      return new Promise<void>((resolve, reject) => {
        if (test()) {
          resolve();
          return;
        }
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${String(pattern)} from ${cmd}\n--- stdout\n${out}\n--- stderr\n${err}`,
            ),
          );
        }, timeoutMs);
        const check = (): void => {
          if (test()) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve();
          } else if (done) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(
              new Error(
                `${cmd} exited before printing ${String(pattern)}\n--- stdout\n${out}\n--- stderr\n${err}`,
              ),
            );
          }
        };
        listeners.add(check);
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (done) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  t?.after(async () => {
    if (!done) await proc.stop('SIGKILL', 1000);
  });
  return proc;
}

/** Starts `strata <args>` from the compiled tree. */
export function startStrata(args: readonly string[], opts: StartOptions = {}): Proc {
  return startProcess(process.execPath, [...STRATA_NODE_FLAGS, STRATA_BIN, ...args], opts);
}

export interface RunResult {
  code: number | NodeJS.Signals;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion with a deadline. */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string | Buffer } = {},
): Promise<RunResult> {
  const { timeoutMs = 60_000, input, ...spawnOpts } = opts;
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  if (input !== undefined) child.stdin?.end(input);
  else child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await settled(child);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Resolves with a child's exit code (or signal name) once its output is all read. Node emits
 * 'exit' as soon as the process ends, possibly before the last bytes of its stdout are read from
 * the pipe: on a loaded machine a `sha256sum` was seen to "exit 0 with no output". 'close' comes
 * after both pipes end. A grandchild that keeps the pipes open is waited for `drainMs` at most.
 */
function settled(child: ChildProcess, drainMs = 5_000): Promise<number | NodeJS.Signals> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    child.once('exit', (c, s) => {
      timer = setTimeout(() => resolve(c ?? s ?? 1), drainMs);
    });
    child.once('close', (c, s) => {
      clearTimeout(timer);
      resolve(c ?? s ?? 1);
    });
  });
}

/** Runs `strata <args>` to completion. */
export function runStrata(
  args: readonly string[],
  opts: SpawnOptions & { timeoutMs?: number; input?: string | Buffer } = {},
): Promise<RunResult> {
  return run(process.execPath, [...STRATA_NODE_FLAGS, STRATA_BIN, ...args], opts);
}
