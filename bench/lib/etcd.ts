/** A one-member etcd for benchmarks: free ports, data on disk (real WAL sync cost), stopped after. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, requireTool, startBackground } from './proc.js';

export interface EtcdServer {
  endpoint: string;
  stop(): Promise<void>;
}

/** How long etcd may take to answer /health after starting. */
const ETCD_START_TIMEOUT_MS = 20_000;

export async function startEtcd(): Promise<EtcdServer> {
  const bin = requireTool('etcd', 'etcd-server');
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const bg = await startBackground(
    bin,
    [
      ...['--name', 'bench', '--data-dir', join(dir, 'data')],
      ...['--listen-client-urls', client, '--advertise-client-urls', client],
      ...['--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer],
      ...['--initial-cluster', `bench=${peer}`, '--log-level', 'warn'],
    ],
    async (output) => {
      const deadline = Date.now() + ETCD_START_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const res = await fetch(`${client}/health`).catch(() => undefined);
        if (res?.status === 200 && ((await res.json()) as { health?: string }).health === 'true') return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`etcd did not become healthy within ${ETCD_START_TIMEOUT_MS} ms\n${output()}`);
    },
  );
  return {
    endpoint: `127.0.0.1:${clientPort}`,
    async stop() {
      await bg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
