/**
 * Master metrics of mounts: block reads located by where their bytes were (the cache hit ratio
 * `report fluid-summary` shows), invalidations by --read-verify-ufs, and the state of mounts,
 * the persist queue and fill assignments.
 */
import { Counter, Gauge } from '../../common/metrics.js';
import type { Registry } from '../../common/metrics.js';

export interface MountGaugeSources {
  mounts: () => number;
  persistQueued: () => number;
  persistRunning: () => number;
  fillAssignments: () => number;
}

const MOUNT_METRIC_NAMES = [
  'strata_master_ufs_block_reads_total',
  'strata_master_ufs_invalidations_total',
  'strata_master_mounts',
  'strata_master_persist_queued',
  'strata_master_persist_running',
  'strata_master_fill_assignments',
] as const;

export class MountMetrics {
  readonly blockReads: Counter<'source'>;
  readonly invalidations: Counter;

  constructor(registry: Registry | undefined, sources: MountGaugeSources) {
    const registers = registry === undefined ? [] : [registry];
    // Each leadership term builds a new core (HA masters): its metrics replace the last term's,
    // whose gauges would otherwise read a core that no longer serves.
    for (const name of MOUNT_METRIC_NAMES) registry?.removeSingleMetric(name);
    this.blockReads = new Counter({
      name: 'strata_master_ufs_block_reads_total',
      help: 'Blocks of UFS-backed files located for reading, by where the bytes were: cache (a worker holds them) or ufs (read through)',
      labelNames: ['source'],
      registers,
    });
    this.invalidations = new Counter({
      name: 'strata_master_ufs_invalidations_total',
      help: 'Cached files dropped because their UFS object changed (read_verify_ufs)',
      registers,
    });
    const gauge = (name: string, help: string, fn: () => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(fn());
        },
      });
    };
    gauge('strata_master_mounts', 'UFS mounts', sources.mounts);
    gauge(
      'strata_master_persist_queued',
      'Files of async mounts waiting to be persisted (first page)',
      sources.persistQueued,
    );
    gauge('strata_master_persist_running', 'Persist tasks running', sources.persistRunning);
    gauge(
      'strata_master_fill_assignments',
      'Blocks assigned to a worker for read-through',
      sources.fillAssignments,
    );
  }
}
