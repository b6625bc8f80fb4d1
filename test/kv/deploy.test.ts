// Proves the deployment files hang together: every YAML parses, each docker-compose service and
// Kubernetes Deployment runs `kv` on a node configuration that exists and validates, their ports
// match those configurations, and every metric the alert rules use is one a node exports.
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseKvConfigText } from '../../src/kv/index.js';
import { KvMetrics } from '../../src/kv/metrics.js';

const DEPLOY = new URL('../../../deploy/kv/', import.meta.url).pathname;

function read(rel: string): string {
  return readFileSync(join(DEPLOY, rel), 'utf8');
}

test('docker-compose: three nodes of the strata image on valid configs', () => {
  const doc = parseYaml(read('docker-compose.yml'), { merge: true }) as {
    services: Record<
      string,
      { image: string; entrypoint: string[]; command: string[]; ports: string[]; volumes: string[] }
    >;
  };
  const names = Object.keys(doc.services).sort();
  assert.deepEqual(names, ['cache-node1', 'cache-node2', 'cache-node3']);
  for (const [name, svc] of Object.entries(doc.services)) {
    assert.match(svc.image, /^strata(:|$)/, name);
    assert.deepEqual(svc.entrypoint, ['strata']);
    assert.equal(svc.command[0], 'kv');
    const file = /^-config=\/config\/(.+)$/.exec(svc.command[1] ?? '')?.[1];
    assert.ok(file !== undefined, `${name}: -config=/config/<file>`);
    assert.ok(svc.volumes.includes('./config:/config:ro'));
    const { config } = parseKvConfigText(read(join('config', file)), file);
    assert.equal(`cache-${config.nodeId}`, name, 'service name is the peer address host');
    assert.ok(
      svc.ports.includes(`${config.listen.port}:${config.listen.port}`),
      `${name} publishes its HTTP port`,
    );
    for (const [id, hp] of config.clusterNodes) assert.equal(hp.host, `cache-${id}`);
  }
});

test('kubernetes: ConfigMap configs are valid and each Deployment uses its own, with probes', () => {
  const docs = readdirSync(join(DEPLOY, 'k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(read(join('k8s', f))).map((d) => d.toJS() as Record<string, unknown>));
  const cm = docs.find((d) => d.kind === 'ConfigMap') as { data: Record<string, string> };
  const configs = new Map(Object.entries(cm.data).map(([f, text]) => [f, parseKvConfigText(text, f).config]));
  assert.equal(configs.size, 3);
  const deployments = docs.filter((d) => d.kind === 'Deployment') as {
    metadata: { name: string };
    spec: {
      replicas: number;
      strategy: { type: string };
      template: {
        spec: {
          containers: {
            args: string[];
            ports: { containerPort: number }[];
            readinessProbe: unknown;
            livenessProbe: unknown;
          }[];
        };
      };
    };
  }[];
  assert.equal(deployments.length, 3);
  for (const d of deployments) {
    assert.equal(d.spec.replicas, 1);
    assert.equal(d.spec.strategy.type, 'Recreate', 'never two pods with one node_id');
    const c = d.spec.template.spec.containers[0];
    assert.ok(c);
    const file = /^-config=\/config\/(.+)$/.exec(c.args[1] ?? '')?.[1] ?? '';
    const config = configs.get(file);
    assert.ok(config, `${d.metadata.name} uses ${file}`);
    assert.equal(`cache-${config.nodeId}`, d.metadata.name);
    assert.equal(c.ports[0]?.containerPort, config.listen.port);
    assert.ok(c.readinessProbe && c.livenessProbe);
  }
  const services = docs.filter((d) => d.kind === 'Service').map((d) => (d.metadata as { name: string }).name);
  for (const id of ['node1', 'node2', 'node3']) assert.ok(services.includes(`cache-${id}`));
});

test('alert rules only use metrics a node exports', () => {
  const metrics = new KvMetrics('t', {
    keys: () => 0,
    bytes: () => 0,
    maxBytes: 1,
    maxKeys: 1,
    tombstones: () => 0,
    handoffPending: () => 0,
    nodeStates: () => [],
    ownership: () => ({ shares: new Map(), relativeStdDev: 0 }),
    respConnections: () => 0,
  });
  const exported = new Set(metrics.registry.getMetricsAsArray().map((m) => m.name));
  const rules = parseYaml(read('prometheus/alerts.yml')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const used = new Set<string>();
  for (const g of rules.groups) {
    for (const r of g.rules) {
      for (const m of r.expr.matchAll(/\bcache_[a-z_]+/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
    }
  }
  assert.ok(used.size >= 8);
  for (const name of used) assert.ok(exported.has(name), `alerts use ${name}, which no node exports`);
  const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
  for (const seed of ['CacheNodeDown', 'HighErrorRate'])
    assert.ok(alerts.includes(seed), `seed alert ${seed}`);
  const prom = parseYaml(read('prometheus/prometheus.yml')) as { scrape_configs: { metrics_path: string }[] };
  assert.equal(prom.scrape_configs[0]?.metrics_path, '/admin/metrics');
});

test('systemd unit runs kv on the instance config and stops with SIGTERM', () => {
  const unit = read('systemd/strata-kv@.service');
  assert.match(
    unit,
    /^ExecStart=\/usr\/bin\/node \/opt\/strata\/dist\/src\/cli\/main\.js kv -config=\/opt\/strata\/config\/%i\.yaml$/m,
  );
  assert.match(unit, /^KillSignal=SIGTERM$/m);
  assert.match(unit, /^RestartPreventExitStatus=2$/m);
  assert.match(unit, /^WantedBy=multi-user\.target$/m);
});
