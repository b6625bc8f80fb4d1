/**
 * `strata local` (what `npm start` runs): an all-in-one cluster on this machine — a master and
 * two workers on the embedded store, each its own process, under ./strata-data (or --data-dir),
 * on the default ports so `strata fs …` without options reaches it. The first worker has a MEM
 * tier on /dev/shm (when it is a tmpfs with room) above a DISK tier; the second a DISK tier.
 * Ctrl-C or SIGTERM stops everything cleanly; the data stays for the next start.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { StrataError, UsageError } from '../../common/errors.js';
import { parseSize } from '../../common/units.js';
import { action, loadCliConfig } from '../context.js';
import { EXIT_INTERRUPTED } from '../exit-codes.js';
import { LOCAL_HOST, checkPorts, describeTiers, planLayout, roleConfigText } from '../local/layout.js';
import type { LocalLayout } from '../local/layout.js';
import { Supervisor } from '../local/supervisor.js';

/** Grace per role on shutdown before SIGKILL. */
const STOP_GRACE_MS = 15_000;
const BIN = fileURLToPath(new URL('../main.js', import.meta.url));
/** Environment overrides that would make a child ignore its generated config file. */
const ENV_OVERRIDES = [
  'STRATA_CONF_FILE',
  'STRATA_MASTER_HOSTNAME',
  'STRATA_WORKER_HOSTNAME',
  'STRATA_CLIENT_HOSTNAME',
  'STRATA_MASTER_ENDPOINTS',
];

interface LocalOptions {
  dataDir: string;
  mem: string;
}

export function register(program: Command): void {
  program
    .command('local')
    .description('start an all-in-one local cluster (a master and two workers) on the embedded store')
    .option('--data-dir <dir>', 'where the cluster keeps its metadata, blocks and logs', './strata-data')
    .option('--mem <size>', 'MEM tier of the first worker on /dev/shm (0 disables)', '1GB')
    .action(
      action(async (opts: LocalOptions, cmd: Command) => {
        const memBytes = parseSize(opts.mem);
        if (memBytes === undefined)
          throw new UsageError(`--mem: expected a size such as 512MB or 1GB, or 0 (got "${opts.mem}")`);
        const { config } = loadCliConfig(cmd);
        const layout = await planLayout(config, { dataDir: opts.dataDir, memBytes });
        mkdirSync(layout.dataDir, { recursive: true });
        await claimDataDir(layout);
        try {
          await checkPorts(layout);
        } catch (err) {
          rmSync(layout.pidFile, { force: true });
          throw err;
        }
        for (const r of layout.roles) {
          mkdirSync(dirname(r.confPath), { recursive: true });
          writeFileSync(r.confPath, roleConfigText(config, layout, r));
        }
        const env = { ...process.env };
        for (const k of ENV_OVERRIDES) delete env[k];
        const say = (line: string): void => void process.stderr.write(`strata local: ${line}\n`);
        const sup = new Supervisor({
          bin: BIN,
          env,
          say,
          onPids: (pids) => writePidFile(layout, pids),
        });
        let stopping: Promise<void> | undefined;
        const stop = (why: string): Promise<void> => {
          stopping ??= (async () => {
            say(`${why}: stopping the workers, then the master…`);
            await sup.stop(['worker-1', 'worker-0', 'master'], STOP_GRACE_MS);
            rmSync(layout.pidFile, { force: true });
            say('stopped; data kept in ' + shown(layout.dataDir));
          })();
          return stopping;
        };
        const onSignal = (signal: NodeJS.Signals): void => {
          if (stopping !== undefined) {
            say(`${signal} again: killing everything now`);
            sup.killAll();
            rmSync(layout.pidFile, { force: true });
            process.exit(EXIT_INTERRUPTED);
          }
          void stop(signal).then(() => process.exit(0));
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          for (const r of layout.roles) {
            await sup.start({
              name: r.name,
              args: [r.role, '--conf', r.confPath],
              logPath: r.logPath,
              webPort: r.webPort,
              host: LOCAL_HOST,
            });
          }
        } catch (err) {
          await stop('start failed');
          throw err;
        }
        printBanner(layout);
        // Keep running until a signal stops us.
        await new Promise<void>(() => undefined);
      }),
    );
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : `./${rel}`;
}

function printBanner(layout: LocalLayout): void {
  const out: string[] = [];
  out.push(`Strata local cluster is running (data in ${shown(layout.dataDir)})`);
  for (const r of layout.roles) {
    const tiers = r.role === 'worker' ? `  tiers: ${describeTiers(layout, r)}` : '';
    out.push(
      `  ${r.name.padEnd(8)}  rpc ${LOCAL_HOST}:${r.rpcPort}  web http://${LOCAL_HOST}:${r.webPort}  log ${shown(r.logPath)}${tiers}`,
    );
  }
  out.push('');
  out.push('Try, in another terminal:');
  out.push('  npx strata fs put README.md /hello/README.md');
  out.push('  npx strata fs cat /hello/README.md');
  out.push('  npx strata report');
  out.push('');
  out.push('Press Ctrl-C to stop (the data stays for the next start).');
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * One `strata local` per data directory. A pid file names the supervisor and its children; a
 * live supervisor is an error, while children left behind by one that was killed are stopped.
 */
async function claimDataDir(layout: LocalLayout): Promise<void> {
  if (existsSync(layout.pidFile)) {
    let recorded: { pid?: number; children?: number[] } = {};
    try {
      recorded = JSON.parse(readFileSync(layout.pidFile, 'utf8')) as typeof recorded;
    } catch {
      // unreadable: treat as stale
    }
    if (recorded.pid !== undefined && recorded.pid !== process.pid && isOurs(recorded.pid, [BIN, 'local'])) {
      throw new StrataError(
        'STRATA_LOCAL_RUNNING',
        `strata local is already running with ${shown(layout.dataDir)} (pid ${recorded.pid}); stop it first (Ctrl-C in its terminal, or kill ${recorded.pid})`,
      );
    }
    const left = (recorded.children ?? []).filter((pid) => isOurs(pid, [BIN, `${layout.dataDir}/conf/`]));
    for (const pid of left) {
      process.stderr.write(`strata local: stopping pid ${pid}, left running by a previous strata local\n`);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (left.some((pid) => isOurs(pid, [BIN])) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const pid of left.filter((p) => isOurs(p, [BIN]))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  writePidFile(layout, []);
}

function writePidFile(layout: LocalLayout, children: number[]): void {
  writeFileSync(layout.pidFile, `${JSON.stringify({ pid: process.pid, children })}\n`);
}

/** Whether `pid` is alive and its command line has every one of `parts` (our entry script, our conf dir). */
function isOurs(pid: number, parts: readonly string[]): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return parts.every((p) => cmdline.includes(p));
  } catch {
    return false;
  }
}
