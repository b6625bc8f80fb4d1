/**
 * `strata report [json|capacity|used|available|fluid-summary]`: the cluster at a glance (masters,
 * workers by state, capacity per tier, namespace counts), per-worker capacity, used or available
 * space, or the cache against its UFS mounts as Fluid reads it (fluid-summary.ts).
 */
import type { Command } from 'commander';
import type { ClusterInfo } from '../../client/filesystem.js';
import { UsageError } from '../../common/errors.js';
import { formatDuration } from '../../common/units.js';
import type { WorkerInfo } from '../../protocol/types.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { withFileSystem } from '../client.js';
import { sizeText, table, timeText } from '../format.js';
import { fluidSummary } from './fluid-summary.js';

const VIEWS = ['summary', 'json', 'capacity', 'used', 'available', 'fluid-summary'] as const;
type View = (typeof VIEWS)[number];

export function register(program: Command): void {
  program
    .command('report')
    .description('cluster report: summary (default), json, or per-worker capacity, used or available')
    .argument('[view]', `one of ${VIEWS.join(', ')}`, 'summary')
    .option('-H, --human', 'sizes as 1.5GiB (default for the summary)')
    .action(
      action(async (viewText: string, opts: { human?: boolean }, cmd: Command) => {
        const view = VIEWS.find((v) => v === viewText.toLowerCase());
        if (view === undefined) {
          throw new UsageError(`report: unknown view "${viewText}" (expected ${VIEWS.join(', ')})`);
        }
        await withFileSystem(cmd, async (fs) => {
          if (view === 'fluid-summary') {
            printJson(fluidSummary(await fs.cacheReport()));
            return;
          }
          const [info, workers] = await Promise.all([fs.clusterInfo(), fs.listWorkers()]);
          if (view === 'json' || globalOptions(cmd).json === true) {
            printJson(
              view === 'summary' || view === 'json' ? { cluster: info, workers } : perWorker(workers, view),
            );
            return;
          }
          if (view === 'summary') printSummary(info, workers);
          else printPerWorker(workers, view, opts.human === true);
        });
      }),
    );
}

function pct(used: number, cap: number): string {
  return cap > 0 ? `${((used / cap) * 100).toFixed(1)}%` : '-';
}

function printSummary(info: ClusterInfo, workers: WorkerInfo[]): void {
  const leader = info.masters.find((m) => m.role === 'leader');
  const rows: [string, string][] = [
    ['cluster id', info.clusterId],
    ['version', info.version],
    ['masters', info.masters.map((m) => `${m.address} (${m.role})`).join(', ') || '-'],
    ['leader', leader?.address ?? '(none)'],
    ['uptime', formatDuration(Math.max(0, Date.now() - info.startedAtMs))],
    [
      'workers',
      `${info.workers.live} live, ${info.workers.blacklisted} blacklisted, ${info.workers.lost} lost, ${info.workers.decommissioning} decommissioning`,
    ],
    ['capacity', sizeText(info.capacityBytes, true)],
    ['used', `${sizeText(info.usedBytes, true)} (${pct(info.usedBytes, info.capacityBytes)})`],
    ['available', sizeText(info.availableBytes, true)],
    ['files', String(info.files)],
    ['directories', String(info.dirs)],
    ['blocks', String(info.blocks)],
  ];
  for (const t of info.tiers) {
    rows.push([
      `tier ${t.storageType}`,
      `${sizeText(t.usedBytes, true)} used of ${sizeText(t.capacityBytes, true)} (${pct(t.usedBytes, t.capacityBytes)}), ${sizeText(t.availableBytes, true)} available`,
    ]);
  }
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) println(`${k.padStart(w)}: ${v}`);
  if (workers.length === 0) println('\nno workers have registered yet');
}

function perWorker(
  workers: WorkerInfo[],
  view: Exclude<View, 'summary' | 'json' | 'fluid-summary'>,
): unknown[] {
  return workers.map((w) => ({
    worker: `${w.address.hostname}:${w.address.rpcPort}`,
    workerId: w.address.workerId,
    state: w.state,
    ...(view === 'capacity' ? { capacityBytes: w.capacityBytes, tiers: w.tiers } : {}),
    ...(view === 'used' ? { usedBytes: w.usedBytes, capacityBytes: w.capacityBytes, blocks: w.blocks } : {}),
    ...(view === 'available' ? { availableBytes: w.availableBytes, capacityBytes: w.capacityBytes } : {}),
  }));
}

function printPerWorker(
  workers: WorkerInfo[],
  view: Exclude<View, 'summary' | 'json' | 'fluid-summary'>,
  human: boolean,
): void {
  const value = (w: WorkerInfo): number =>
    view === 'capacity' ? w.capacityBytes : view === 'used' ? w.usedBytes : w.availableBytes;
  const sorted = [...workers].sort((a, b) => value(b) - value(a));
  const head = view === 'capacity' ? 'CAPACITY' : view === 'used' ? 'USED' : 'AVAILABLE';
  const share = view !== 'capacity';
  const rows = [['WORKER', 'STATE', head, ...(share ? ['OF CAPACITY'] : []), 'TIERS', 'LAST HEARTBEAT']];
  for (const w of sorted) {
    rows.push([
      `${w.address.hostname}:${w.address.rpcPort}`,
      w.state,
      sizeText(value(w), human),
      ...(share ? [pct(value(w), w.capacityBytes)] : []),
      w.tiers.map((t) => `${t.storageType}:${sizeText(t.capacityBytes, true)}`).join(',') || '-',
      timeText(w.lastHeartbeatMs),
    ]);
  }
  for (const line of table(rows, new Set(share ? [2, 3] : [2]))) println(line);
}
