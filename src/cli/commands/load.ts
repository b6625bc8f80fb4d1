/**
 * `strata load <path> [--watch] [--replicas N]`, `strata load --status ID`, `strata load --cancel ID`,
 * `strata load` (list jobs): warming a mounted path from its UFS. The master runs the job
 * (per-block tasks spread over the workers); the CLI submits it and, with --watch, polls it and
 * draws a progress line on a terminal (files, bytes, rate, ETA). Ctrl-C while watching cancels
 * the job. `--replicas N` (Fluid's DataLoad `replicas`) leaves N cached copies of every block
 * instead of one. `--json` prints the job's status as the master reports it.
 */
import type { Command } from 'commander';
import type { FileSystem } from '../../client/filesystem.js';
import { StrataError, UsageError } from '../../common/errors.js';
import { formatBytes, formatDuration } from '../../common/units.js';
import { MAX_LOAD_REPLICAS } from '../../protocol/mount-calls.js';
import type { LoadJobStatus } from '../../protocol/ufs-types.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { cliPath, withFileSystem } from '../client.js';
import { EXIT_INTERRUPTED } from '../exit-codes.js';
import { PROGRESS_REDRAW_MS } from '../progress.js';
import { table, timeText } from '../format.js';

/** How often --watch asks the master for the job's status. */
export const LOAD_POLL_MS = 250;
const BAR_CELLS = 24;

interface LoadCliOptions {
  watch?: boolean;
  status?: string;
  cancel?: string;
  replicas?: string;
}

export function register(program: Command): void {
  program
    .command('load')
    .description('load a mounted path (file or directory) from its UFS into the cache, as a master job')
    .argument('[path]', 'a path under a UFS mount')
    .option('-w, --watch', 'follow the job until it ends, with a progress line on a terminal')
    .option('--status <jobId>', 'show a job')
    .option('--cancel <jobId>', 'cancel a job (blocks already loaded stay cached)')
    .option(
      '--replicas <n>',
      `cached copies of each block the job leaves (1-${MAX_LOAD_REPLICAS}; at most the live workers; default 1)`,
    )
    .action(
      action(async (path: string | undefined, opts: LoadCliOptions, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const modes = [path !== undefined, opts.status !== undefined, opts.cancel !== undefined].filter(
          Boolean,
        );
        if (modes.length > 1) throw new UsageError('load: give one of <path>, --status ID or --cancel ID');
        if (opts.replicas !== undefined && path === undefined) {
          throw new UsageError('load: --replicas goes with a <path> to load');
        }
        const replicas = opts.replicas === undefined ? undefined : loadReplicas(opts.replicas);
        if (opts.watch === true && opts.cancel !== undefined) {
          throw new UsageError('load: --watch follows a job being loaded; it does not go with --cancel');
        }
        await withFileSystem(cmd, async (fs) => {
          if (opts.cancel !== undefined) {
            const s = await fs.cancelLoad(opts.cancel);
            if (json) printJson(s);
            else println(`job ${s.jobId} (${s.path}): ${s.state}`);
            return;
          }
          if (path === undefined && opts.status === undefined) {
            const jobs = await fs.listLoads();
            if (json) printJson(jobs);
            else printJobs(jobs);
            return;
          }
          let s =
            opts.status !== undefined
              ? await fs.loadStatus(opts.status)
              : await fs.load(cliPath(path ?? '/'), replicas === undefined ? {} : { replicas });
          if (opts.watch === true) s = await watch(fs, s, json);
          if (json) printJson(s);
          else if (opts.watch === true) println(summary(s));
          else if (opts.status !== undefined) printStatus(s);
          else
            println(
              `load job ${s.jobId} started for ${s.path} (strata load --status ${s.jobId}, --cancel ${s.jobId})`,
            );
          if (opts.watch === true || opts.status !== undefined) {
            if (s.state === 'failed') {
              throw new StrataError(
                'STRATA_LOAD_FAILED',
                `job ${s.jobId} failed: ${s.error ?? 'see the master log'}`,
              );
            }
          }
        });
      }),
    );
}

/** `--replicas` as a number, or a usage error naming what is allowed. */
function loadReplicas(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n < 1 || n > MAX_LOAD_REPLICAS) {
    throw new UsageError(
      `load: --replicas expects an integer from 1 to ${MAX_LOAD_REPLICAS} (got "${text}")`,
    );
  }
  return n;
}

/** Polls a job until it ends; draws progress on a terminal; Ctrl-C cancels it. */
async function watch(fs: FileSystem, first: LoadJobStatus, json: boolean): Promise<LoadJobStatus> {
  const out = process.stderr;
  const draw = !json && out.isTTY === true;
  let s = first;
  let interrupted = false;
  const onSigint = (): void => {
    interrupted = true;
  };
  process.on('SIGINT', onSigint);
  let lastDraw = 0;
  try {
    while (!isFinished(s)) {
      if (interrupted) {
        s = await fs.cancelLoad(s.jobId);
        process.exitCode = EXIT_INTERRUPTED;
        break;
      }
      const now = Date.now();
      if (draw && now - lastDraw >= PROGRESS_REDRAW_MS) {
        lastDraw = now;
        out.write(`\r\x1b[2K${loadLine(s, now).slice(0, Math.max(20, (out.columns ?? 100) - 1))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, LOAD_POLL_MS));
      s = await fs.loadStatus(s.jobId);
    }
  } finally {
    process.off('SIGINT', onSigint);
    if (draw && lastDraw > 0) out.write('\r\x1b[2K');
  }
  return s;
}

function isFinished(s: LoadJobStatus): boolean {
  return s.state === 'completed' || s.state === 'failed' || s.state === 'cancelled';
}

/** The progress line: `load /p  [====    ]  40%  3/10 files  1.0GiB/2.5GiB  120MiB/s  ETA 12s`. */
export function loadLine(s: LoadJobStatus, now: number): string {
  const elapsedMs = Math.max(1, (s.endedAtMs ?? now) - s.startedAtMs);
  const rate = (s.loadedBytes * 1000) / elapsedMs;
  const frac = s.totalBytes > 0 ? Math.min(1, s.doneBytes / s.totalBytes) : s.state === 'scanning' ? 0 : 1;
  const cells = Math.round(frac * BAR_CELLS);
  const parts = [
    `load ${s.path}`,
    `[${'='.repeat(cells)}${' '.repeat(BAR_CELLS - cells)}]`,
    `${(frac * 100).toFixed(0).padStart(3)}%`,
    `${s.doneFiles}/${s.totalFiles}${s.state === 'scanning' ? '+' : ''} files`,
    `${formatBytes(s.doneBytes)}/${formatBytes(s.totalBytes)}`,
    `${formatBytes(Math.round(rate))}/s`,
  ];
  if (s.state !== 'scanning' && rate > 0 && s.doneBytes < s.totalBytes) {
    parts.push(`ETA ${formatDuration(Math.round(((s.totalBytes - s.doneBytes) / rate) * 1000))}`);
  }
  if (s.failedBlocks > 0) parts.push(`${s.failedBlocks} failed`);
  return parts.join('  ');
}

function summary(s: LoadJobStatus): string {
  const ms = Math.max(1, (s.endedAtMs ?? Date.now()) - s.startedAtMs);
  return `job ${s.jobId} ${s.state}: ${s.doneFiles}/${s.totalFiles} files, ${formatBytes(s.doneBytes)} of ${formatBytes(
    s.totalBytes,
  )} cached, ${formatBytes(s.loadedBytes)} loaded in ${formatDuration(ms)} (${formatBytes(
    Math.round((s.loadedBytes * 1000) / ms),
  )}/s)${s.failedBlocks > 0 ? `, ${s.failedBlocks} block(s) failed` : ''}`;
}

function printStatus(s: LoadJobStatus): void {
  const rows: [string, string][] = [
    ['job', s.jobId],
    ['path', s.path],
    ['state', s.state],
    ['files', `${s.doneFiles} of ${s.totalFiles} cached`],
    [
      'bytes',
      `${s.doneBytes} of ${s.totalBytes} cached (${formatBytes(s.doneBytes)} of ${formatBytes(s.totalBytes)})`,
    ],
    ['loaded', `${s.loadedBytes} (${formatBytes(s.loadedBytes)}) fetched from the UFS`],
    ['failed blocks', String(s.failedBlocks)],
    ['started', timeText(s.startedAtMs)],
  ];
  if (s.endedAtMs !== undefined) rows.push(['ended', timeText(s.endedAtMs)]);
  if (s.error !== undefined) rows.push(['error', s.error]);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) println(`${k.padStart(w)}: ${v}`);
}

function printJobs(jobs: readonly LoadJobStatus[]): void {
  if (jobs.length === 0) {
    println('no load jobs');
    return;
  }
  const rows = [['JOB', 'STATE', 'FILES', 'CACHED', 'TOTAL', 'STARTED', 'PATH']];
  for (const j of jobs) {
    rows.push([
      j.jobId,
      j.state,
      `${j.doneFiles}/${j.totalFiles}`,
      formatBytes(j.doneBytes),
      formatBytes(j.totalBytes),
      timeText(j.startedAtMs),
      j.path,
    ]);
  }
  for (const line of table(rows, new Set([2, 3, 4]))) println(line);
}
