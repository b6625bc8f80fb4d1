/**
 * The master's Prometheus metrics. Names follow the peer's dashboards with a `strata_master_`
 * prefix (`strata_master_capacity`, `…_available`, `…_fs_used`, `…_num_blocks`, `…_worker_num`,
 * `…_inode_dir_num`, `…_inode_file_num`), sizes in bytes. Values are read when scraped, so
 * they are never stale and cost nothing between scrapes. RPC counts and latency per call come
 * from the RPC server (`strata_rpc_server_requests_total`, `…_request_duration_seconds`, label
 * role="master").
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { MetaStore } from '../meta/index.js';
import type { MasterCore } from './core.js';
import { clusterTotals } from './service.js';

/**
 * Registers the gauges; `current` is the core of this master's term as leader (undefined on a
 * standby, whose namespace and worker figures read 0 — `strata_master_is_leader` tells them apart).
 */
export function registerMasterMetrics(
  registry: Registry,
  current: () => MasterCore | undefined,
  store: MetaStore,
): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: (core: MasterCore) => number): void => {
    new Gauge({
      name: `strata_master_${name}`,
      help,
      registers,
      collect() {
        const core = current();
        this.set(core === undefined ? 0 : read(core));
      },
    });
  };
  gauge(
    'capacity',
    'Bytes of capacity of the workers that count (not lost or decommissioned)',
    (core) => clusterTotals(core.registry).capacityBytes,
  );
  gauge(
    'available',
    'Bytes available on those workers',
    (core) => clusterTotals(core.registry).availableBytes,
  );
  gauge('fs_used', 'Bytes used on those workers', (core) => clusterTotals(core.registry).usedBytes);
  gauge(
    'num_blocks',
    'Blocks that belong to files (committed or being written)',
    (core) => core.namespace.counts().blocks,
  );
  gauge('cached_blocks', 'Blocks with at least one known copy on a worker', (core) => core.blocks.map.size);
  gauge('replicas', 'Block copies known on workers', (core) => core.blocks.map.replicaCount);
  gauge('inode_dir_num', 'Directories in the namespace', (core) => core.namespace.counts().dirs);
  gauge('inode_file_num', 'Files in the namespace', (core) => core.namespace.counts().files);
  gauge('inode_symlink_num', 'Symbolic links in the namespace', (core) => core.namespace.counts().symlinks);
  gauge('leases_open', 'Files open for writing under a lease', (core) => core.namespace.openLeases().length);
  gauge(
    'replication_pending',
    'Blocks waiting for a replication check',
    (core) => core.blocks.stats().needed,
  );
  gauge('replication_inflight', 'Blocks with copies being made', (core) => core.blocks.stats().inflight);
  gauge('meta_revision', 'Revision of the metadata store', () => store.stats().revision);
  gauge(
    'meta_transactions',
    'Metadata store transactions since start (reads and writes)',
    () => store.stats().transactions,
  );
  gauge(
    'meta_commits',
    'Physical commits of the metadata store since start (one commit carries a group of transactions)',
    () => store.stats().commits,
  );
  gauge(
    'meta_commit_seconds',
    'Seconds the physical commits of the metadata store took since start, each from its first write to its durable end (0 when the engine does not measure it)',
    () => store.stats().commitSeconds ?? 0,
  );
  gauge('meta_size_bytes', 'Bytes the metadata store uses on disk', () => store.stats().sizeBytes ?? 0);
  gauge('cache_inodes', 'Inodes held by the namespace cache', (core) => core.namespace.cache.stats().inodes);
  new Gauge({
    name: 'strata_master_worker_num',
    help: 'Workers by state',
    labelNames: ['state'],
    registers,
    collect() {
      const core = current();
      if (core === undefined) return;
      for (const [state, n] of Object.entries(core.registry.countByState())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'strata_master_cache_lookups',
    help: 'Namespace cache lookups since start, by kind and result',
    labelNames: ['kind', 'result'],
    registers,
    collect() {
      const core = current();
      if (core === undefined) return;
      const s = core.namespace.cache.stats();
      this.set({ kind: 'inode', result: 'hit' }, s.inodeHits);
      this.set({ kind: 'inode', result: 'miss' }, s.inodeMisses);
      this.set({ kind: 'dentry', result: 'hit' }, s.dentryHits);
      this.set({ kind: 'dentry', result: 'miss' }, s.dentryMisses);
    },
  });
}
