/**
 * An HA cluster for tests: a real etcd (test/helpers/etcd.ts), masters on `meta_store = "etcd"`
 * with a short lease, and workers, all child processes on loopback (MiniCluster), plus helpers
 * to find the leader, kill it and time the takeover, and RPC clients that follow the leader.
 */
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import type { ClientSettings } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MasterCalls } from '../../src/protocol/index.js';
import { RpcClient } from '../../src/rpc/index.js';
import type { RpcClientOptions } from '../../src/rpc/index.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import type { NodeHandle } from '../helpers/mini-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Ctx = Pick<TestContext, 'after'>;

export interface HaClusterOptions {
  masters?: number;
  workers?: number;
  /**
   * `etcd.lease_ttl`, 2 s unless told: short to keep failovers quick, long enough that a leader
   * starved of CPU on a loaded machine keeps its lease (with 1 s, leaders were deposed on their
   * own, and tests that address the first leader found it gone).
   */
  leaseTtl?: string;
  etcd?: EtcdCluster;
  echo?: boolean;
  masterToml?: string;
}

export class HaCluster {
  readonly etcd: EtcdCluster;
  readonly mini: MiniCluster;
  /** The cluster's keys in etcd: `<etcd.prefix>/<cluster_id>/` (meta/, election/ below). */
  readonly etcdRoot: string;
  readonly #clients: { close(): Promise<void> }[] = [];

  private constructor(etcd: EtcdCluster, mini: MiniCluster, etcdRoot: string) {
    this.etcd = etcd;
    this.mini = mini;
    this.etcdRoot = etcdRoot;
  }

  static async start(t: Ctx, opts: HaClusterOptions = {}): Promise<HaCluster> {
    const etcd = opts.etcd ?? (await EtcdCluster.start(t));
    const prefix = `/strata-ha-${randomBytes(4).toString('hex')}`;
    const endpoints = etcd.members.map((m) => `"127.0.0.1:${m.clientPort}"`).join(', ');
    const mini = await MiniCluster.start(t, {
      masters: opts.masters ?? 3,
      workers: opts.workers ?? 0,
      masterToml: `meta_store = "etcd"\nheartbeat_interval = "200ms"\nworker_blacklist_interval = "3s"\nworker_lost_interval = "20s"\n${opts.masterToml ?? ''}`,
      extraToml: `\n[etcd]\nendpoints = [${endpoints}]\nprefix = "${prefix}"\nlease_ttl = "${opts.leaseTtl ?? '2s'}"\n`,
      echo: opts.echo === true,
    });
    const c = new HaCluster(etcd, mini, `${prefix}/${mini.clusterId}/`);
    t.after(async () => {
      for (const cl of c.#clients) await cl.close();
    });
    return c;
  }

  get masters(): NodeHandle[] {
    return this.mini.masters;
  }

  /** The master answering 200 on /leader, if one does now (a frozen one is not waited for). */
  async leaderNow(): Promise<NodeHandle | undefined> {
    const probes = this.masters.map(async (m) => {
      if (m.proc === undefined) return undefined;
      const res = await fetch(`http://127.0.0.1:${m.webPort}/leader`, {
        signal: AbortSignal.timeout(1000),
      }).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status !== 200) return undefined;
      return m;
    });
    return new Promise((resolve) => {
      let left = probes.length;
      if (left === 0) resolve(undefined);
      for (const p of probes) {
        void p.then((m) => {
          left--;
          if (m !== undefined) resolve(m);
          else if (left === 0) resolve(undefined);
        });
      }
    });
  }

  /** Waits for a leader (other than `not`, when given). */
  async waitLeader(not?: NodeHandle, timeoutMs = 20_000): Promise<NodeHandle> {
    return waitFor(
      'a leader',
      async () => {
        const l = await this.leaderNow();
        return l !== undefined && l !== not ? l : undefined;
      },
      timeoutMs,
      25,
    );
  }

  /** An RPC client over every master (it follows "not leader" hints and fails over). */
  client(opts: Partial<RpcClientOptions> = {}): RpcClient {
    const c = new RpcClient({
      addresses: this.masters.map((m) => ({ host: '127.0.0.1', port: m.rpcPort })),
      deadlineMs: 20_000,
      retryMax: 200,
      retryBaseDelayMs: 20,
      retryMaxDelayMs: 250,
      connectTimeoutMs: 1000,
      reconnectBaseDelayMs: 50,
      reconnectMaxDelayMs: 300,
      // A frozen or cut-off leader keeps its connections open: a short keepalive is how the
      // client notices and moves on (a killed one resets them, which it notices at once).
      keepaliveIntervalMs: 500,
      keepaliveTimeoutMs: 1000,
      ...opts,
    });
    this.#clients.push(c);
    return c;
  }

  /**
   * A client library instance (src/client) from the cluster's client config: every master in
   * `client.master_addrs` and default retry settings, so it must find the leader on its own.
   */
  fileSystem(settings: Partial<ClientSettings> = {}): FileSystem {
    const config = loadConfig({ path: this.mini.clientConfPath, env: {} }).config;
    const fs = FileSystem.create({ config, settings });
    this.#clients.push(fs);
    return fs;
  }

  /** Live workers as the leader sees them. */
  async liveWorkers(client: RpcClient): Promise<number> {
    const info = await client.call(MasterCalls.GetClusterInfo, {});
    return info.workers.live;
  }

  /** Prometheus text of a master's /metrics. */
  async metrics(m: NodeHandle): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${m.webPort}/metrics`);
    return res.text();
  }
}
