import type { Command } from 'commander';
import { request } from 'undici';
import { StrataError, UsageError } from '../../common/errors.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { EXIT_FAILED } from '../exit-codes.js';

/**
 * `strata kv-client`: the seed's `cache-client` demo. It writes keys through every node in turn,
 * reads each back through a different node, shows which nodes own them, deletes one and checks it
 * is gone, and prints each step; it exits 1 when any check fails and 3 when no node answers.
 */
interface ClientOptions {
  nodes: string;
  keys: string;
  prefix: string;
  timeout: string;
}

interface Check {
  step: string;
  ok: boolean;
  detail: string;
}

const DEFAULT_NODES = 'localhost:8001,localhost:8002,localhost:8003';

export function register(program: Command): void {
  program
    .command('kv-client')
    .description(
      "demo client for a KV cluster (the seed's cache-client): set, get, locate and delete keys through every node",
    )
    .option('--nodes <host:port,...>', 'KV nodes to talk to', DEFAULT_NODES)
    .option('--keys <n>', 'how many keys to write', '6')
    .option('--prefix <text>', 'key prefix', 'demo')
    .option('--timeout <ms>', 'deadline per request in milliseconds', '3000')
    .action(
      action(async (opts: ClientOptions, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const nodes = opts.nodes
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        if (nodes.length === 0 || nodes.some((n) => !/^[^:\s]+:\d{1,5}$/.test(n))) {
          throw new UsageError(
            `--nodes: expected host:port[,host:port...] (got ${JSON.stringify(opts.nodes)})`,
          );
        }
        const count = Number(opts.keys);
        if (!Number.isInteger(count) || count < 1 || count > 10_000)
          throw new UsageError(`--keys: expected 1-10000 (got ${opts.keys})`);
        const timeoutMs = Number(opts.timeout);
        if (!Number.isInteger(timeoutMs) || timeoutMs < 10)
          throw new UsageError(`--timeout: expected milliseconds ≥ 10 (got ${opts.timeout})`);

        const say = (line: string): void => {
          if (!json) println(line);
        };
        const checks: Check[] = [];
        const check = (step: string, ok: boolean, detail: string): void => {
          checks.push({ step, ok, detail });
          say(`${ok ? '  ✓' : '  ✗'} ${step}: ${detail}`);
        };
        const call = (node: string, method: 'GET' | 'PUT' | 'DELETE', path: string, body?: unknown) =>
          http(node, method, path, timeoutMs, body);

        say(`== health (${nodes.length} node${nodes.length === 1 ? '' : 's'})`);
        const healthy: string[] = [];
        for (const n of nodes) {
          try {
            const r = await call(n, 'GET', '/api/v1/health');
            const b = r.body as { node_id?: string; state?: string; keys?: number };
            check(
              `health ${n}`,
              r.status === 200,
              `${r.status} ${b.node_id ?? '?'} ${b.state ?? '?'} keys=${b.keys ?? '?'}`,
            );
            if (r.status === 200) healthy.push(n);
          } catch (err) {
            check(`health ${n}`, false, (err as Error).message.replace(`${n}: `, ''));
          }
        }
        if (healthy.length === 0)
          throw new StrataError('STRATA_UNAVAILABLE', `no KV node answered (${nodes.join(', ')})`);

        say('== cluster');
        const info = await call(healthy[0] as string, 'GET', '/admin/cluster');
        const cluster = info.body as {
          nodes?: { id: string; state: string; ownership: number; keys: number | null }[];
          replicas?: number;
        };
        for (const n of cluster.nodes ?? []) {
          say(
            `  ${n.id.padEnd(12)} ${n.state.padEnd(8)} ownership ${(n.ownership * 100).toFixed(1)}%  keys ${n.keys ?? '?'}`,
          );
        }

        say(`== set ${count} keys, each through the next node`);
        const written: { key: string; value: unknown; via: string }[] = [];
        for (let i = 0; i < count; i++) {
          const via = healthy[i % healthy.length] as string;
          const key = `${opts.prefix}:${i}`;
          const value = i % 2 === 0 ? `hello ${i}` : { n: i, tags: ['demo', `k${i}`] };
          const r = await call(via, 'PUT', `/api/v1/cache/${encodeURIComponent(key)}`, { value });
          check(`SET ${key} via ${via}`, r.status === 200, `${r.status}`);
          if (r.status === 200) written.push({ key, value, via });
        }

        say('== get every key through another node');
        for (const [i, w] of written.entries()) {
          const via = healthy[(i + 1) % healthy.length] as string;
          const r = await call(via, 'GET', `/api/v1/cache/${encodeURIComponent(w.key)}`);
          const got = (r.body as { value?: unknown }).value;
          const same = r.status === 200 && JSON.stringify(got) === JSON.stringify(w.value);
          check(`GET ${w.key} via ${via}`, same, `${r.status} ${JSON.stringify(got)}`);
        }

        say('== where the keys live');
        for (const w of written) {
          const r = await call(healthy[0] as string, 'GET', `/admin/locate?key=${encodeURIComponent(w.key)}`);
          const b = r.body as { home?: string[]; alive?: string[] };
          say(`  ${w.key.padEnd(16)} owners ${(b.alive ?? []).join(', ')}`);
        }

        if (written.length > 0) {
          say('== delete');
          const victim = written[0] as { key: string };
          const del = await call(
            healthy[healthy.length - 1] as string,
            'DELETE',
            `/api/v1/cache/${encodeURIComponent(victim.key)}`,
          );
          check(`DELETE ${victim.key}`, del.status === 200, `${del.status}`);
          const after = await call(
            healthy[0] as string,
            'GET',
            `/api/v1/cache/${encodeURIComponent(victim.key)}`,
          );
          check(`GET ${victim.key} after delete`, after.status === 404, `${after.status}`);
        }

        const failed = checks.filter((c) => !c.ok).length;
        if (json) printJson({ ok: failed === 0, checks });
        else println(`== ${checks.length - failed}/${checks.length} checks passed`);
        if (failed > 0) process.exitCode = EXIT_FAILED;
      }),
    );
}

async function http(
  node: string,
  method: 'GET' | 'PUT' | 'DELETE',
  path: string,
  timeoutMs: number,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  let res;
  try {
    res = await request(`http://${node}${path}`, {
      method,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
  } catch (err) {
    throw new StrataError('STRATA_CONNECTION', `${node}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.body.text();
  try {
    return { status: res.statusCode, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.statusCode, body: text };
  }
}
