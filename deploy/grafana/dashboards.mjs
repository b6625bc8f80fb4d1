#!/usr/bin/env node
// Writes Strata's Grafana dashboards (the *.json files beside this script) from one description
// per role, so every dashboard shares the layout, the data source variable and the units.
// Run after editing: `node deploy/grafana/dashboards.mjs` (`--check`: fail if the files are stale).
// test/console/dashboards.test.ts checks that the files are current and that every query names
// only metrics the running processes export.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const DS = { type: 'prometheus', uid: '${datasource}' };
const RATE = '$__rate_interval';
/** Errnos a FUSE mount answers routinely (src/fuse/errno.ts isRoutineErrno): not failures. */
const ROUTINE_ERRNOS = 'ENOENT|EEXIST|ENOTEMPTY|ENOTDIR|EISDIR|EACCES|EPERM|ENODATA|ERANGE|EINVAL';

/** Lays panels out left to right on Grafana's 24-column grid. */
class Layout {
  panels = [];
  x = 0;
  y = 0;
  rowH = 0;
  id = 1;

  row(title) {
    this.#newline();
    this.panels.push({
      type: 'row',
      id: this.id++,
      title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y: this.y },
      panels: [],
    });
    this.y += 1;
  }

  add(panel, w, h) {
    if (this.x + w > 24) this.#newline();
    this.panels.push({ ...panel, id: this.id++, gridPos: { h, w, x: this.x, y: this.y } });
    this.x += w;
    this.rowH = Math.max(this.rowH, h);
  }

  #newline() {
    if (this.x > 0) this.y += this.rowH;
    this.x = 0;
    this.rowH = 0;
  }
}

function targets(list) {
  return list.map(([expr, legendFormat], i) => ({
    refId: String.fromCharCode(65 + i),
    datasource: DS,
    expr,
    legendFormat: legendFormat ?? '__auto',
    range: true,
  }));
}

function stat(title, expr, unit, description) {
  return {
    type: 'stat',
    title,
    description,
    datasource: DS,
    targets: targets([[expr, title]]),
    fieldConfig: { defaults: { unit, color: { mode: 'thresholds' } }, overrides: [] },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'area',
      textMode: 'auto',
    },
  };
}

function series(title, list, unit, description, extra = {}) {
  return {
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    targets: targets(list),
    fieldConfig: {
      defaults: {
        unit,
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false },
        ...extra.defaults,
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi' },
    },
  };
}

function variable(name, label, query, multi = true) {
  return {
    name,
    label,
    type: 'query',
    datasource: DS,
    definition: query,
    query: { query, refId: `${name}-var` },
    refresh: 2,
    includeAll: multi,
    multi,
    allValue: '.*',
    current: multi ? { selected: true, text: ['All'], value: ['$__all'] } : {},
    sort: 1,
  };
}

function dashboard(uid, title, description, vars, build) {
  const l = new Layout();
  build(l);
  return {
    uid,
    title,
    description,
    tags: ['strata'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    links: [{ type: 'dashboards', tags: ['strata'], asDropdown: true, title: 'Strata' }],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          refresh: 1,
        },
        ...vars,
      ],
    },
    annotations: { list: [] },
    panels: l.panels,
  };
}

/** Process panels every role shares (prom-client's default metrics). */
function processPanels(l, sel) {
  l.row('Process');
  l.add(
    series('CPU', [[`rate(process_cpu_seconds_total{${sel}}[${RATE}])`, '{{instance}}']], 'percentunit'),
    8,
    7,
  );
  l.add(
    series('Resident memory', [[`process_resident_memory_bytes{${sel}}`, '{{instance}}']], 'bytes'),
    8,
    7,
  );
  l.add(
    series(
      'Event loop lag p99',
      [[`nodejs_eventloop_lag_p99_seconds{${sel}}`, '{{instance}}']],
      's',
      'A busy or blocked event loop delays every request of the process.',
    ),
    8,
    7,
  );
}

// ---- master ------------------------------------------------------------------------------

const M = 'role="master", instance=~"$instance"';
const master = dashboard(
  'strata-master',
  'Strata / Master',
  'The metadata server: capacity, namespace, workers, RPC calls and latency, replication, metadata store.',
  [variable('instance', 'Master', 'label_values(strata_master_capacity, instance)')],
  (l) => {
    l.row('Cluster');
    l.add(stat('Capacity', `sum(strata_master_capacity{${M}})`, 'bytes'), 4, 4);
    l.add(stat('Used', `sum(strata_master_fs_used{${M}})`, 'bytes'), 4, 4);
    l.add(stat('Available', `sum(strata_master_available{${M}})`, 'bytes'), 4, 4);
    l.add(stat('Live workers', `sum(strata_master_worker_num{${M}, state="live"})`, 'none'), 4, 4);
    l.add(stat('Lost workers', `sum(strata_master_worker_num{${M}, state="lost"})`, 'none'), 4, 4);
    l.add(stat('Files', `sum(strata_master_inode_file_num{${M}})`, 'short'), 4, 4);
    l.add(
      series(
        'Capacity',
        [
          [`sum(strata_master_capacity{${M}})`, 'capacity'],
          [`sum(strata_master_fs_used{${M}})`, 'used'],
          [`sum(strata_master_available{${M}})`, 'available'],
        ],
        'bytes',
        'Over workers that count (not lost or decommissioned).',
      ),
      12,
      8,
    );
    l.add(
      series('Workers by state', [[`sum by (state) (strata_master_worker_num{${M}})`, '{{state}}']], 'none'),
      12,
      8,
    );
    l.row('Namespace');
    l.add(
      series(
        'Inodes',
        [
          [`sum(strata_master_inode_file_num{${M}})`, 'files'],
          [`sum(strata_master_inode_dir_num{${M}})`, 'directories'],
          [`sum(strata_master_inode_symlink_num{${M}})`, 'symlinks'],
        ],
        'short',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Blocks',
        [
          [`sum(strata_master_num_blocks{${M}})`, 'blocks'],
          [`sum(strata_master_cached_blocks{${M}})`, 'with a copy on a worker'],
          [`sum(strata_master_replicas{${M}})`, 'copies'],
        ],
        'short',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Metadata cache hit ratio (since start)',
        [
          [
            `sum(strata_master_cache_lookups{${M}, result="hit"}) / clamp_min(sum(strata_master_cache_lookups{${M}}), 1)`,
            'hit ratio',
          ],
        ],
        'percentunit',
        'Namespace cache lookups (inodes and directory entries) answered from memory.',
      ),
      8,
      8,
    );
    l.row('RPC');
    l.add(
      series(
        'Calls per second by call',
        [[`sum by (call) (rate(strata_rpc_server_requests_total{${M}}[${RATE}]))`, '{{call}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Errors per second by call and code',
        [
          [
            `sum by (call, status) (rate(strata_rpc_server_requests_total{${M}, status!="ok"}[${RATE}]))`,
            '{{call}} {{status}}',
          ],
        ],
        'reqps',
        'POSIX codes (ENOENT, EEXIST…) are answers, not faults; STRATA_* codes are worth a look.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Latency p99 by call',
        [
          [
            `histogram_quantile(0.99, sum by (le, call) (rate(strata_rpc_server_request_duration_seconds_bucket{${M}}[${RATE}])))`,
            '{{call}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Connections and calls in flight',
        [
          [`sum(strata_rpc_server_connections{${M}})`, 'connections'],
          [`sum(strata_rpc_server_calls_in_flight{${M}})`, 'in flight'],
        ],
        'short',
      ),
      6,
      8,
    );
    l.add(
      series(
        'RPC bytes',
        [
          [`sum(rate(strata_rpc_server_received_bytes_total{${M}}[${RATE}]))`, 'received'],
          [`sum(rate(strata_rpc_server_sent_bytes_total{${M}}[${RATE}]))`, 'sent'],
        ],
        'Bps',
      ),
      6,
      8,
    );
    l.row('Replication and store');
    l.add(
      series(
        'Replication',
        [
          [`sum(strata_master_replication_pending{${M}})`, 'waiting for a copy'],
          [`sum(strata_master_replication_inflight{${M}})`, 'being copied'],
        ],
        'short',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Metadata store',
        [[`sum(rate(strata_master_meta_revision{${M}}[${RATE}]))`, 'commits/s']],
        'short',
        'Revisions per second: transactions committed by the store.',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Store size and open files',
        [
          [`sum(strata_master_meta_size_bytes{${M}})`, 'store bytes'],
          [`sum(strata_master_leases_open{${M}})`, 'files open for writing'],
          [`sum(strata_master_cache_inodes{${M}})`, 'cached inodes'],
        ],
        'short',
      ),
      8,
      8,
    );
    processPanels(l, M);
  },
);

// ---- workers -----------------------------------------------------------------------------

const W = 'role="worker", instance=~"$instance"';
const WT = `${W}, tier=~"$tier"`;
const workers = dashboard(
  'strata-workers',
  'Strata / Workers',
  'Workers: tier usage against capacity, block traffic and latency, tiering, integrity, heartbeats.',
  [
    variable('instance', 'Worker', 'label_values(strata_worker_capacity_bytes, instance)'),
    variable('tier', 'Tier', 'label_values(strata_worker_capacity_bytes, tier)'),
  ],
  (l) => {
    l.row('Tiers');
    l.add(stat('Capacity', `sum(strata_worker_capacity_bytes{${WT}})`, 'bytes'), 6, 4);
    l.add(stat('Used', `sum(strata_worker_used_bytes{${WT}})`, 'bytes'), 6, 4);
    l.add(stat('Available', `sum(strata_worker_available_bytes{${WT}})`, 'bytes'), 6, 4);
    l.add(stat('Blocks', `sum(strata_worker_blocks{${WT}})`, 'short'), 6, 4);
    l.add(
      series(
        'Used / capacity by worker and tier',
        [
          [
            `sum by (instance, tier) (strata_worker_used_bytes{${WT}}) / sum by (instance, tier) (strata_worker_capacity_bytes{${WT}})`,
            '{{instance}} {{tier}}',
          ],
        ],
        'percentunit',
        'Above the tier’s high watermark (defaults: MEM 95%, SSD/NVME 90%, DISK/HDD 80%) blocks move down or are dropped.',
        { defaults: { max: 1, min: 0 } },
      ),
      12,
      8,
    );
    l.add(
      series('Blocks by tier', [[`sum by (tier) (strata_worker_blocks{${WT}})`, '{{tier}}']], 'short'),
      12,
      8,
    );
    l.row('Traffic');
    l.add(
      series(
        'Read bytes by path',
        [[`sum by (path) (rate(strata_worker_read_bytes_total{${W}}[${RATE}]))`, '{{path}}']],
        'Bps',
        'remote: streamed over RPC; local: short-circuit opens by block length.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Write bytes by path',
        [[`sum by (path) (rate(strata_worker_write_bytes_total{${W}}[${RATE}]))`, '{{path}}']],
        'Bps',
        'replication: copied from peers on the master’s command.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Read latency',
        [
          [
            `histogram_quantile(0.5, sum by (le, path) (rate(strata_worker_read_seconds_bucket{${W}}[${RATE}])))`,
            'p50 {{path}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, path) (rate(strata_worker_read_seconds_bucket{${W}}[${RATE}])))`,
            'p99 {{path}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Write latency',
        [
          [
            `histogram_quantile(0.5, sum by (le, path) (rate(strata_worker_write_seconds_bucket{${W}}[${RATE}])))`,
            'p50 {{path}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, path) (rate(strata_worker_write_seconds_bucket{${W}}[${RATE}])))`,
            'p99 {{path}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.row('Tiering and integrity');
    l.add(
      series(
        'Moves between tiers',
        [
          [`sum by (from, to) (rate(strata_worker_demotions_total{${W}}[${RATE}]))`, 'down {{from}}→{{to}}'],
          [`sum by (from, to) (rate(strata_worker_promotions_total{${W}}[${RATE}]))`, 'up {{from}}→{{to}}'],
        ],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Blocks dropped',
        [
          [`sum by (tier) (rate(strata_worker_evictions_total{${W}}[${RATE}]))`, 'evicted {{tier}}'],
          [`sum(rate(strata_worker_deletions_total{${W}}[${RATE}]))`, 'deleted'],
        ],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Checksum failures',
        [
          [
            `sum by (instance) (increase(strata_worker_checksum_failures_total{${W}}[${RATE}]))`,
            '{{instance}}',
          ],
        ],
        'short',
        'Blocks found corrupt on read; the master re-replicates them from another copy.',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Replications by outcome',
        [[`sum by (outcome) (rate(strata_worker_replications_total{${W}}[${RATE}]))`, '{{outcome}}']],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Heartbeats by outcome',
        [[`sum by (outcome) (rate(strata_worker_heartbeats_total{${W}}[${RATE}]))`, '{{outcome}}']],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Worker RPC calls by call',
        [[`sum by (call) (rate(strata_rpc_server_requests_total{${W}}[${RATE}]))`, '{{call}}']],
        'reqps',
      ),
      8,
      8,
    );
    processPanels(l, W);
  },
);

// ---- KV ----------------------------------------------------------------------------------

const K = 'role="kv", instance=~"$instance"';
const kv = dashboard(
  'strata-kv',
  'Strata / KV cache',
  'The key-value cache cluster (seed 002): requests, latency, hit ratio, memory, ring and rebalancing. Alert rules: deploy/kv/prometheus/alerts.yml.',
  [variable('instance', 'Node', 'label_values(cache_keys, instance)')],
  (l) => {
    l.row('Requests');
    l.add(stat('Requests/s', `sum(cache_qps{${K}})`, 'reqps'), 6, 4);
    l.add(
      stat(
        'Hit ratio',
        `sum(rate(cache_hits_total{${K}}[${RATE}])) / clamp_min(sum(rate(cache_hits_total{${K}}[${RATE}])) + sum(rate(cache_misses_total{${K}}[${RATE}])), 1e-9)`,
        'percentunit',
      ),
      6,
      4,
    );
    l.add(stat('Keys', `sum(cache_keys{${K}})`, 'short'), 6, 4);
    l.add(stat('Nodes up (as seen)', `min(count by (instance) (cache_node_up{${K}} == 1))`, 'none'), 6, 4);
    l.add(
      series(
        'Requests by operation',
        [[`sum by (protocol, op) (rate(cache_requests_total{${K}}[${RATE}]))`, '{{protocol}} {{op}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Latency p99 by operation',
        [
          [
            `histogram_quantile(0.99, sum by (le, protocol, op) (rate(cache_request_duration_seconds_bucket{${K}}[${RATE}])))`,
            '{{protocol}} {{op}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Hits and misses',
        [
          [`sum(rate(cache_hits_total{${K}}[${RATE}]))`, 'hits'],
          [`sum(rate(cache_misses_total{${K}}[${RATE}]))`, 'misses'],
        ],
        'ops',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Errors by code',
        [[`sum by (code) (rate(cache_errors_total{${K}}[${RATE}]))`, '{{code}}']],
        'ops',
      ),
      12,
      8,
    );
    l.row('Memory');
    l.add(
      series(
        'Bytes held / max_memory',
        [[`cache_bytes{${K}} / cache_max_bytes{${K}}`, '{{instance}}']],
        'percentunit',
        'At 100% the LRU evicts to make room.',
        { defaults: { max: 1, min: 0 } },
      ),
      8,
      8,
    );
    l.add(
      series(
        'Evictions by reason',
        [[`sum by (reason) (rate(cache_evictions_total{${K}}[${RATE}]))`, '{{reason}}']],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Keys and tombstones',
        [
          [`sum by (instance) (cache_keys{${K}})`, 'keys {{instance}}'],
          [`sum by (instance) (cache_tombstones{${K}})`, 'tombstones {{instance}}'],
        ],
        'short',
      ),
      8,
      8,
    );
    l.row('Cluster');
    l.add(
      series(
        'Ring ownership',
        [[`max by (peer) (cache_ring_ownership_ratio{${K}})`, '{{peer}}']],
        'percentunit',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Forwards and replications',
        [
          [`sum by (outcome) (rate(cache_forwards_total{${K}}[${RATE}]))`, 'forward {{outcome}}'],
          [`sum by (outcome) (rate(cache_replications_total{${K}}[${RATE}]))`, 'replicate {{outcome}}'],
        ],
        'ops',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Rebalancing',
        [
          [`sum by (direction) (rate(cache_migrations_total{${K}}[${RATE}]))`, '{{direction}}'],
          [`sum(cache_handoff_pending{${K}})`, 'handoff pending'],
        ],
        'short',
      ),
      8,
      8,
    );
    processPanels(l, K);
  },
);

// ---- proxy -------------------------------------------------------------------------------

const P = 'role="proxy", instance=~"$instance"';
/** Cacheable lookups answered from L1 or L2, over all lookups (hits and misses), per interval. */
const PROXY_HITS = `sum(rate(cache_l1_hits_total{${P}}[${RATE}])) + sum(rate(cache_l2_hits_total{${P}}[${RATE}]))`;
const proxy = dashboard(
  'strata-proxy',
  'Strata / Proxy',
  'The caching edge proxy (seed 004): requests by cache outcome, hit ratio, time to first byte, origin traffic, L1 memory and the raw-disk L2. Alert rules: deploy/proxy/prometheus/strata-proxy-rules.yml.',
  [variable('instance', 'Proxy', 'label_values(proxy_requests_total, instance)')],
  (l) => {
    l.row('Requests');
    l.add(stat('Requests/s', `sum(rate(proxy_requests_total{${P}}[${RATE}]))`, 'reqps'), 6, 4);
    l.add(
      stat(
        'Hit ratio',
        `(${PROXY_HITS}) / clamp_min(${PROXY_HITS} + sum(rate(cache_misses_total{${P}}[${RATE}])), 1e-9)`,
        'percentunit',
        'Cacheable requests answered from L1 or L2 over the dashboard interval (cache_hit_rate is the same since start).',
      ),
      6,
      4,
    );
    l.add(stat('In flight', `sum(proxy_inflight_requests{${P}})`, 'short'), 6, 4);
    l.add(
      stat(
        'TTFB p99',
        `histogram_quantile(0.99, sum by (le) (rate(proxy_ttfb_seconds_bucket{${P}}[${RATE}])))`,
        's',
      ),
      6,
      4,
    );
    l.add(
      series(
        'Requests by cache outcome',
        [[`sum by (cache) (rate(proxy_requests_total{${P}}[${RATE}]))`, '{{cache}}']],
        'reqps',
        'HIT, STALE, REVALIDATED, MISS, PASS (not cacheable), PURGE.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Responses by status',
        [[`sum by (status) (rate(proxy_requests_total{${P}}[${RATE}]))`, '{{status}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Hits by tier and misses',
        [
          [`sum(rate(cache_l1_hits_total{${P}}[${RATE}]))`, 'L1 (memory)'],
          [`sum(rate(cache_l2_hits_total{${P}}[${RATE}]))`, 'L2 (disk)'],
          [`sum(rate(cache_misses_total{${P}}[${RATE}]))`, 'miss'],
          [`sum(rate(proxy_coalesced_requests_total{${P}}[${RATE}]))`, 'coalesced onto a fill'],
        ],
        'ops',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Time to first byte and to last byte',
        [
          [
            `histogram_quantile(0.5, sum by (le, cache) (rate(proxy_ttfb_seconds_bucket{${P}}[${RATE}])))`,
            'TTFB p50 {{cache}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, cache) (rate(proxy_ttfb_seconds_bucket{${P}}[${RATE}])))`,
            'TTFB p99 {{cache}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, cache) (rate(proxy_request_duration_seconds_bucket{${P}}[${RATE}])))`,
            'last byte p99 {{cache}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.row('Origin');
    l.add(
      series(
        'Origin requests by kind',
        [[`sum by (kind) (rate(proxy_upstream_requests_total{${P}}[${RATE}]))`, '{{kind}}']],
        'reqps',
        'fill: a miss fetched to store; revalidate: a conditional request for a stale entry; pass and slice as named.',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Origin errors by kind',
        [[`sum by (kind) (rate(proxy_upstream_errors_total{${P}}[${RATE}]))`, '{{kind}}']],
        'reqps',
        'Connection failures and timeouts; stale entries may still be served (stale-if-error).',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Origin latency to headers',
        [
          [
            `histogram_quantile(0.5, sum by (le, kind) (rate(proxy_upstream_latency_seconds_bucket{${P}}[${RATE}])))`,
            'p50 {{kind}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, kind) (rate(proxy_upstream_latency_seconds_bucket{${P}}[${RATE}])))`,
            'p99 {{kind}}',
          ],
        ],
        's',
      ),
      8,
      8,
    );
    l.row('Cache stores');
    l.add(
      series(
        'L1 (memory)',
        [
          [`sum by (instance) (cache_l1_bytes{${P}})`, 'bytes {{instance}}'],
          [`sum by (instance) (cache_l1_entries{${P}})`, 'entries {{instance}}'],
        ],
        'short',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Raw-disk L2 blocks in use',
        [
          [
            `sum by (instance) (raw_disk_used_blocks{${P}}) / sum by (instance) (raw_disk_total_blocks{${P}} > 0)`,
            '{{instance}}',
          ],
        ],
        'percentunit',
        'Empty when L2 is not a raw disk (the raw_disk_* gauges are 0 then).',
        { defaults: { max: 1, min: 0 } },
      ),
      8,
      8,
    );
    l.add(
      series(
        'Raw-disk fragmentation',
        [[`max by (instance) (raw_disk_fragmentation_rate{${P}})`, '{{instance}}']],
        'percentunit',
        '1 − largest free extent / free blocks. Background defragmentation starts at 0.3; the alert fires above 0.4 for 15 min.',
        { defaults: { max: 1, min: 0 } },
      ),
      8,
      8,
    );
    l.add(
      series(
        'Raw-disk entries',
        [[`sum by (instance) (raw_disk_cache_entries{${P}})`, '{{instance}}']],
        'short',
      ),
      8,
      8,
    );
    l.add(
      series(
        'Cache store errors',
        [[`sum by (store, op) (rate(proxy_cache_errors_total{${P}}[${RATE}]))`, '{{store}} {{op}}']],
        'ops',
        'Each failure degrades that request to proxying from the origin.',
      ),
      8,
      8,
    );
    l.add(
      series(
        'PURGE and slice mismatches',
        [
          [`sum by (result) (rate(proxy_purge_requests_total{${P}}[${RATE}]))`, 'purge {{result}}'],
          [`sum(rate(proxy_slice_mismatches_total{${P}}[${RATE}]))`, 'slice mismatch'],
        ],
        'ops',
      ),
      8,
      8,
    );
    processPanels(l, P);
  },
);

// ---- client library panels (FUSE, S3 gateway) ---------------------------------------------

/** The Strata client inside a FUSE mount or the S3 gateway: where its bytes come from, its master calls. */
function clientPanels(l, sel) {
  l.row('Strata client');
  l.add(
    series(
      'Client read bytes by path',
      [[`sum by (path) (rate(strata_client_read_bytes_total{${sel}}[${RATE}]))`, '{{path}}']],
      'Bps',
      'local: short-circuit (block files opened directly); remote: block RPC to a worker; ufs: read through a worker from a mount (a cache miss).',
    ),
    8,
    8,
  );
  l.add(
    series(
      'Cache hit ratio (bytes)',
      [
        [
          `sum(rate(strata_client_read_bytes_total{${sel}, path!="ufs"}[${RATE}])) / clamp_min(sum(rate(strata_client_read_bytes_total{${sel}}[${RATE}])), 1e-9)`,
          'hit ratio',
        ],
      ],
      'percentunit',
      'Bytes read from the cache (local + remote) over all bytes read.',
      { defaults: { max: 1, min: 0 } },
    ),
    8,
    8,
  );
  l.add(
    series(
      'Client write bytes by path',
      [[`sum by (path) (rate(strata_client_write_bytes_total{${sel}}[${RATE}]))`, '{{path}}']],
      'Bps',
      'Each replica counted.',
    ),
    8,
    8,
  );
  l.add(
    series(
      'Master calls by result',
      [[`sum by (result) (rate(strata_client_master_calls_total{${sel}}[${RATE}]))`, '{{result}}']],
      'ops',
    ),
    8,
    8,
  );
  l.add(
    series(
      'Master call latency p99',
      [
        [
          `histogram_quantile(0.99, sum by (le, call) (rate(strata_client_master_call_seconds_bucket{${sel}}[${RATE}])))`,
          '{{call}}',
        ],
      ],
      's',
    ),
    8,
    8,
  );
  l.add(
    series(
      'Worker failovers and block replacements',
      [
        [`sum by (op) (rate(strata_client_worker_failovers_total{${sel}}[${RATE}]))`, 'failover {{op}}'],
        [`sum(rate(strata_client_block_replacements_total{${sel}}[${RATE}]))`, 'block placed again'],
      ],
      'ops',
      'A worker failed a read or write and another replica or placement was used; a block abandoned mid-write was placed on other workers.',
    ),
    8,
    8,
  );
}

// ---- FUSE --------------------------------------------------------------------------------

const F = 'role="fuse", instance=~"$instance"';
const fuse = dashboard(
  'strata-fuse',
  'Strata / FUSE',
  'FUSE mounts (`strata fuse`): requests, errors by errno, latency and bytes by operation, open files, and the Strata client inside. Alert rules: deploy/prometheus/strata-alerts.yml (strata-fuse).',
  [variable('instance', 'Mount', 'label_values(strata_fuse_mounted, instance)')],
  (l) => {
    l.row('Mount');
    l.add(stat('Mounted', `sum(strata_fuse_mounted{${F}})`, 'none', '1 per mount that is up.'), 4, 4);
    l.add(stat('Requests/s', `sum(rate(strata_fuse_requests_total{${F}}[${RATE}]))`, 'reqps'), 4, 4);
    l.add(
      stat(
        'Errors/s (not routine)',
        `sum(rate(strata_fuse_errors_total{${F}, errno!~"${ROUTINE_ERRNOS}"}[${RATE}]))`,
        'ops',
        'Errors other than the expected answers (ENOENT on a lookup, EEXIST, ENOTEMPTY…).',
      ),
      4,
      4,
    );
    l.add(stat('Read', `sum(rate(strata_fuse_bytes_total{${F}, op="read"}[${RATE}]))`, 'Bps'), 4, 4);
    l.add(stat('Written', `sum(rate(strata_fuse_bytes_total{${F}, op="write"}[${RATE}]))`, 'Bps'), 4, 4);
    l.add(stat('Open files', `sum(strata_fuse_open_handles{${F}})`, 'short'), 4, 4);
    l.row('Operations');
    l.add(
      series(
        'Requests by operation',
        [[`sum by (op) (rate(strata_fuse_requests_total{${F}}[${RATE}]))`, '{{op}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Errors by errno',
        [[`sum by (errno) (rate(strata_fuse_errors_total{${F}}[${RATE}]))`, '{{errno}}']],
        'ops',
        'ENOENT on getattr is a shell or program looking for a file that is not there; EIO means the cluster failed a request.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Errors by operation (not routine)',
        [
          [
            `sum by (op, errno) (rate(strata_fuse_errors_total{${F}, errno!~"${ROUTINE_ERRNOS}"}[${RATE}]))`,
            '{{op}} {{errno}}',
          ],
        ],
        'ops',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Latency by operation',
        [
          [
            `histogram_quantile(0.5, sum by (le, op) (rate(strata_fuse_request_seconds_bucket{${F}}[${RATE}])))`,
            'p50 {{op}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, op) (rate(strata_fuse_request_seconds_bucket{${F}}[${RATE}])))`,
            'p99 {{op}}',
          ],
        ],
        's',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Throughput',
        [[`sum by (op) (rate(strata_fuse_bytes_total{${F}}[${RATE}]))`, '{{op}}']],
        'Bps',
        'Bytes read and written through the mount.',
      ),
      12,
      8,
    );
    l.add(
      series('Open files', [[`sum by (instance) (strata_fuse_open_handles{${F}})`, '{{instance}}']], 'short'),
      12,
      8,
    );
    clientPanels(l, F);
    processPanels(l, F);
  },
);

// ---- S3 gateway --------------------------------------------------------------------------

const S = 'role="s3", instance=~"$instance"';
const s3 = dashboard(
  'strata-s3',
  'Strata / S3 gateway',
  'The S3 gateway (`strata s3`): requests by operation and status, errors, latency, bytes in and out, and the Strata client inside. Alert rules: deploy/prometheus/strata-alerts.yml (strata-s3).',
  [variable('instance', 'Gateway', 'label_values(strata_s3_requests_in_flight, instance)')],
  (l) => {
    l.row('Requests');
    l.add(stat('Requests/s', `sum(rate(strata_s3_requests_total{${S}}[${RATE}]))`, 'reqps'), 4, 4);
    l.add(
      stat(
        'Server errors (5xx)',
        `sum(rate(strata_s3_requests_total{${S}, status=~"5.."}[${RATE}])) / clamp_min(sum(rate(strata_s3_requests_total{${S}}[${RATE}])), 1e-9)`,
        'percentunit',
        'Share of requests answered 5xx.',
      ),
      4,
      4,
    );
    l.add(
      stat(
        'Client errors (4xx)',
        `sum(rate(strata_s3_requests_total{${S}, status=~"4.."}[${RATE}])) / clamp_min(sum(rate(strata_s3_requests_total{${S}}[${RATE}])), 1e-9)`,
        'percentunit',
        'Share of requests answered 4xx (NoSuchKey, AccessDenied, bad signatures…).',
      ),
      4,
      4,
    );
    l.add(stat('In flight', `sum(strata_s3_requests_in_flight{${S}})`, 'short'), 4, 4);
    l.add(stat('Received', `sum(rate(strata_s3_received_bytes_total{${S}}[${RATE}]))`, 'Bps'), 4, 4);
    l.add(stat('Sent', `sum(rate(strata_s3_sent_bytes_total{${S}}[${RATE}]))`, 'Bps'), 4, 4);
    l.add(
      series(
        'Requests by operation',
        [[`sum by (op) (rate(strata_s3_requests_total{${S}}[${RATE}]))`, '{{op}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Responses by status',
        [[`sum by (status) (rate(strata_s3_requests_total{${S}}[${RATE}]))`, '{{status}}']],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Errors by operation and status',
        [
          [
            `sum by (op, status) (rate(strata_s3_requests_total{${S}, status=~"[45].."}[${RATE}]))`,
            '{{op}} {{status}}',
          ],
        ],
        'reqps',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Latency by operation',
        [
          [
            `histogram_quantile(0.5, sum by (le, op) (rate(strata_s3_request_seconds_bucket{${S}}[${RATE}])))`,
            'p50 {{op}}',
          ],
          [
            `histogram_quantile(0.99, sum by (le, op) (rate(strata_s3_request_seconds_bucket{${S}}[${RATE}])))`,
            'p99 {{op}}',
          ],
        ],
        's',
        'Until the response ends (a large GET includes its transfer).',
      ),
      12,
      8,
    );
    l.add(
      series(
        'Bytes by operation',
        [
          [`sum by (op) (rate(strata_s3_received_bytes_total{${S}}[${RATE}]))`, 'in {{op}}'],
          [`sum by (op) (rate(strata_s3_sent_bytes_total{${S}}[${RATE}]))`, 'out {{op}}'],
        ],
        'Bps',
        'Received bytes are as sent, aws-chunked framing included.',
      ),
      12,
      8,
    );
    l.add(
      series(
        'In flight',
        [[`sum by (instance) (strata_s3_requests_in_flight{${S}})`, '{{instance}}']],
        'short',
      ),
      12,
      8,
    );
    clientPanels(l, S);
    processPanels(l, S);
  },
);

const DASHBOARDS = {
  'strata-master.json': master,
  'strata-workers.json': workers,
  'strata-kv.json': kv,
  'strata-proxy.json': proxy,
  'strata-fuse.json': fuse,
  'strata-s3.json': s3,
};

// `--check` writes nothing: it fails when a committed file differs from what this script makes
// (a hand edit of the JSON, or an edit here not regenerated). Formatting is ignored.
if (process.argv.includes('--check')) {
  const stale = Object.entries(DASHBOARDS)
    .filter(([name, d]) => {
      const path = join(here, name);
      if (!existsSync(path)) return true;
      return !isDeepStrictEqual(JSON.parse(readFileSync(path, 'utf8')), JSON.parse(JSON.stringify(d)));
    })
    .map(([name]) => name);
  if (stale.length > 0) {
    console.error(`stale dashboards: ${stale.join(', ')}; run node deploy/grafana/dashboards.mjs`);
    process.exit(1);
  }
} else {
  for (const [name, d] of Object.entries(DASHBOARDS)) {
    writeFileSync(join(here, name), `${JSON.stringify(d, null, 2)}\n`);
  }
}
