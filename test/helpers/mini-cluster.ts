/**
 * MiniCluster: a real Strata cluster for integration tests — masters and workers as child
 * processes of the compiled `strata` binary, each with its own config file, free loopback ports
 * and temp directories, torn down when the test ends. Nodes can be killed and restarted with the
 * same identity (ports, directories) to test crashes and recovery.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePort } from './ports.js';
import { startStrata } from './process.js';
import type { Proc } from './process.js';
import { tempDir } from './tmp.js';
import { GiveUp, waitFor } from './wait.js';

/** How many times a node that lost its port to another process is started on new ports. */
const PORT_CLASH_ATTEMPTS = 3;
/** One /ready probe; the wait polls again after it. */
const READY_PROBE_TIMEOUT_MS = 2_000;
const ADDRESS_IN_USE = /EADDRINUSE|address already in use/;

/** A node exited because its port was taken (see #startWithFreshPortsOnClash). */
class PortClash extends GiveUp {
  override name = 'PortClash';
}

export interface MiniClusterOptions {
  masters?: number;
  workers?: number;
  clusterId?: string;
  /** data_dir entries of worker i (default: one DISK tier in its temp dir). `{dir}` expands to the worker's dir. */
  workerTiers?: (i: number) => string[];
  /** Extra TOML appended to every node's config (sections must not repeat the generated ones' keys). */
  extraToml?: string;
  /** Extra lines inside [master], [worker], [client]. */
  masterToml?: string;
  workerToml?: string;
  clientToml?: string;
  env?: Record<string, string>;
  /** Echo node output to stderr (debugging). */
  echo?: boolean;
  /** Do not wait for readiness (for tests of failing starts). */
  noWait?: boolean;
}

export interface NodeHandle {
  role: 'master' | 'worker';
  index: number;
  dir: string;
  confPath: string;
  rpcPort: number;
  webPort: number;
  proc: Proc | undefined;
}

type Ctx = Pick<TestContext, 'after'>;

export class MiniCluster {
  readonly dir: string;
  readonly masters: NodeHandle[] = [];
  readonly workers: NodeHandle[] = [];
  /** A config file for clients (CLI `--conf`, SDK) listing every master. */
  readonly clientConfPath: string;
  readonly #opts: MiniClusterOptions;

  private constructor(dir: string, opts: MiniClusterOptions) {
    this.dir = dir;
    this.#opts = opts;
    this.clientConfPath = join(dir, 'client.toml');
  }

  static async start(t: Ctx, opts: MiniClusterOptions = {}): Promise<MiniCluster> {
    const c = new MiniCluster(tempDir(t, 'strata-mini-'), opts);
    for (let i = 0; i < (opts.masters ?? 1); i++) c.masters.push(await c.#node('master', i));
    for (let i = 0; i < (opts.workers ?? 1); i++) c.workers.push(await c.#node('worker', i));
    c.#writeConfigs();
    t.after(() => c.stop());
    if (opts.noWait === true) {
      for (const n of [...c.masters, ...c.workers]) c.#spawn(n);
      return c;
    }
    // Every config names every master, so a master whose port was taken moves them all.
    await c.#startWithFreshPortsOnClash(c.masters, () => c.masters);
    await c.#startWithFreshPortsOnClash(c.workers, (clashed) => clashed);
    return c;
  }

  /**
   * Spawns `nodes` and waits until each is ready. Ports are picked and reserved by
   * test/helpers/ports.ts, but a process outside the tests can still take one between the pick
   * and the node's bind; a node that exits on EADDRINUSE is started again on new ports
   * (`movers(clashed)` are the nodes that get new ports and restart) instead of failing the test.
   */
  async #startWithFreshPortsOnClash(
    nodes: NodeHandle[],
    movers: (clashed: NodeHandle[]) => NodeHandle[],
  ): Promise<void> {
    let pending = nodes;
    for (let attempt = 1; ; attempt++) {
      for (const n of pending) this.#spawn(n);
      const clashed: NodeHandle[] = [];
      for (const n of pending) {
        try {
          await this.waitReady(n);
        } catch (err) {
          if (!(err instanceof PortClash) || attempt === PORT_CLASH_ATTEMPTS) throw err;
          clashed.push(n);
        }
      }
      if (clashed.length === 0) return;
      pending = movers(clashed);
      await Promise.all(pending.map((n) => this.stopNode(n)));
      for (const n of pending) {
        n.rpcPort = await freePort();
        n.webPort = await freePort();
      }
      this.#writeConfigs();
    }
  }

  /** "127.0.0.1:p1,127.0.0.1:p2": for `--master`. */
  get masterAddrs(): string {
    return this.masters.map((m) => `127.0.0.1:${m.rpcPort}`).join(',');
  }

  get clusterId(): string {
    return this.#opts.clusterId ?? 'mini';
  }

  async #node(role: 'master' | 'worker', index: number): Promise<NodeHandle> {
    const dir = join(this.dir, `${role}-${index}`);
    mkdirSync(dir, { recursive: true });
    return {
      role,
      index,
      dir,
      confPath: join(dir, 'strata.toml'),
      rpcPort: await freePort(),
      webPort: await freePort(),
      proc: undefined,
    };
  }

  #writeConfigs(): void {
    const o = this.#opts;
    const addrs = this.masters
      .map((m) => `[[client.master_addrs]]\nhostname = "127.0.0.1"\nport = ${m.rpcPort}\n`)
      .join('\n');
    const client = `[client]\nhostname = "127.0.0.1"\n${o.clientToml ?? ''}\n`;
    const common = `cluster_id = "${this.clusterId}"\n\n[log]\nlevel = "INFO"\nlog_dir = "stderr"\n\n${addrs}\n${client}\n`;
    writeFileSync(this.clientConfPath, common + (o.extraToml ?? ''));
    for (const m of this.masters) {
      const text = `${common}[master]\nhostname = "127.0.0.1"\nbind_host = "127.0.0.1"\nrpc_port = ${m.rpcPort}\nweb_port = ${m.webPort}\nmeta_dir = "${join(m.dir, 'meta')}"\n${o.masterToml ?? ''}\n${o.extraToml ?? ''}`;
      writeFileSync(m.confPath, text);
    }
    for (const w of this.workers) {
      const tiers = (o.workerTiers?.(w.index) ?? [`[DISK]${join(w.dir, 'data')}`]).map((s) =>
        s.replaceAll('{dir}', w.dir),
      );
      const text = `${common}[worker]\nhostname = "127.0.0.1"\nbind_host = "127.0.0.1"\nrpc_port = ${w.rpcPort}\nweb_port = ${w.webPort}\ndata_dir = ${JSON.stringify(tiers)}\n${o.workerToml ?? ''}\n${o.extraToml ?? ''}`;
      writeFileSync(w.confPath, text);
    }
  }

  #spawn(n: NodeHandle): Proc {
    const env = { ...process.env, ...this.#opts.env };
    delete env.STRATA_CONF_FILE;
    n.proc = startStrata([n.role, '--conf', n.confPath], { env, echo: this.#opts.echo === true });
    return n.proc;
  }

  /**
   * Polls the node's /ready until it answers 200. The deadline is generous because a master
   * restarted after SIGKILL replays its write-ahead log, and on a loaded 2-core machine that took
   * more than 20 s; a node that exits fails the wait at once (GiveUp; PortClash when its port
   * was taken).
   */
  async waitReady(n: NodeHandle, timeoutMs = 60_000): Promise<void> {
    await waitFor(
      `${n.role}-${n.index} ready on :${n.webPort}`,
      async () => {
        const p = n.proc;
        const child = p?.child;
        if (
          p !== undefined &&
          child !== undefined &&
          (child.exitCode !== null || child.signalCode !== null)
        ) {
          const stderr = p.stderr.slice(-4000);
          const why = `${n.role}-${n.index} exited with ${child.exitCode ?? child.signalCode}\n${stderr}`;
          throw ADDRESS_IN_USE.test(stderr) ? new PortClash(why) : new GiveUp(why);
        }
        // Bounded: whatever holds the port may accept and never answer.
        const res = await fetch(`http://127.0.0.1:${n.webPort}/ready`, {
          signal: AbortSignal.timeout(READY_PROBE_TIMEOUT_MS),
        }).catch(() => undefined);
        return res?.status === 200;
      },
      timeoutMs,
      50,
    );
  }

  /** Stops a node (SIGTERM = graceful, SIGKILL = crash) and waits for it to exit. */
  async stopNode(
    n: NodeHandle,
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<number | NodeJS.Signals | undefined> {
    const p = n.proc;
    if (p === undefined) return undefined;
    const code = await p.stop(signal);
    n.proc = undefined;
    return code;
  }

  /** Starts a stopped node again with the same ports and directories. */
  async restartNode(n: NodeHandle, wait = true): Promise<void> {
    if (n.proc !== undefined) await this.stopNode(n);
    this.#spawn(n);
    if (wait) await this.waitReady(n);
  }

  /** Adds and starts a new worker. */
  async addWorker(): Promise<NodeHandle> {
    const w = await this.#node('worker', this.workers.length);
    this.workers.push(w);
    this.#writeConfigs();
    this.#spawn(w);
    await this.waitReady(w);
    return w;
  }

  async stop(): Promise<void> {
    const all = [...this.workers, ...this.masters];
    await Promise.all(all.map((n) => this.stopNode(n, 'SIGTERM').catch(() => undefined)));
  }
}
