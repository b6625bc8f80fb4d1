/**
 * A real etcd for tests: one member (or several, on loopback) on free ports, its data in a fresh
 * directory on tmpfs when there is one (etcd syncs its WAL at every commit; tmpfs keeps that cheap
 * on a shared machine), stopped and removed when the test ends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePorts } from './ports.js';
import { startProcess } from './process.js';
import type { Proc } from './process.js';
import { waitFor } from './wait.js';

export const ETCD_BIN = 'etcd';

export interface EtcdOptions {
  /** Members of the cluster (default 1). */
  members?: number;
  /** `--max-txn-ops` (etcd's default is 128; tests keep the default so the engine's splitting is exercised). */
  maxTxnOps?: number;
  /** Put the data directory on disk instead of tmpfs (benchmarks: real sync cost). */
  onDisk?: boolean;
  /** Echo etcd's output to stderr (debugging). */
  echo?: boolean;
  /**
   * Raft timing `[heartbeat ms, election timeout ms]`. A single member defaults to 50/500: etcd
   * refuses leases shorter than 1.5 election timeouts (rounded up to whole seconds), so this is
   * what lets tests use 1 s leases. Several members default to etcd's 100/1000.
   */
  raftTimingMs?: [number, number];
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc: Proc | undefined;
}

type Ctx = Pick<TestContext, 'after'>;

export class EtcdCluster {
  readonly members: EtcdMember[];
  readonly #opts: EtcdOptions;
  readonly #root: string;

  private constructor(root: string, members: EtcdMember[], opts: EtcdOptions) {
    this.#root = root;
    this.members = members;
    this.#opts = opts;
  }

  /** Starts the cluster and waits until every member answers /health. */
  static async start(t: Ctx | undefined, opts: EtcdOptions = {}): Promise<EtcdCluster> {
    const n = opts.members ?? 1;
    const base = opts.onDisk !== true && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const root = mkdtempSync(join(base, 'strata-etcd-'));
    const ports = await freePorts(2 * n);
    const members = Array.from({ length: n }, (_, i) => ({
      name: `m${i}`,
      clientPort: ports[2 * i] as number,
      peerPort: ports[2 * i + 1] as number,
      dataDir: join(root, `m${i}`),
      proc: undefined,
    }));
    const c = new EtcdCluster(root, members, opts);
    t?.after(() => c.stop());
    for (const m of members) c.#spawn(m, 'new');
    await c.waitHealthy();
    return c;
  }

  /** Client endpoints as `http://127.0.0.1:port`. */
  get endpoints(): string[] {
    return this.members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  #spawn(m: EtcdMember, state: 'new' | 'existing'): void {
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    const args = [
      '--name',
      m.name,
      '--data-dir',
      m.dataDir,
      '--listen-client-urls',
      `http://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls',
      `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls',
      `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster',
      cluster,
      '--initial-cluster-state',
      state,
      '--initial-cluster-token',
      `strata-test-${this.members[0]?.peerPort ?? 0}`,
      '--max-txn-ops',
      String(this.#opts.maxTxnOps ?? 128),
      '--heartbeat-interval',
      String(this.#timing()[0]),
      '--election-timeout',
      String(this.#timing()[1]),
      '--log-level',
      'warn',
      '--logger',
      'zap',
    ];
    m.proc = startProcess(ETCD_BIN, args, { echo: this.#opts.echo === true });
  }

  #timing(): [number, number] {
    return this.#opts.raftTimingMs ?? (this.members.length === 1 ? [50, 500] : [100, 1000]);
  }

  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    for (const m of this.members) {
      if (m.proc === undefined) continue;
      await waitFor(
        `etcd ${m.name} healthy on :${m.clientPort}`,
        async () => {
          if (m.proc !== undefined && m.proc.child.exitCode !== null)
            throw new Error(`etcd ${m.name} exited\n${m.proc.stderr.slice(-3000)}`);
          const res = await fetch(`http://127.0.0.1:${m.clientPort}/health`).catch(() => undefined);
          if (res === undefined || res.status !== 200) return false;
          const body = (await res.json()) as { health?: string };
          return body.health === 'true';
        },
        timeoutMs,
        50,
      );
    }
  }

  /** Stops one member (SIGKILL = crash). */
  async stopMember(m: EtcdMember, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = m.proc;
    m.proc = undefined;
    if (p !== undefined) await p.stop(signal, 5000);
  }

  /** Starts a stopped member again on its data directory. */
  async restartMember(m: EtcdMember): Promise<void> {
    if (m.proc !== undefined) return;
    this.#spawn(m, 'existing');
    await this.waitHealthy();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => this.stopMember(m, 'SIGTERM').catch(() => undefined)));
    if (process.env.STRATA_KEEP_TMP !== '1') rmSync(this.#root, { recursive: true, force: true });
  }
}
