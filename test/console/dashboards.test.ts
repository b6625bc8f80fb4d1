// Proves the dashboards and alert rules read real metrics: every PromQL expression in
// deploy/grafana/*.json and in the alert rules (ours, deploy/kv's and deploy/proxy's) names only
// metrics that a running master, worker, FUSE mount (root, /dev/fuse), S3 gateway, KV node and
// proxy export, scraped from their /metrics; the files are well formed (unique uids and panel
// ids, rules with severity and summary, jobs that prometheus.yml scrapes), and a family two roles
// share is always selected by role. The PromQL name reader is checked on tricky expressions first.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { constants } from 'node:os';
import {
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  CreateBucketCommand,
} from '@aws-sdk/client-s3';
import { isRoutineErrno } from '../../src/fuse/errno.js';
import { exportedNames, parsePromText } from '../../src/master/console/prom-text.js';
import { FUSE_TOOLS, mountFuse, shOk } from '../fuse/fuse-helper.js';
import { startGateway } from '../gateway/harness.js';
import { requireTools } from '../helpers/ci.js';
import { startKvCluster } from '../kv/cluster-helper.js';
import { get, scratch, startOrigin, startProxy } from '../proxy/helpers.js';
import { metricNames, templateQueryNames } from './promql.js';

const ROOT = process.cwd();
const GRAFANA = join(ROOT, 'deploy', 'grafana');
const PROMETHEUS = join(ROOT, 'deploy', 'prometheus');

type Role = 'master' | 'worker' | 'fuse' | 's3' | 'kv' | 'proxy';

/** Which processes each file is about; a new file must be listed here to be checked. */
const FILES: Readonly<Record<string, readonly Role[]>> = {
  'deploy/grafana/strata-master.json': ['master'],
  'deploy/grafana/strata-workers.json': ['worker'],
  'deploy/grafana/strata-kv.json': ['kv'],
  'deploy/grafana/strata-proxy.json': ['proxy'],
  'deploy/grafana/strata-fuse.json': ['fuse'],
  'deploy/grafana/strata-s3.json': ['s3'],
  'deploy/prometheus/strata-alerts.yml': ['master', 'worker', 'fuse', 's3'],
  'deploy/kv/prometheus/alerts.yml': ['kv'],
  'deploy/proxy/prometheus/strata-proxy-rules.yml': ['proxy'],
};

/** Alerts that must exist, and a metric each must read. */
const REQUIRED_ALERTS: readonly (readonly [string, string])[] = [
  ['StrataWorkerLost', 'strata_master_worker_num'],
  ['StrataTierAboveHighWatermark', 'strata_worker_used_bytes'],
  ['StrataRpcServerErrors', 'strata_rpc_server_requests_total'],
  ['CacheLowHitRatio', 'cache_hits_total'],
  ['StrataProxyLowHitRate', 'cache_hit_rate'],
  ['StrataProxyHighFragmentation', 'raw_disk_fragmentation_rate'],
  ['StrataProxyCacheErrors', 'proxy_cache_errors_total'],
  ['StrataFuseErrors', 'strata_fuse_errors_total'],
  ['StrataS3ServerErrors', 'strata_s3_requests_total'],
];

/** A mount needs the FUSE tools (and root with /dev/fuse, which this machine and CI have). */
const skip = requireTools(...FUSE_TOOLS);

/** Series Prometheus makes itself, not the processes. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'ALERTS']);

test('the PromQL reader finds metric names and nothing else', () => {
  const cases: [string, string[]][] = [
    ['up{job="strata-master"} == 0', ['up']],
    [
      'sum by (le, call) (rate(strata_rpc_server_request_duration_seconds_bucket{role="master", call=~"a|b"}[$__rate_interval]))',
      ['strata_rpc_server_request_duration_seconds_bucket'],
    ],
    ['sum(rate(x_total[5m])) by (instance) / on(instance) group_left(tier) y', ['x_total', 'y']],
    ['histogram_quantile(0.99, sum without (pod) (rate(h_bucket[1h30m] offset 5m)))', ['h_bucket']],
    ['a / clamp_min(b + c, 1e-9) > bool 0.5 and d unless count(e) by (x)', ['a', 'b', 'c', 'd', 'e']],
    ['metric{label="with } brace and \\" quote"} * 2', ['metric']],
    ['label_replace(m, "dst", "$1", "src", "(.*)")', ['m']],
    ['topk(5, sum by (peer) (cache_node_up{state="down"}))', ['cache_node_up']],
    ['sum(x{instance=~"${instance}"})', ['x']],
  ];
  for (const [expr, names] of cases) assert.deepEqual(metricNames(expr), names, expr);
  assert.deepEqual(templateQueryNames('label_values(strata_master_capacity, instance)'), [
    'strata_master_capacity',
  ]);
  assert.deepEqual(templateQueryNames('label_values(instance)'), []);
  assert.deepEqual(templateQueryNames('label_values(m{role="kv"}, node)'), ['m']);
  assert.throws(() => metricNames('sum(x{a="b"'), /unbalanced/);
});

interface Expr {
  where: string;
  expr: string;
  template: boolean;
}

/** Every "expr" in a dashboard, and every templating query. */
function dashboardExprs(file: string, d: unknown): Expr[] {
  const out: Expr[] = [];
  const walk = (v: unknown, where: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}[${i}]`));
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string')
          out.push({ where: `${where}.expr`, expr: x, template: false });
        else walk(x, `${where}.${k}`);
      }
    }
  };
  const dash = d as {
    panels?: unknown;
    templating?: { list?: { name: string; type: string; query?: unknown }[] };
  };
  walk(dash.panels, `${file} panels`);
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    if (typeof q === 'string') out.push({ where: `${file} variable ${v.name}`, expr: q, template: true });
  }
  return out;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function ruleFile(path: string): Rule[] {
  const doc = parseYaml(readFileSync(path, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0, `${path}: no groups`);
  const names = new Set<string>();
  for (const g of doc.groups) {
    assert.ok(!names.has(g.name), `${path}: group ${g.name} twice`);
    names.add(g.name);
  }
  return doc.groups.flatMap((g) => g.rules);
}

/** Families every process exports (prom-client's process and Node.js metrics): the role label tells them apart where it matters. */
const COMMON = /^(process_|nodejs_)/;

/** Whether every selector of `name` in `expr` has a role matcher, or the expression keeps roles apart (`by (role)`). */
function selectsRole(expr: string, name: string): boolean {
  if (/\bby\s*\([^)]*\brole\b/.test(expr)) return true;
  const re = new RegExp(`\\b${name}\\b(\\{[^}]*\\})?`, 'g');
  for (const m of expr.matchAll(re)) if (!/\brole\s*=~?\s*"/.test(m[1] ?? '')) return false;
  return true;
}

async function scrape(url: string): Promise<Set<string>> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return exportedNames(parsePromText(await res.text()));
}

test('the dashboard files are what deploy/grafana/dashboards.mjs generates', () => {
  const r = spawnSync(process.execPath, [join(GRAFANA, 'dashboards.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test(
  'every dashboard and alert rule names only metrics the running processes export',
  { skip, timeout: 120_000 },
  async (t) => {
    // The files on disk are exactly the ones this test knows.
    const onDisk = [
      ...readdirSync(GRAFANA)
        .filter((f) => f.endsWith('.json'))
        .map((f) => `deploy/grafana/${f}`),
      ...readdirSync(PROMETHEUS)
        .filter((f) => f.endsWith('.yml') && f !== 'prometheus.yml')
        .map((f) => `deploy/prometheus/${f}`),
    ];
    for (const f of onDisk)
      assert.ok(f in FILES, `${f} is not checked: add it to FILES with the roles it is about`);

    // The S3 gateway's MiniCluster (a master, a worker) serves the FUSE mount too.
    const gw = await startGateway(t);
    const mc = gw.cluster;
    const fuse = await mountFuse(t, mc);
    const kv = await startKvCluster(t, { size: 1 });
    const master = mc.masters[0];
    const worker = mc.workers[0];
    const kvNode = kv.nodes[0];
    // A proxy with a raw-disk L2 (the fragmentation alert's store) that has answered a miss and a hit.
    const dir = scratch(t);
    const origin = await startOrigin(t, (_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 5 });
      res.end('hello');
    });
    const proxy = await startProxy(t, dir, {
      upstream_address: origin.address,
      enable_l2_cache: true,
      l2_backend: 'raw_disk',
      raw_disk_cache: { device_path: join(dir, 'cache.raw'), total_size: '16MB', block_size: 4096 },
    });
    for (let i = 0; i < 2; i++) assert.equal((await get(proxy.url('/object'))).status, 200);
    assert.ok(master !== undefined && worker !== undefined && kvNode !== undefined);
    // Traffic through the mount (a write, a read, a lookup of a missing file) and the gateway
    // (a bucket, a PUT, a GET, a HEAD of a missing key), so the labelled series exist too.
    await shOk('echo hello > a.txt && cat a.txt >/dev/null && ! ls missing 2>/dev/null', fuse.mnt);
    await gw.client.send(new CreateBucketCommand({ Bucket: 'dash' }));
    await gw.client.send(new PutObjectCommand({ Bucket: 'dash', Key: 'k', Body: 'value' }));
    await (
      await gw.client.send(new GetObjectCommand({ Bucket: 'dash', Key: 'k' }))
    ).Body?.transformToString();
    await assert.rejects(gw.client.send(new HeadObjectCommand({ Bucket: 'dash', Key: 'missing' })));
    const exported: Record<Role, Set<string>> = {
      master: await scrape(`http://127.0.0.1:${master.webPort}/metrics`),
      worker: await scrape(`http://127.0.0.1:${worker.webPort}/metrics`),
      fuse: await scrape(`http://127.0.0.1:${fuse.webPort}/metrics`),
      s3: await scrape(`http://127.0.0.1:${gw.webPort}/metrics`),
      kv: await scrape(`${kvNode.base}/admin/metrics`),
      proxy: await scrape(`http://127.0.0.1:${proxy.metricsPort}/metrics`),
    };
    for (const [role, names] of Object.entries(exported)) t.diagnostic(`${role} exports ${names.size} names`);
    assert.ok(exported.master.has('strata_master_capacity'));
    assert.ok(exported.worker.has('strata_worker_read_seconds_bucket'));
    assert.ok(exported.kv.has('cache_hits_total'));
    assert.ok(exported.proxy.has('raw_disk_fragmentation_rate'));
    assert.ok(exported.proxy.has('proxy_ttfb_seconds_bucket'));
    assert.ok(exported.fuse.has('strata_fuse_errors_total'));
    assert.ok(exported.fuse.has('strata_client_read_bytes_total'));
    assert.ok(exported.s3.has('strata_s3_request_seconds_bucket'));
    // Families two roles export (the proxy keeps the seed's cache_* names, as the KV cache does).
    const shared = new Set<string>();
    const roles = Object.keys(exported) as Role[];
    for (const a of roles)
      for (const b of roles)
        if (a < b) for (const n of exported[a]) if (exported[b].has(n) && !COMMON.test(n)) shared.add(n);
    t.diagnostic(`families shared by roles: ${[...shared].sort().join(', ')}`);

    const config = parseYaml(readFileSync(join(PROMETHEUS, 'prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string }[];
    };
    const jobs = new Set(config.scrape_configs.map((s) => s.job_name));
    const loaded = new Set(config.rule_files.map((f) => join('deploy/prometheus', f).replace(/\\/g, '/')));

    const unknown: string[] = [];
    const unselected: string[] = [];
    let checked = 0;
    const check = (file: string, where: string, expr: string, template: boolean): void => {
      const names = template ? templateQueryNames(expr) : metricNames(expr);
      assert.ok(template || names.length > 0, `${where}: no metric in ${expr}`);
      const allowed = new Set<string>(SYNTHETIC);
      for (const role of FILES[file] ?? []) for (const n of exported[role]) allowed.add(n);
      for (const n of names)
        if (!allowed.has(n)) unknown.push(`${where}: ${n} (in ${expr.trim().slice(0, 120)})`);
      for (const n of names)
        if (shared.has(n) && !selectsRole(expr, n))
          unselected.push(`${where}: ${n} is exported by several roles; select one with role="…"`);
      checked++;
      for (const m of expr.matchAll(/\bjob\s*=\s*"([^"]+)"/g))
        assert.ok(
          jobs.has(m[1] as string),
          `${where}: job "${m[1]}" is not scraped by deploy/prometheus/prometheus.yml`,
        );
    };

    const uids = new Set<string>();
    for (const file of Object.keys(FILES).filter((f) => f.endsWith('.json'))) {
      const d = JSON.parse(readFileSync(join(ROOT, file), 'utf8')) as {
        uid: string;
        title: string;
        panels: {
          id: number;
          type: string;
          title: string;
          gridPos: { w: number; h: number; x: number; y: number };
        }[];
      };
      assert.ok(
        /^[a-z0-9-]{1,40}$/.test(d.uid) && !uids.has(d.uid),
        `${file}: uid ${d.uid} missing or repeated`,
      );
      uids.add(d.uid);
      assert.match(d.title, /^Strata \/ /);
      const ids = new Set<number>();
      for (const p of d.panels) {
        assert.ok(!ids.has(p.id), `${file}: panel id ${p.id} twice`);
        ids.add(p.id);
        assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${file}: panel ${p.title} wider than the grid`);
      }
      const exprs = dashboardExprs(file, d);
      assert.ok(exprs.length >= 10, `${file}: only ${exprs.length} queries`);
      for (const e of exprs) check(file, e.where, e.expr, e.template);
    }
    const alerts = new Map<string, string>();
    for (const file of Object.keys(FILES).filter((f) => f.endsWith('.yml'))) {
      assert.ok(loaded.has(file), `${file} is not in prometheus.yml rule_files`);
      for (const r of ruleFile(join(ROOT, file))) {
        const where = `${file} ${r.alert ?? r.record ?? '?'}`;
        if (r.alert !== undefined) {
          alerts.set(r.alert, r.expr);
          assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, `${where}: severity`);
          assert.ok((r.annotations?.summary ?? '') !== '', `${where}: summary`);
        }
        check(file, where, r.expr, false);
      }
    }
    // The conditions issue 13 asks for, each on the metric that shows it (FUSE errors wait for FUSE).
    for (const [alert, metric] of REQUIRED_ALERTS)
      assert.match(alerts.get(alert) ?? '', new RegExp(`\\b${metric}\\b`), `alert ${alert} on ${metric}`);
    t.diagnostic(`checked ${checked} expressions`);
    assert.deepEqual(unknown, [], 'queries name metrics no process exports');
    assert.deepEqual(unselected, [], 'queries mix roles that share a metric family');
    // The FUSE rules and dashboard leave out exactly the errnos the mount answers routinely.
    const routine = Object.entries(constants.errno)
      .filter(([, n]) => isRoutineErrno(n))
      .map(([name]) => name)
      .sort();
    const fuseErrors = alerts.get('StrataFuseErrors') ?? '';
    const excluded = /errno!~"([^"]+)"/.exec(fuseErrors)?.[1]?.split('|').sort();
    assert.deepEqual(
      excluded,
      routine,
      'StrataFuseErrors leaves out the routine errnos of src/fuse/errno.ts',
    );
  },
);
