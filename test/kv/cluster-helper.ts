/**
 * Starts KV clusters for tests: N `strata kv` child processes on free loopback ports, one YAML
 * file each in a temp dir, fast health checks; waits until every node is ready and sees all
 * its peers up. Nodes can be killed, stopped and restarted by index.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { freePorts } from '../helpers/ports.js';
import { startStrata } from '../helpers/process.js';
import type { Proc } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

export interface KvTestNode {
  id: string;
  httpPort: number;
  respPort: number;
  configPath: string;
  base: string;
  proc: Proc;
}

export interface KvTestCluster {
  nodes: KvTestNode[];
  dir: string;
  /** Starts (again) node i and waits until it is ready. */
  start(i: number): Promise<KvTestNode>;
  /** Waits until every running node sees exactly the `up` node ids as up. */
  waitForView(up: readonly string[], timeoutMs?: number): Promise<void>;
}

export interface ClusterOptions {
  size: number;
  replicas?: number;
  /** Extra YAML lines appended to every node's file. */
  extra?: string;
  echo?: boolean;
}

type TC = Pick<TestContext, 'after'>;

export async function startKvCluster(t: TC, opts: ClusterOptions): Promise<KvTestCluster> {
  const dir = tempDir(t, 'strata-kv-');
  const ports = await freePorts(opts.size * 2);
  const ids = Array.from({ length: opts.size }, (_, i) => `node${i + 1}`);
  const clusterYaml = ids.map((id, i) => `  ${id}: "127.0.0.1:${ports[i] as number}"`).join('\n');
  const nodes: KvTestNode[] = ids.map((id, i) => {
    const httpPort = ports[i] as number;
    const respPort = ports[opts.size + i] as number;
    const configPath = join(dir, `${id}.yaml`);
    writeFileSync(
      configPath,
      [
        `node_id: "${id}"`,
        `address: "127.0.0.1:${httpPort}"`,
        'cluster_nodes:',
        clusterYaml,
        'cache_size: 100000',
        'virtual_nodes: 150',
        `replicas: ${opts.replicas ?? 1}`,
        `resp_address: "127.0.0.1:${respPort}"`,
        'health_check_interval: 150ms',
        'health_check_timeout: 300ms',
        'failure_threshold: 2',
        'request_timeout: 2s',
        'shutdown_grace: 5s',
        'log_level: info',
        opts.extra ?? '',
      ].join('\n'),
    );
    return {
      id,
      httpPort,
      respPort,
      configPath,
      base: `http://127.0.0.1:${httpPort}`,
      proc: undefined as unknown as Proc,
    };
  });

  const launch = (n: KvTestNode): void => {
    n.proc = startStrata(['kv', `-config=${n.configPath}`], {
      t,
      ...(opts.echo === true ? { echo: true } : {}),
    });
  };
  const ready = async (n: KvTestNode): Promise<void> => {
    await n.proc.waitForOutput('kv node ready', 20_000);
  };
  for (const n of nodes) launch(n);
  await Promise.all(nodes.map(ready));

  const cluster: KvTestCluster = {
    nodes,
    dir,
    async start(i) {
      const n = nodes[i] as KvTestNode;
      launch(n);
      await ready(n);
      return n;
    },
    async waitForView(up, timeoutMs = 15_000) {
      const want = [...up].sort().join(',');
      await waitFor(
        `every running node to see [${want}] up`,
        async () => {
          for (const n of nodes) {
            if (!up.includes(n.id)) continue;
            const info = (await getJson(`${n.base}/admin/cluster`)).body as {
              nodes: { id: string; state: string }[];
            };
            const seen = info.nodes
              .filter((x) => x.state === 'up')
              .map((x) => x.id)
              .sort()
              .join(',');
            if (seen !== want) return false;
          }
          return true;
        },
        timeoutMs,
      );
    },
  };
  await cluster.waitForView(ids);
  return cluster;
}

export async function getJson(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

export function put(
  base: string,
  key: string,
  body: unknown,
): Promise<{ status: number; body: unknown; text: string }> {
  return getJson(`${base}/api/v1/cache/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export function get(base: string, key: string): Promise<{ status: number; body: unknown; text: string }> {
  return getJson(`${base}/api/v1/cache/${encodeURIComponent(key)}`);
}

/** Keys this node holds locally (its own copy of everything), from a node-scope export. */
export async function localKeys(base: string): Promise<Map<string, unknown>> {
  const r = await getJson(`${base}/admin/export?scope=node`);
  const doc = r.body as { entries: { key: string; value: unknown }[] };
  return new Map(doc.entries.map((e) => [e.key, e.value]));
}
