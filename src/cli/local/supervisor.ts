/**
 * Child processes of `strata local`: each role runs as its own `strata master|worker` process
 * (closer to production, and one crash does not take the others down), with its output appended
 * to a log file. A role is up when its `/ready` answers 200. A child that exits on its own is
 * restarted with backoff, a bounded number of times. Children get their own process group, so a
 * terminal's Ctrl-C reaches only the supervisor, which then stops them in order (workers first,
 * then the master), each with one SIGTERM and a grace period before SIGKILL.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { StrataError } from '../../common/errors.js';
import { STRATA_NODE_FLAGS } from '../../common/runtime.js';

/** How long a role may take to answer /ready after it starts. */
export const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 100;
/** Restarts of one role within RESTART_WINDOW_MS before it is left down. */
export const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 5 * 60_000;
const RESTART_BACKOFF_FIRST_MS = 1000;
const RESTART_BACKOFF_MAX_MS = 30_000;
/** Lines of a role's log shown when it fails to start. */
const LOG_TAIL_LINES = 25;

export interface ChildSpec {
  name: string;
  args: string[];
  logPath: string;
  webPort: number;
  host: string;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess;
  exited: Promise<number | NodeJS.Signals>;
  stopping: boolean;
  restarts: number[];
  timer: NodeJS.Timeout | undefined;
}

export interface SupervisorOptions {
  /** The `strata` entry script. */
  bin: string;
  env: NodeJS.ProcessEnv;
  /** Where the supervisor says what happens (stderr of `strata local`). */
  say: (line: string) => void;
  /** Called whenever the set of child pids changes (to keep the pid file current). */
  onPids?: (pids: number[]) => void;
}

export class Supervisor {
  readonly #opts: SupervisorOptions;
  readonly #running = new Map<string, Running>();
  #stopping = false;

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
  }

  pids(): number[] {
    return [...this.#running.values()].map((r) => r.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Starts a role and waits until it is ready; throws (with its log tail) when it is not. */
  async start(spec: ChildSpec): Promise<void> {
    const r = this.#spawn(spec, []);
    await this.#waitReady(r);
  }

  /** Stops the named roles in order (all when none named). Idempotent. */
  async stop(order: readonly string[], graceMs: number): Promise<void> {
    this.#stopping = true;
    const names = order.length > 0 ? order : [...this.#running.keys()];
    for (const name of names) {
      const r = this.#running.get(name);
      if (r === undefined) continue;
      if (r.timer !== undefined) clearTimeout(r.timer);
      r.stopping = true;
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGTERM');
        const t = setTimeout(() => {
          this.#opts.say(`${name} did not stop within ${graceMs} ms: killing it`);
          r.child.kill('SIGKILL');
        }, graceMs);
        await r.exited;
        clearTimeout(t);
      }
      this.#running.delete(name);
      this.#opts.onPids?.(this.pids());
    }
  }

  /** Kills every child at once (second Ctrl-C). */
  killAll(): void {
    this.#stopping = true;
    for (const r of this.#running.values()) {
      if (r.timer !== undefined) clearTimeout(r.timer);
      r.stopping = true;
      r.child.kill('SIGKILL');
    }
  }

  #spawn(spec: ChildSpec, restarts: number[]): Running {
    mkdirSync(dirname(spec.logPath), { recursive: true });
    const fd = openSync(spec.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...STRATA_NODE_FLAGS, this.#opts.bin, ...spec.args], {
        stdio: ['ignore', fd, fd],
        detached: true,
        env: this.#opts.env,
      });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<number | NodeJS.Signals>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 1));
      child.once('error', () => resolve(1));
    });
    const r: Running = { spec, child, exited, stopping: false, restarts, timer: undefined };
    this.#running.set(spec.name, r);
    this.#opts.onPids?.(this.pids());
    void exited.then((how) => this.#onExit(r, how));
    return r;
  }

  #onExit(r: Running, how: number | NodeJS.Signals): void {
    if (r.stopping || this.#stopping || this.#running.get(r.spec.name) !== r) return;
    const now = Date.now();
    const recent = r.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (recent.length >= MAX_RESTARTS) {
      this.#opts.say(
        `${r.spec.name} exited (${String(how)}) ${MAX_RESTARTS} times within ${RESTART_WINDOW_MS / 60_000} minutes: leaving it down (log: ${r.spec.logPath})`,
      );
      this.#running.delete(r.spec.name);
      this.#opts.onPids?.(this.pids());
      return;
    }
    const delay = Math.min(RESTART_BACKOFF_MAX_MS, RESTART_BACKOFF_FIRST_MS * 2 ** recent.length);
    this.#opts.say(
      `${r.spec.name} exited unexpectedly (${String(how)}); restarting in ${delay} ms (log: ${r.spec.logPath})`,
    );
    r.timer = setTimeout(() => {
      if (this.#stopping) return;
      const next = this.#spawn(r.spec, [...recent, now]);
      this.#waitReady(next).then(
        () => this.#opts.say(`${r.spec.name} is back`),
        (err: unknown) => this.#opts.say(`${r.spec.name} did not come back: ${(err as Error).message}`),
      );
    }, delay);
  }

  async #waitReady(r: Running): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const url = `http://${r.spec.host}:${r.spec.webPort}/ready`;
    for (;;) {
      if (r.child.exitCode !== null || r.child.signalCode !== null) {
        throw new StrataError(
          'STRATA_LOCAL_START',
          `${r.spec.name} exited while starting (${String(r.child.exitCode ?? r.child.signalCode)}); last lines of ${r.spec.logPath}:\n${logTail(r.spec.logPath)}`,
        );
      }
      const ok = await fetch(url, { signal: AbortSignal.timeout(2000) })
        .then((res) => res.status === 200)
        .catch(() => false);
      if (ok) return;
      if (Date.now() > deadline) {
        throw new StrataError(
          'STRATA_LOCAL_START',
          `${r.spec.name} was not ready within ${READY_TIMEOUT_MS} ms (${url}); last lines of ${r.spec.logPath}:\n${logTail(r.spec.logPath)}`,
        );
      }
      await new Promise((res) => setTimeout(res, READY_POLL_MS));
    }
  }
}

export function logTail(path: string, lines = LOG_TAIL_LINES): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text
      .split('\n')
      .filter((l) => l !== '')
      .slice(-lines)
      .map((l) => `  ${l}`)
      .join('\n');
  } catch {
    return '  (no log)';
  }
}
