// Proves the configuration loader accepts every example the seeds give, reports each kind of
// bad value with its key and what is allowed, and that `strata check-config` exits 0 or 2.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfigText, loadConfig } from '../../src/common/config/index.js';
import { ConfigError } from '../../src/common/errors.js';
import { parseDuration, parseSize } from '../../src/common/units.js';
import { runStrata } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const noEnv = { env: {} };

function problemsOf(text: string): { key: string; message: string }[] {
  try {
    parseConfigText(text, 'test.toml', noEnv);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map((p) => ({ key: p.key, message: p.message }));
  }
  assert.fail('expected the configuration to be rejected');
}

test('sizes and durations parse as people write them', () => {
  assert.equal(parseSize('128MB'), 128 * 1024 * 1024);
  assert.equal(parseSize('8GiB'), 8 * 1024 ** 3);
  assert.equal(parseSize('8Gi'), 8 * 1024 ** 3);
  assert.equal(parseSize('128KB'), 131072);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('1.5KB'), 1536);
  assert.equal(parseSize('12XB'), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(parseDuration('3s'), 3000);
  assert.equal(parseDuration('10m'), 600_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration('250'), 250);
  assert.equal(parseDuration('3 parsecs'), undefined);
});

test('the shipped example and the seed 001 TOML load', () => {
  const shipped = loadConfig({
    path: new URL('../../../conf/strata-cluster.toml', import.meta.url).pathname,
    env: {},
  });
  assert.deepEqual(
    shipped.config.worker.data_dir.map((d) => [d.storage_type, d.capacity, d.path]),
    [
      ['MEM', 8 * 1024 ** 3, '/cache-mem'],
      ['SSD', 100 * 1024 ** 3, '/cache-ssd'],
      ['HDD', null, '/cache-hdd'],
    ],
  );
  assert.equal(shipped.config.worker.dir_reserved, 10 * 1024 ** 3);
  assert.equal(shipped.config.client.storage_type, 'DISK');
  assert.deepEqual(shipped.warnings, []);

  // Seed 001: what the ThinRuntime config parser writes.
  const seed001 = parseConfigText(
    `format_master = false
format_worker = false
testing = false
cluster_id = "curvine"

[master]
hostname = "192.168.10.9"
rpc_port = 8995
web_port = 8080

[[client.master_addrs]]
hostname = "192.168.10.9"
port = 8995

[fuse]
debug = false
io_threads = 32
worker_threads = 56
mnt_path = "/runtime-mnt/thin/default/curvine-dataset/thin-fuse"
fs_path = "/data"
`,
    'seed-001.toml',
    noEnv,
  );
  assert.equal(seed001.config.master.web_port, 8080);
  assert.deepEqual(seed001.config.client.master_addrs, [{ hostname: '192.168.10.9', port: 8995 }]);
  assert.equal(seed001.config.fuse.fs_path, '/data');
});

test('every data_dir form of seed 000 parses, as an array or one comma-joined string', () => {
  const joined = parseConfigText(
    `[worker]\ndata_dir = "[MEM:8GB]/cache-mem,[SSD:100GB]/cache-ssd,[HDD]/cache-hdd"\ndir_reserved = "10GB"\n`,
    'x',
    noEnv,
  ).config.worker.data_dir;
  assert.deepEqual(
    joined.map((d) => d.storage_type),
    ['MEM', 'SSD', 'HDD'],
  );
  const forms = parseConfigText(
    `[worker]\ndata_dir = ["[SSD]/cache-data", "[32GB]/big", "/plain", "[nvme:1Ti]/fast", "[MEM:32GB]/cache-mem,[SSD:500GB]/cache-ssd,[HDD:2TB]/cache-hdd"]\n`,
    'x',
    noEnv,
  ).config.worker.data_dir;
  assert.deepEqual(
    forms.map((d) => [d.storage_type, d.capacity, d.path]),
    [
      ['SSD', null, '/cache-data'],
      ['DISK', 32 * 1024 ** 3, '/big'],
      ['DISK', null, '/plain'],
      ['NVME', 1024 ** 4, '/fast'],
      ['MEM', 32 * 1024 ** 3, '/cache-mem'],
      ['SSD', 500 * 1024 ** 3, '/cache-ssd'],
      ['HDD', 2 * 1024 ** 4, '/cache-hdd'],
    ],
  );
});

test('each kind of bad value names its key and what is allowed, all at once', () => {
  const problems = problemsOf(`
cluster_id = "bad id!"
[master]
rpc_port = 70000
heartbeat_interval = "3 parsecs"
worker_policy = "roundrobin"
[client]
block_size = "12XB"
replicas = "two"
[worker]
data_dir = ["[NVMEE:1GB]/a", "relative/dir", "[SSD:0]/z"]
[worker.watermarks]
SSD = { high = 0.5, low = 0.7 }
[log]
level = "LOUD"
`);
  const byKey = new Map(problems.map((p) => [p.key, p.message]));
  assert.match(byKey.get('cluster_id') ?? '', /letters, digits/);
  assert.match(byKey.get('master.rpc_port') ?? '', /port number from 0 to 65535/);
  assert.match(byKey.get('master.heartbeat_interval') ?? '', /duration such as/);
  assert.match(
    byKey.get('master.worker_policy') ?? '',
    /expected one of local, robin, random, load_based, weighted/,
  );
  assert.match(byKey.get('client.block_size') ?? '', /size such as/);
  assert.match(byKey.get('client.replicas') ?? '', /replica count/);
  assert.match(
    byKey.get('worker.data_dir[0]') ?? '',
    /unknown storage type "NVMEE" \(expected MEM, NVME, SSD, DISK, HDD\)/,
  );
  assert.match(byKey.get('worker.data_dir[1]') ?? '', /must be absolute/);
  assert.match(byKey.get('worker.data_dir[2]') ?? '', /bad capacity/);
  assert.match(byKey.get('worker.watermarks.SSD.low') ?? '', /must be below high/);
  assert.match(byKey.get('log.level') ?? '', /expected one of TRACE, DEBUG, INFO/);
  assert.ok(problems.length >= 11, `all problems reported together: ${JSON.stringify(problems)}`);
});

test('TOML syntax errors carry the line', () => {
  const problems = problemsOf('[master]\nrpc_port = = 3\n');
  assert.match(problems[0]?.key ?? '', /line 2/);
});

test('cross-key rules are checked', () => {
  const problems = problemsOf(
    '[master]\nheartbeat_interval = "30s"\nworker_lost_interval = "10s"\nworker_blacklist_interval="5s"\n',
  );
  assert.equal(problems[0]?.key, 'master.worker_lost_interval');
});

test('unknown keys are warnings with a suggestion, not errors', () => {
  const r = parseConfigText('[master]\nrpc_prot = 1\n[wrker]\nx = 1\n', 'x', noEnv);
  assert.ok(
    r.warnings.some((w) => w.includes('master.rpc_prot') && w.includes('did you mean master.rpc_port')),
    r.warnings.join('\n'),
  );
  assert.ok(
    r.warnings.some((w) => w.includes('unknown key wrker') && w.includes('did you mean worker')),
    r.warnings.join('\n'),
  );
});

test('environment overrides apply on top of the file', () => {
  const r = parseConfigText('[master]\nhostname = "a"\n', 'x', {
    env: {
      STRATA_MASTER_HOSTNAME: 'm1',
      STRATA_WORKER_HOSTNAME: 'w1',
      STRATA_MASTER_ENDPOINTS: 'm1:8995,m2:18995',
    },
  });
  assert.equal(r.config.master.hostname, 'm1');
  assert.equal(r.config.worker.hostname, 'w1');
  assert.deepEqual(r.config.client.master_addrs, [
    { hostname: 'm1', port: 8995 },
    { hostname: 'm2', port: 18995 },
  ]);
  const bad = (): unknown => parseConfigText('', 'x', { env: { STRATA_MASTER_ENDPOINTS: 'nope' } });
  assert.throws(
    bad,
    (e: unknown) => e instanceof ConfigError && e.problems[0]?.key === 'STRATA_MASTER_ENDPOINTS',
  );
});

test('master_addrs defaults to the master section', () => {
  const r = parseConfigText('[master]\nhostname = "h"\nrpc_port = 1234\n', 'x', noEnv);
  assert.deepEqual(r.config.client.master_addrs, [{ hostname: 'h', port: 1234 }]);
});

test('strata check-config prints the effective configuration or every problem with exit 2', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.toml');
  writeFileSync(good, '[master]\nrpc_port = 9995\nadmin_token = "s3cr3t"\n');
  const ok = await runStrata(['check-config', good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /rpc_port = 9995/);
  assert.doesNotMatch(ok.stdout, /s3cr3t/, 'secrets are never printed');
  const json = await runStrata(['check-config', good, '--json']);
  assert.equal(json.code, 0);
  const parsed = JSON.parse(json.stdout) as { config: { master: { rpc_port: number; admin_token: string } } };
  assert.equal(parsed.config.master.rpc_port, 9995);
  assert.equal(parsed.config.master.admin_token, '***');

  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '[master]\nrpc_port = "x"\n[worker]\ndata_dir = "[FLOPPY]/a"\n');
  const r = await runStrata(['check-config', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /master\.rpc_port: expected a port number/);
  assert.match(r.stderr, /worker\.data_dir\[0\]: unknown storage type "FLOPPY"/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace');

  const missing = await runStrata(['check-config', join(dir, 'nope.toml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /file not found/);
});
