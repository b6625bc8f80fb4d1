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

export function registerMasterMetrics(registry: Registry, core: MasterCore, store: MetaStore): void {
  const registers = [registry];
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name: `strata_master_${name}`,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  gauge(
    'capacity',
    'Bytes of capacity of the workers that count (not lost or decommissioned)',
    () => clusterTotals(core.registry).capacityBytes,
  );
  gauge('available', 'Bytes available on those workers', () => clusterTotals(core.registry).availableBytes);
  gauge('fs_used', 'Bytes used on those workers', () => clusterTotals(core.registry).usedBytes);
  gauge(
    'num_blocks',
    'Blocks that belong to files (committed or being written)',
    () => core.namespace.counts().blocks,
  );
  gauge('cached_blocks', 'Blocks with at least one known copy on a worker', () => core.blocks.map.size);
  gauge('replicas', 'Block copies known on workers', () => core.blocks.map.replicaCount);
  gauge('inode_dir_num', 'Directories in the namespace', () => core.namespace.counts().dirs);
  gauge('inode_file_num', 'Files in the namespace', () => core.namespace.counts().files);
  gauge('inode_symlink_num', 'Symbolic links in the namespace', () => core.namespace.counts().symlinks);
  gauge('leases_open', 'Files open for writing under a lease', () => core.namespace.openLeases().length);
  gauge('replication_pending', 'Blocks waiting for a replication check', () => core.blocks.stats().needed);
  gauge('replication_inflight', 'Blocks with copies being made', () => core.blocks.stats().inflight);
  gauge('meta_revision', 'Revision of the metadata store', () => store.stats().revision);
  gauge('meta_size_bytes', 'Bytes the metadata store uses on disk', () => store.stats().sizeBytes ?? 0);
  gauge('cache_inodes', 'Inodes held by the namespace cache', () => core.namespace.cache.stats().inodes);
  new Gauge({
    name: 'strata_master_worker_num',
    help: 'Workers by state',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, n] of Object.entries(core.registry.countByState())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'strata_master_cache_lookups',
    help: 'Namespace cache lookups since start, by kind and result',
    labelNames: ['kind', 'result'],
    registers,
    collect() {
      const s = core.namespace.cache.stats();
      this.set({ kind: 'inode', result: 'hit' }, s.inodeHits);
      this.set({ kind: 'inode', result: 'miss' }, s.inodeMisses);
      this.set({ kind: 'dentry', result: 'hit' }, s.dentryHits);
      this.set({ kind: 'dentry', result: 'miss' }, s.dentryMisses);
    },
  });
}
