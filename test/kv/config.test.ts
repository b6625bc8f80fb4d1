// Proves the KV YAML configuration: the seed's file loads with the documented defaults, the
// shipped config/node*.yaml and deploy configs are valid, every bad value is listed with its key,
// value and what is allowed, and `strata kv` exits 2 on a bad file (also with the seed's
// Go-style -config= spelling) and prints the effective values with --check.
import { strict as assert } from 'node:assert';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors.js';
import { loadKvConfig, parseKvConfigText } from '../../src/kv/index.js';
import { runStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

const SEED = `node_id: "node1"
address: ":8001"
cluster_nodes:
  node1: "localhost:8001"
  node2: "localhost:8002"
  node3: "localhost:8003"
cache_size: 1000
virtual_nodes: 150
`;

function problems(text: string): { key: string; message: string; value?: unknown }[] {
  try {
    parseKvConfigText(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => ({ key: p.key, message: p.message, value: p.value }));
  }
  assert.fail('expected the configuration to be rejected');
}

test("the seed's node1.yaml loads with the documented defaults", () => {
  const { config, warnings } = parseKvConfigText(SEED, 'seed.yaml');
  assert.deepEqual(warnings, []);
  assert.equal(config.nodeId, 'node1');
  assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8001 });
  assert.deepEqual([...config.clusterNodes.keys()], ['node1', 'node2', 'node3']);
  assert.deepEqual(config.clusterNodes.get('node2'), { host: 'localhost', port: 8002 });
  assert.equal(config.cacheSize, 1000);
  assert.equal(config.virtualNodes, 150);
  assert.equal(config.replicas, 1);
  assert.equal(config.maxMemoryBytes, 256 * 1024 * 1024);
  assert.equal(config.defaultTtlMs, 0);
  assert.equal(config.resp, undefined);
  assert.equal(config.limits.maxKeyBytes, 1024);
  assert.equal(config.limits.maxValueBytes, 1024 * 1024);
  assert.equal(config.hashProbes, 5);
});

test('the shipped configurations are valid', () => {
  const files = [
    ...['node1', 'node2', 'node3'].map((n) => join(ROOT, 'config', `${n}.yaml`)),
    ...readdirSync(join(ROOT, 'deploy/kv/config')).map((f) => join(ROOT, 'deploy/kv/config', f)),
  ];
  for (const f of files) {
    const { config, warnings } = loadKvConfig(f);
    assert.deepEqual(warnings, [], f);
    assert.equal(config.clusterNodes.size, 3, f);
  }
});

test('every bad value is reported at once with its key, value and what is allowed', () => {
  const found = problems(`node_id: "bad id"
address: "nowhere"
cluster_nodes:
  node1: ":8001"
cache_size: 0
virtual_nodes: 5000
replicas: 0
max_memory: "lots"
default_ttl: "forever"
resp_address: 6379
cache_sise: 10
limits:
  max_value_bytes: "2GB"
  max_key_byts: 10
`);
  const byKey = new Map(found.map((p) => [p.key, p]));
  const expect = (key: string, re: RegExp, value?: unknown): void => {
    const p = byKey.get(key);
    assert.ok(p, `no problem reported for ${key}: ${JSON.stringify(found)}`);
    assert.match(p.message, re, key);
    if (value !== undefined) assert.deepEqual(p.value, value, key);
  };
  expect('node_id', /letters, digits/, 'bad id');
  expect('address', /"host:port" or ":port"/, 'nowhere');
  expect('cluster_nodes.node1', /reachable address/, ':8001');
  expect('cache_size', /from 1 to/, 0);
  expect('virtual_nodes', /from 1 to 4096/, 5000);
  expect('replicas', /from 1 to 16/, 0);
  expect('max_memory', /a size such as/, 'lots');
  expect('default_ttl', /a duration such as/, 'forever');
  expect('resp_address', /"host:port"/, 6379);
  expect('cache_sise', /unknown key \(did you mean cache_size\?\)/);
  expect('limits.max_value_bytes', /from 1 to 536870912/, '2GB');
  expect('limits.max_key_byts', /did you mean limits.max_key_bytes/);
  assert.equal(found.length, 12, JSON.stringify(found, null, 1));
});

test('cross-key checks: node_id listed, replicas within the cluster, distinct addresses and ports', () => {
  const a = problems(`node_id: n9
address: ":8001"
cluster_nodes:
  n1: "h1:8001"
  n2: "h2:8001"
replicas: 3
`);
  assert.deepEqual(
    a.map((p) => p.key),
    ['cluster_nodes', 'replicas'],
  );
  assert.match(a[0]?.message ?? '', /must list this node's node_id "n9" \(listed: n1, n2\)/);
  const b = problems(`node_id: n1
address: ":8001"
resp_address: ":8001"
cluster_nodes:
  n1: "h1:8001"
  n2: "H1:8001"
limits:
  max_value_bytes: 2MB
max_memory: 1MB
`);
  assert.deepEqual(b.map((p) => p.key).sort(), [
    'cluster_nodes.n2',
    'limits.max_value_bytes',
    'resp_address',
  ]);
  const syntax = problems('node_id: [a\n');
  assert.equal(syntax.length, 1);
  assert.match(syntax[0]?.key ?? '', /^\(line \d+, column \d+\)$/);
  assert.match(syntax[0]?.message ?? '', /^YAML syntax error: /);
  assert.deepEqual(
    problems('- just\n- a list\n').map((p) => p.key),
    ['(root)'],
  );
  assert.match(
    problems('node_id: a\nnode_id: b\naddress: ":1"\n')[0]?.message ?? '',
    /Map keys must be unique/,
  );
});

test('strata kv exits 2 on a bad file and prints the effective values with --check', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'node_id: node1\naddress: ":8001"\ncache_size: many\nvirtual_nodes: -1\n');
  const r = await runStrata(['kv', `-config=${bad}`]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.yaml: invalid configuration/);
  assert.match(r.stderr, /cache_size: expected an entry count from 1 to 1000000000 \(got "many"\)/);
  assert.match(r.stderr, /virtual_nodes: .* \(got -1\)/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');

  const missing = await runStrata(['kv', '--config', join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /file not found/);

  const good = join(dir, 'good.yaml');
  writeFileSync(good, `${SEED}replicas: 2\nmax_memory: 64MB\n`);
  const ok = await runStrata(['--json', 'kv', `-config=${good}`, '--check']);
  assert.equal(ok.code, 0, ok.stderr);
  const shown = JSON.parse(ok.stdout) as { config: Record<string, unknown> };
  assert.equal(shown.config.replicas, 2);
  assert.equal(shown.config.max_memory, 64 * 1024 * 1024);
  assert.deepEqual(shown.config.cluster_nodes, {
    node1: 'localhost:8001',
    node2: 'localhost:8002',
    node3: 'localhost:8003',
  });
});
