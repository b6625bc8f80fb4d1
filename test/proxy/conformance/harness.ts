/**
 * Runs the http-tests/cache-tests suite (npm `http-cache-tests`) through `strata proxy`: the
 * suite's own origin handlers on a loopback port, the proxy (a real child process) in front of
 * it, and the suite's client against the proxy. Results are classified as the suite's own
 * report does (pass, required failure, optional failure, check, setup / dependency failure).
 *
 * The suite keeps its results in module state, so run it once per process.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startStrata } from '../../helpers/process.js';
import type { Proc } from '../../helpers/process.js';
import { freePorts } from '../../helpers/ports.js';

interface SuiteTest {
  id: string;
  name: string;
  kind?: 'required' | 'optimal' | 'check';
  depends_on?: string[];
  browser_only?: boolean;
}
interface Suite {
  id: string;
  name: string;
  tests: SuiteTest[];
}
type RawResult = true | [string, string];
type Handler = (segs: string[], req: IncomingMessage, res: ServerResponse) => void;

/**
 * Required tests we knowingly fail, each with the reason. Everything else that is required must
 * pass; the CI test fails on any required failure not listed here.
 */
export const IGNORED_REQUIRED: Readonly<Record<string, string>> = {
  'age-parse-prefix':
    'the test expects `Age: 0,7200` to be fresh although its own title says "stale" and its siblings (`0, 0`, ' +
    'two `Age` lines, `7200,0`) expect stale; we treat every Age that is not one integer as invalid, hence stale',
};

export type Verdict =
  | 'pass'
  | 'fail'
  | 'optional_fail'
  | 'yes'
  | 'no'
  | 'setup_fail'
  | 'harness_fail'
  | 'dependency_fail'
  | 'retry'
  | 'untested';

export interface ConformanceSummary {
  total: number;
  passed: number;
  requiredFailures: { id: string; name: string; message: string }[];
  ignoredFailures: { id: string; reason: string; message: string }[];
  optionalFailures: { id: string; message: string }[];
  setupFailures: { id: string; message: string }[];
  dependencyFailures: string[];
  checks: { yes: number; no: number };
  verdicts: Record<string, Verdict>;
}

function pkgDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('http-cache-tests/package.json'));
}

async function load<T>(rel: string): Promise<T> {
  return (await import(pathToFileURL(join(pkgDir(), rel)).href)) as T;
}

/** The suite's origin: its own request handlers, bound to loopback. */
export async function startOrigin(): Promise<{ server: Server; port: number }> {
  const config = await load<{ default: Handler }>('server/handle-config.mjs');
  const test = await load<{ default: Handler }>('server/handle-test.mjs');
  const state = await load<{ default: Handler }>('server/handle-state.mjs');
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost/');
    const segs = url.pathname.split('/');
    segs.shift();
    const dispatch = segs.shift();
    if (dispatch === 'config') config.default(segs, req, res);
    else if (dispatch === 'test') test.default(segs, req, res);
    else if (dispatch === 'state') state.default(segs, req, res);
    else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

export interface ProxyUnderTest {
  proc: Proc;
  port: number;
  stop(): Promise<void>;
}

/** Starts `strata proxy` in front of the origin, with a file L2 in `dir`. */
export async function startProxy(dir: string, originPort: number): Promise<ProxyUnderTest> {
  const [port, health] = (await freePorts(2)) as [number, number];
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    [
      `upstream_address: "127.0.0.1:${originPort}"`,
      `listen_address: "127.0.0.1:${port}"`,
      `health_address: "127.0.0.1:${health}"`,
      'metrics_endpoint: { enabled: false }',
      'enable_cache: true',
      'l1_cache_size_bytes: 64MB',
      'enable_l2_cache: true',
      'l2_backend: file',
      `l2_cache_dir: "${join(dir, 'l2')}"`,
      `log_level: ${process.env.STRATA_CONFORMANCE_LOG ?? 'warn'}`,
      '',
    ].join('\n'),
  );
  const proc = startStrata(['proxy', '--config', file], { env: { ...process.env } });
  await waitHealthy(health, proc);
  return {
    proc,
    port,
    async stop() {
      await proc.stop('SIGTERM', 10_000);
    },
  };
}

async function waitHealthy(port: number, proc: Proc): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`proxy did not become ready\n${proc.stdout}\n${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function classify(
  suites: Suite[],
  id: string,
  results: Record<string, RawResult>,
  seen = new Set<string>(),
): Verdict {
  const test = suites.flatMap((s) => s.tests).find((t) => t.id === id);
  const result = results[id];
  if (test === undefined || result === undefined) return 'untested';
  if (test.depends_on !== undefined && !seen.has(id)) {
    seen.add(id);
    for (const dep of test.depends_on) {
      const v = classify(suites, dep, results, seen);
      if (v !== 'pass' && v !== 'yes') return 'dependency_fail';
    }
  }
  if (result !== true && result[0] === 'Setup') return result[1] === 'retry' ? 'retry' : 'setup_fail';
  const kind = test.kind ?? 'required';
  if (kind === 'required') return result === true ? 'pass' : 'fail';
  if (kind === 'optimal') return result === true ? 'pass' : 'optional_fail';
  return result === true ? 'yes' : 'no';
}

/** Runs the whole suite against `baseUrl` (a proxy) and classifies the results. */
export async function runSuite(baseUrl: string, only?: string): Promise<ConformanceSummary> {
  const runner = await load<{
    runTests: (tests: Suite[], fetch: unknown, browser: boolean, base: string) => Promise<void>;
    getResults: () => Record<string, RawResult>;
  }>('client/runner.mjs');
  const index = await load<{ default: Suite[] }>('tests/index.mjs');
  const surrogate = await load<{ default: Suite }>('tests/surrogate-control.mjs');
  // The suite's own fetch (node-fetch 2), resolved from its package like its CLI does.
  const fetchImpl = createRequire(join(pkgDir(), 'package.json'))('node-fetch') as unknown;
  const suites: Suite[] = [...index.default, surrogate.default];
  const selected =
    only === undefined ? suites : suites.map((s) => ({ ...s, tests: s.tests.filter((t) => t.id === only) }));
  await runner.runTests(selected, fetchImpl, false, baseUrl);
  const results = runner.getResults();
  const summary: ConformanceSummary = {
    total: 0,
    passed: 0,
    requiredFailures: [],
    ignoredFailures: [],
    optionalFailures: [],
    setupFailures: [],
    dependencyFailures: [],
    checks: { yes: 0, no: 0 },
    verdicts: {},
  };
  for (const suite of suites) {
    for (const t of suite.tests) {
      if (t.browser_only === true) continue;
      const v = classify(suites, t.id, results);
      if (v === 'untested') continue;
      summary.total++;
      summary.verdicts[t.id] = v;
      const r = results[t.id];
      const message = r === undefined || r === true ? '' : r[1];
      if (v === 'pass') summary.passed++;
      else if (v === 'fail') {
        const reason = IGNORED_REQUIRED[t.id];
        if (reason !== undefined) summary.ignoredFailures.push({ id: t.id, reason, message });
        else summary.requiredFailures.push({ id: t.id, name: t.name, message });
      } else if (v === 'optional_fail') summary.optionalFailures.push({ id: t.id, message });
      else if (v === 'yes') summary.checks.yes++;
      else if (v === 'no') summary.checks.no++;
      else if (v === 'setup_fail' || v === 'retry' || v === 'harness_fail')
        summary.setupFailures.push({ id: t.id, message });
      else if (v === 'dependency_fail') summary.dependencyFailures.push(t.id);
    }
  }
  return summary;
}

export function formatSummary(s: ConformanceSummary): string {
  const lines = [
    `cache-tests through strata proxy: ${s.passed}/${s.total} passed`,
    `required failures: ${s.requiredFailures.length} (plus ${s.ignoredFailures.length} ignored with a reason)`,
    ...s.requiredFailures.map((f) => `  FAIL ${f.id}: ${f.message}`),
    ...s.ignoredFailures.map((f) => `  ignored ${f.id}: ${f.reason} (${f.message})`),
    `optional (optimal) failures: ${s.optionalFailures.length}`,
    `setup failures: ${s.setupFailures.length}${s.setupFailures.map((f) => `\n  SETUP ${f.id}: ${f.message}`).join('')}`,
    `dependency failures: ${s.dependencyFailures.length}`,
    `checks: ${s.checks.yes} yes, ${s.checks.no} no`,
  ];
  return lines.join('\n');
}
