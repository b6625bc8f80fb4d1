// Proves the proxy configuration: the seed 004 examples and the shipped deploy examples load,
// `strata proxy --check-config` prints the effective values (exit 0) or lists every problem with
// its key, the bad value and what is allowed (exit 2, no stack trace), and the cluster backend
// is recognised but refused as not available in this build.
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ConfigError } from '../../src/common/errors.js';
import { changedKeys, parseProxyConfigText } from '../../src/proxy/config.js';
import { runStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const SEED_FILE_CONFIG = `
# 缓存配置
enable_cache: true
cache_ttl: 3600  # 1 小时
l1_cache_size_bytes: 104857600  # 100 MB
enable_l2_cache: true
l2_backend: "file"
l2_cache_dir: "/var/cache/pingora-slice"
upstream_address: "origin.example.com:80"
metrics_endpoint:
  enabled: true
  address: "127.0.0.1:9090"
`;

const SEED_RAW_CONFIG = `
enable_cache: true
cache_ttl: 3600  # 1 小时
l1_cache_size_bytes: 104857600
enable_l2_cache: true
l2_backend: "raw_disk"
raw_disk_cache:
  device_path: "/var/cache/pingora-slice-raw"
  total_size: 107374182400
  block_size: 4096
  use_direct_io: true
  enable_compression: true
  enable_prefetch: true
  enable_zero_copy: true
upstream_address: "origin.example.com:80"
metrics_endpoint:
  enabled: true
  address: "0.0.0.0:9090"
`;

function problems(text: string): Map<string, string> {
  try {
    parseProxyConfigText(text, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return new Map(err.problems.map((p) => [p.key, p.message]));
  }
  assert.fail('expected the configuration to be rejected');
}

test('the seed 004 configurations load with the documented defaults', () => {
  const file = parseProxyConfigText(SEED_FILE_CONFIG, 'seed-file.yaml').config;
  assert.equal(file.upstream_address, 'origin.example.com:80');
  assert.equal(file.l2_backend, 'file');
  assert.equal(file.listen_address, '0.0.0.0:8080');
  assert.equal(file.health_address, '0.0.0.0:8081');
  assert.equal(file.slice_size, 1024 * 1024);
  assert.equal(file.max_concurrent_subrequests, 4);
  assert.equal(file.max_retries, 3);
  assert.equal(file.cache_ttl_fallback, false);
  const raw = parseProxyConfigText(SEED_RAW_CONFIG, 'seed-raw.yaml').config;
  assert.equal(raw.raw_disk_cache.total_size, 107374182400);
  assert.equal(raw.raw_disk_cache.block_size, 4096);
  assert.equal(raw.raw_disk_cache.enable_compression, true);
  const sized = parseProxyConfigText(
    'upstream_address: "o:80"\nslice_size: 2MB\nl1_cache_size_bytes: 1GiB\n',
    'x',
  ).config;
  assert.equal(sized.slice_size, 2 * 1024 * 1024);
  assert.equal(sized.l1_cache_size_bytes, 1024 ** 3);
});

test('the shipped deploy/proxy examples are valid', () => {
  const root = new URL('../../../deploy/proxy/', import.meta.url).pathname;
  for (const f of ['config/file.yaml', 'config/raw-disk.yaml']) {
    const loaded = parseProxyConfigText(readFileSync(join(root, f), 'utf8'), f);
    assert.deepEqual(loaded.warnings, [], f);
  }
  const cm = parse(readFileSync(join(root, 'kubernetes/configmap.yaml'), 'utf8')) as {
    data: Record<string, string>;
  };
  const inMap = parseProxyConfigText(cm.data['config.yaml'] ?? '', 'configmap');
  assert.deepEqual(inMap.warnings, []);
  const rules = parse(readFileSync(join(root, 'prometheus/strata-proxy-rules.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr)).join('\n');
  for (const name of [
    'cache_hit_rate',
    'raw_disk_fragmentation_rate',
    'raw_disk_used_blocks',
    'raw_disk_total_blocks',
  ])
    assert.ok(exprs.includes(name), `alert rules use ${name}`);
  const unit = readFileSync(join(root, 'systemd/strata-proxy.service'), 'utf8');
  for (const hardening of [
    'NoNewPrivileges=true',
    'PrivateTmp=true',
    'ProtectSystem=strict',
    'ProtectHome=true',
  ])
    assert.ok(unit.includes(hardening), hardening);
});

test('every kind of bad value names its key, the value and what is allowed, all at once', () => {
  const p = problems(`
listen_address: "nowhere"
slice_size: 32KB
max_concurrent_subrequests: 0
max_retries: -1
slice_patterns: ["(unclosed"]
cache_ttl: "an hour"
l2_backend: "nfs"
raw_disk_cache:
  block_size: 3000
  total_size: "lots"
metrics_endpoint:
  address: "9090"
  enabled: "yes"
`);
  assert.match(p.get('upstream_address') ?? '', /^required: expected "host:port" of the origin/);
  assert.match(p.get('listen_address') ?? '', /expected "host:port"/);
  assert.match(p.get('slice_size') ?? '', /from 65536 to 10485760 bytes/);
  assert.match(p.get('max_concurrent_subrequests') ?? '', /from 1 to 64/);
  assert.match(p.get('max_retries') ?? '', /from 0 to 10/);
  assert.match(p.get('slice_patterns[0]') ?? '', /not a valid regular expression/);
  assert.match(p.get('cache_ttl') ?? '', /number of seconds/);
  assert.match(p.get('l2_backend') ?? '', /expected one of file, raw_disk, cluster/);
  assert.match(p.get('raw_disk_cache.block_size') ?? '', /power of two from 512 to 1048576/);
  assert.match(p.get('raw_disk_cache.total_size') ?? '', /size such as/);
  assert.match(p.get('metrics_endpoint.address') ?? '', /host:port/);
  assert.match(p.get('metrics_endpoint.enabled') ?? '', /true or false/);
  assert.ok(p.size >= 12, [...p.keys()].join(', '));
});

test('cross-key rules: raw disk needs a device, purge needs a token, cluster needs masters', () => {
  const raw = problems('upstream_address: "o:80"\nenable_l2_cache: true\nl2_backend: raw_disk\n');
  assert.match(raw.get('raw_disk_cache.device_path') ?? '', /required when l2_backend is raw_disk/);
  const purge = problems('upstream_address: "o:80"\npurge: { enabled: true }\n');
  assert.match(purge.get('purge.auth_token') ?? '', /required when purge.enabled is true/);
  const cluster = problems('upstream_address: "o:80"\nenable_l2_cache: true\nl2_backend: cluster\n');
  assert.match(cluster.get('cluster_cache.master_addrs') ?? '', /required when l2_backend is cluster/);
  const badAddr = problems(
    'upstream_address: "o:80"\nenable_l2_cache: true\nl2_backend: cluster\ncluster_cache: { master_addrs: "m1:19998,nohost", root: "rel" }\n',
  );
  assert.match(badAddr.get('cluster_cache.master_addrs') ?? '', /host:port/);
  assert.match(badAddr.get('cluster_cache.root') ?? '', /absolute path/);
  const ok = parseProxyConfigText(
    'upstream_address: "o:80"\nenable_l2_cache: true\nl2_backend: cluster\ncluster_cache: { master_addrs: "m1:19998, m2:19998" }\n',
    'x',
  ).config.cluster_cache;
  assert.deepEqual(ok.master_addrs, ['m1:19998', 'm2:19998']);
  assert.equal(ok.root, '/.strata-proxy');
  assert.equal(ok.replicas, 1);
  // Named but not enabled: accepted.
  assert.equal(
    parseProxyConfigText('upstream_address: "o:80"\nl2_backend: cluster\n', 'x').config.l2_backend,
    'cluster',
  );
});

test('unknown keys are warnings with a suggestion', () => {
  const r = parseProxyConfigText(
    'upstream_address: "o:80"\nslice_sise: 1MB\nraw_disk_cache: { blok_size: 4096 }\n',
    'x',
  );
  assert.ok(
    r.warnings.some((w) => w.includes('slice_sise') && w.includes('did you mean slice_size')),
    r.warnings.join('\n'),
  );
  assert.ok(
    r.warnings.some((w) => w.includes('raw_disk_cache.blok_size') && w.includes('raw_disk_cache.block_size')),
  );
});

test('reload planning: which keys changed', () => {
  const a = parseProxyConfigText('upstream_address: "o:80"\n', 'a').config;
  const b = parseProxyConfigText(
    'upstream_address: "p:80"\nlisten_address: "0.0.0.0:9999"\npurge: { enabled: true, auth_token: "abcdefgh12" }\n',
    'b',
  ).config;
  assert.deepEqual(changedKeys(a, b), [
    'listen_address',
    'purge.auth_token',
    'purge.enabled',
    'upstream_address',
  ]);
});

test('strata proxy --check-config: exit 0 with the effective config, exit 2 with every problem', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.yaml');
  writeFileSync(good, `${SEED_FILE_CONFIG}\npurge: { enabled: true, auth_token: "very-secret-token" }\n`);
  const ok = await runStrata(['proxy', '--check-config', good]);
  assert.equal(ok.code, 0, ok.stderr);
  const shown = parse(ok.stdout) as Record<string, unknown>;
  assert.equal(shown.listen_address, '0.0.0.0:8080');
  assert.equal(shown.upstream_address, 'origin.example.com:80');
  assert.doesNotMatch(ok.stdout, /very-secret-token/, 'secrets are never printed');

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'slice_size: 1\nl2_backend: floppy\nraw_disk_cache: { block_size: 1000 }\n');
  const r = await runStrata(['proxy', '--check-config', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /upstream_address: required/);
  assert.match(r.stderr, /slice_size: expected a size from 65536 to 10485760 bytes \(got 1\)/);
  assert.match(
    r.stderr,
    /l2_backend: unknown backend \(expected one of file, raw_disk, cluster\) \(got "floppy"\)/,
  );
  assert.match(r.stderr, /raw_disk_cache\.block_size: expected a power of two .* \(got 1000\)/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');

  const syntax = join(dir, 'syntax.yaml');
  writeFileSync(syntax, 'upstream_address: "o:80"\nslice_size: [1, 2\n');
  const s = await runStrata(['proxy', '--check-config', syntax]);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /line \d+ column \d+: YAML syntax error/);

  const missing = await runStrata(['proxy', '--check-config', join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /file not found/);

  const noArg = await runStrata(['proxy']);
  assert.equal(noArg.code, 2);
  assert.match(noArg.stderr, /a configuration file is needed/);
});
