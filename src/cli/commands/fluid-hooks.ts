/**
 * Fluid's CacheRuntime hooks: `strata fluid mount-ufs` (executionEntries.mountUFS: make the
 * mount table hold exactly the Dataset's UFS mounts, print `{"mounted":[…]}`),
 * `strata fluid report-summary` (executionEntries.reportSummary: the cache summary JSON) and
 * `strata fluid dataload` (the DataLoad Job: load every path of FLUID_DATALOAD_DATA_PATH and
 * follow the jobs). Stdout carries only what Fluid parses; everything else goes to stderr.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { FileSystem } from '../../client/filesystem.js';
import type { RawOverride } from '../../common/config/index.js';
import { loadConfig, parseEndpoints } from '../../common/config/index.js';
import { ConfigError, FsError, StrataError, UsageError } from '../../common/errors.js';
import type { ConfigProblem } from '../../common/errors.js';
import type { LoadJobStatus } from '../../protocol/ufs-types.js';
import {
  CACHE_CONFIG_PATHS,
  cacheConfigPath,
  dataloadTarget,
  datasetMasterEndpoints,
  fileSecretReader,
  masterAddresses,
  parseRuntimeSpec,
  planMountSync,
  readJsonFile,
  wantedMounts,
} from '../../fluid/index.js';
import { action, commandPath, globalOptions, loadCliConfig, reportError } from '../context.js';
import { fluidSummary } from './fluid-summary.js';
import { LOAD_POLL_MS, loadLine } from './load.js';

/** The master's RPC port when a DataLoad names the dataset (the CacheRuntimeClass's default). */
const DEFAULT_MASTER_RPC_PORT = 8995;
/** How often a DataLoad Job logs its progress when stderr is not a terminal (a pod log). */
const DATALOAD_LOG_INTERVAL_MS = 5_000;
/** Most masters `--master-replicas` may name (an HA set is 3 or 5). */
const MAX_MASTER_REPLICAS = 7;

/**
 * A client from the command's configuration. With `confOptional`, a $STRATA_CONF_FILE that does
 * not exist is skipped: the image names one, but a DataLoad Job mounts no configuration and finds
 * the master through --dataset or STRATA_MASTER_ENDPOINTS instead.
 */
async function withClient<T>(
  cmd: Command,
  extra: RawOverride[],
  fn: (fs: FileSystem) => Promise<T>,
  confOptional = false,
): Promise<T> {
  const envConf = process.env.STRATA_CONF_FILE;
  const skipEnvConf =
    confOptional &&
    globalOptions(cmd).conf === undefined &&
    envConf !== undefined &&
    envConf !== '' &&
    !existsSync(envConf);
  const { config } = skipEnvConf
    ? loadConfig({ env: { ...process.env, STRATA_CONF_FILE: undefined }, overrides: extra })
    : loadCliConfig(cmd, extra);
  const fs = FileSystem.create({ config });
  try {
    return await fn(fs);
  } finally {
    await fs.close();
  }
}

interface MountUfsOptions {
  config?: string;
}

interface DataloadOptions {
  dataset?: string;
  masterReplicas?: string;
}

export function registerHooks(fluid: Command): void {
  fluid
    .command('mount-ufs')
    .description(
      "CacheRuntime mountUFS hook: mount the Dataset's UFS mounts (runtime.json), unmount the ones it no longer lists",
    )
    .option(
      '--config <file>',
      `Fluid's runtime.json (default: $FLUID_RUNTIME_CONFIG_PATH, then ${CACHE_CONFIG_PATHS.join(', then ')})`,
    )
    .action(
      action(async (opts: MountUfsOptions, cmd: Command) => {
        const source = cacheConfigPath(opts.config, process.env);
        if (source === undefined) {
          throw new StrataError(
            'STRATA_BAD_CONFIG',
            `no CacheRuntime runtime.json found (looked at ${CACHE_CONFIG_PATHS.join(', ')}); pass --config FILE`,
          );
        }
        const spec = parseRuntimeSpec(readJsonFile(source), source);
        const wanted = wantedMounts(spec.mounts, fileSecretReader, source);
        const mounted = await withClient(cmd, [], async (fs) => {
          const sync = planMountSync(wanted, await fs.listMounts());
          const where = commandPath(cmd);
          const debug = globalOptions(cmd).debug === true;
          let failed = 0;
          const paths: string[] = sync.keep.flatMap((w) => (w.path === undefined ? [] : [w.path]));
          for (const p of sync.unmount) {
            await fs.unmount(p);
            process.stderr.write(`strata: ${where}: unmounted ${p}\n`);
          }
          for (const w of sync.mount) {
            try {
              const m = await fs.mount(w.uri, w.path, {
                options: w.options,
                ...(w.readOnly ? { mountReadOnly: true } : {}),
              });
              paths.push(m.path);
              process.stderr.write(
                `strata: ${where}: mounted ${m.uri} at ${m.path}${m.mountReadOnly === true ? ' (read-only)' : ''}\n`,
              );
            } catch (err) {
              if (!(err instanceof FsError)) throw err;
              // The UFS refused (unreachable, credentials, bucket): say so and try the others.
              failed++;
              reportError(new StrataError('STRATA_MOUNT_REFUSED', `${w.uri}: ${err.message}`), where, debug);
            }
          }
          if (failed > 0) {
            throw new StrataError(
              'STRATA_MOUNT_REFUSED',
              `${failed} of ${wanted.length} mount(s) refused; the others are mounted`,
            );
          }
          return paths;
        });
        // Exactly what Fluid parses: one compact JSON object, the paths in the Dataset's order.
        const order = wanted.map((w) => w.path);
        mounted.sort((a, b) => order.indexOf(a) - order.indexOf(b));
        process.stdout.write(`${JSON.stringify({ mounted })}\n`);
      }),
    );

  fluid
    .command('report-summary')
    .description('CacheRuntime reportSummary hook: the cache summary JSON Fluid shows on the Dataset')
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const summary = await withClient(cmd, [], async (fs) => fluidSummary(await fs.cacheReport()));
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      }),
    );

  fluid
    .command('dataload')
    .description(
      'DataLoad Job: load every path of $FLUID_DATALOAD_DATA_PATH (colon-joined, default /) into the cache, with the copies of $FLUID_DATALOAD_PATH_REPLICAS',
    )
    .option(
      '--dataset <name>',
      'reach the master as <name>-master-<i>.svc-<name>-master (the Job runs in the Dataset namespace)',
    )
    .option('--master-replicas <n>', `masters of the dataset (1-${MAX_MASTER_REPLICAS}, default 1)`)
    .action(
      action(async (opts: DataloadOptions, cmd: Command) => {
        const target = dataloadTarget(process.env);
        const where = commandPath(cmd);
        const extra = dataloadMasters(cmd, opts);
        await withClient(
          cmd,
          extra,
          async (fs) => {
            let failed = 0;
            for (const { path, replicas } of target.paths) {
              // One copy is the master's default: asking for it would change nothing.
              const s = await follow(fs, await fs.load(path, replicas > 1 ? { replicas } : {}));
              process.stderr.write(`strata: ${where}: ${path}: ${summaryLine(s)}\n`);
              if (s.state !== 'completed') failed++;
            }
            if (failed > 0) {
              throw new StrataError(
                'STRATA_LOAD_FAILED',
                `${failed} of ${target.paths.length} path(s) did not load completely (see the lines above)`,
              );
            }
          },
          true,
        );
      }),
    );
}

/**
 * Where the DataLoad Job finds the master: --master, then STRATA_MASTER_ENDPOINTS, then the
 * runtime.json Fluid names in FLUID_RUNTIME_CONFIG_PATH when the Job has it (the masters of that
 * very Dataset), then --dataset, then the configuration file.
 */
function dataloadMasters(cmd: Command, opts: DataloadOptions): RawOverride[] {
  const fromFlag = globalOptions(cmd).master;
  const fromEnv = process.env.STRATA_MASTER_ENDPOINTS;
  const runtimeJson = process.env.FLUID_RUNTIME_CONFIG_PATH;
  let text: string | undefined;
  let source = 'STRATA_MASTER_ENDPOINTS';
  if (fromFlag !== undefined) {
    text = fromFlag;
    source = '--master';
  } else if (fromEnv !== undefined && fromEnv !== '') text = fromEnv;
  else if (runtimeJson !== undefined && runtimeJson !== '' && existsSync(runtimeJson)) {
    const spec = parseRuntimeSpec(readJsonFile(runtimeJson), runtimeJson);
    const problems: ConfigProblem[] = [];
    const addrs = masterAddresses(spec, process.env, problems);
    if (problems.length > 0) throw new ConfigError(problems, runtimeJson);
    return [{ key: 'client.master_addrs', value: addrs, source: runtimeJson }];
  } else if (opts.dataset !== undefined) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(opts.dataset)) {
      throw new UsageError(
        `--dataset: expected a Kubernetes object name such as strata-demo (got "${opts.dataset}")`,
      );
    }
    const n = opts.masterReplicas === undefined ? 1 : Number(opts.masterReplicas);
    if (!Number.isInteger(n) || n < 1 || n > MAX_MASTER_REPLICAS) {
      throw new UsageError(
        `--master-replicas: expected an integer from 1 to ${MAX_MASTER_REPLICAS} (got "${opts.masterReplicas ?? ''}")`,
      );
    }
    text = datasetMasterEndpoints(opts.dataset, n, DEFAULT_MASTER_RPC_PORT);
    source = '--dataset';
  }
  if (text === undefined) return [];
  const addrs = parseEndpoints(text);
  if (addrs === undefined) {
    throw new UsageError(`${source}: expected host:port[,host:port...] (got ${JSON.stringify(text)})`);
  }
  return [{ key: 'client.master_addrs', value: addrs, source }];
}

function isFinished(s: LoadJobStatus): boolean {
  return s.state === 'completed' || s.state === 'failed' || s.state === 'cancelled';
}

/** Polls a job until it ends; progress redrawn on a terminal, logged every few seconds otherwise. */
async function follow(fs: FileSystem, first: LoadJobStatus): Promise<LoadJobStatus> {
  const out = process.stderr;
  const tty = out.isTTY === true;
  let s = first;
  let lastLog = 0;
  while (!isFinished(s)) {
    const now = Date.now();
    if (tty) out.write(`\r\x1b[2K${loadLine(s, now).slice(0, Math.max(20, (out.columns ?? 100) - 1))}`);
    else if (now - lastLog >= DATALOAD_LOG_INTERVAL_MS) {
      lastLog = now;
      out.write(`${loadLine(s, now)}\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, LOAD_POLL_MS));
    s = await fs.loadStatus(s.jobId);
  }
  if (tty) out.write('\r\x1b[2K');
  return s;
}

function summaryLine(s: LoadJobStatus): string {
  const copies = s.replicas === undefined || s.replicas === 1 ? '' : ` (${s.replicas} copies of each block)`;
  return `job ${s.jobId} ${s.state}: ${s.doneFiles}/${s.totalFiles} files, ${s.doneBytes} of ${s.totalBytes} bytes cached${copies}${
    s.failedBlocks > 0 ? `, ${s.failedBlocks} block(s) failed` : ''
  }${s.error === undefined ? '' : ` (${s.error})`}`;
}
