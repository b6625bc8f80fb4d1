/**
 * `strata fluid …`: the entrypoints Fluid runs in our image. `thin` is the ThinRuntime FUSE pod
 * (seed 001); `cache-runtime` is a master, worker or client pod of the generic CacheRuntime
 * (seed 000). Each reads Fluid's JSON and environment, derives the cluster configuration, and
 * writes it where the role reads it.
 */
import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { StrataError } from '../../common/errors.js';
import {
  cacheConfigPath,
  confOutPath,
  fileSecretReader,
  parseRuntimeSpec,
  planCacheRole,
  planThin,
  readJsonFile,
  thinConfigPath,
  THIN_CONFIG_PATHS,
  CACHE_CONFIG_PATHS,
  watchFluidConfig,
  writeFileAtomic,
} from '../../fluid/index.js';
import { action, globalOptions, printJson } from '../context.js';
import { registerHooks } from './fluid-hooks.js';

interface ThinOptions {
  config?: string;
  confOut?: string;
  dryRun?: boolean;
}

interface CacheOptions extends ThinOptions {
  component?: string;
}

/**
 * Runs a role in this process, as `strata --conf <out> <command>` would: the pod's PID 1 (tini)
 * then signals the role itself, and its own lifecycle unmounts or stops on SIGTERM. The program
 * is loaded lazily because it registers this command too.
 */
async function runRole(cmd: Command, confPath: string, command: 'master' | 'worker' | 'fuse'): Promise<void> {
  const { buildProgram } = await import('../program.js');
  const args = ['--conf', confPath, ...(globalOptions(cmd).debug === true ? ['--debug'] : []), command];
  await buildProgram().parseAsync(args, { from: 'user' });
}

function warn(where: string, warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`strata: fluid ${where}: warning: ${w}\n`);
}

function notFound(what: string, paths: readonly string[]): StrataError {
  return new StrataError(
    'STRATA_BAD_CONFIG',
    `no ${what} found (looked at ${paths.join(', ')}); is this a Fluid pod? Pass --config FILE`,
  );
}

export function register(program: Command): void {
  const fluid = program
    .command('fluid')
    .description('entrypoints for Fluid (ThinRuntime and generic CacheRuntime pods); see docs/kubernetes.md');

  fluid
    .command('thin')
    .description(
      "ThinRuntime FUSE pod: derive the configuration from Fluid's config.json and mount at its targetPath",
    )
    .option('--config <file>', `Fluid's config.json (default: ${THIN_CONFIG_PATHS.join(', then ')})`)
    .option('--conf-out <file>', 'where to write the cluster configuration (default: $STRATA_CONF_FILE)')
    .option('--dry-run', 'print the derived configuration and mount, change nothing')
    .action(
      action(async (opts: ThinOptions, cmd: Command) => {
        const source = thinConfigPath(opts.config);
        if (source === undefined) throw notFound('ThinRuntime config.json', THIN_CONFIG_PATHS);
        const plan = planThin({
          json: readJsonFile(source),
          source,
          env: process.env,
          readSecret: fileSecretReader,
        });
        warn('thin', plan.warnings);
        const out = confOutPath(opts.confOut, process.env);
        if (opts.dryRun === true) {
          if (globalOptions(cmd).json === true) {
            printJson({
              confOut: out,
              mountPath: plan.mountPath,
              fsPath: plan.fsPath,
              fsType: plan.fsType,
              readOnly: plan.readOnly,
              warnings: plan.warnings,
              toml: plan.toml,
            });
          } else {
            process.stdout.write(
              `# would write ${out} and mount ${plan.fsPath} at ${plan.mountPath} (${plan.fsType})\n`,
            );
            process.stdout.write(plan.toml);
          }
          return;
        }
        writeFileAtomic(out, plan.toml);
        await runRole(cmd, out, 'fuse');
        // A changed Dataset or profile: unmount gracefully and exit, so the DaemonSet restarts
        // the container and it mounts with the new configuration (a clean remount).
        watchFluidConfig({
          source,
          current: plan.toml,
          derive: () =>
            planThin({ json: readJsonFile(source), source, env: process.env, readSecret: fileSecretReader })
              .toml,
          onChange: () => {
            process.stderr.write(
              `strata: fluid thin: ${source} changed; unmounting to remount with the new configuration\n`,
            );
            process.kill(process.pid, 'SIGTERM');
          },
          onInvalid: (err) => {
            process.stderr.write(
              `strata: fluid thin: ${source} changed but is not usable, keeping the mount: ${
                err instanceof Error ? err.message.split('\n').join(' ') : String(err)
              }\n`,
            );
          },
        });
      }),
    );

  fluid
    .command('cache-runtime')
    .description(
      "CacheRuntime pod: derive this component's configuration from runtime.json and run it (master, worker or client)",
    )
    .option(
      '--config <file>',
      `Fluid's runtime.json (default: $FLUID_RUNTIME_CONFIG_PATH, then ${CACHE_CONFIG_PATHS.join(', then ')})`,
    )
    .option('--component <name>', 'master, worker or client (default: $FLUID_RUNTIME_COMPONENT_TYPE)')
    .option('--conf-out <file>', 'where to write the cluster configuration (default: $STRATA_CONF_FILE)')
    .option('--dry-run', 'print the derived configuration, change nothing')
    .action(
      action(async (opts: CacheOptions, cmd: Command) => {
        const source = cacheConfigPath(opts.config, process.env);
        if (source === undefined) throw notFound('CacheRuntime runtime.json', CACHE_CONFIG_PATHS);
        const spec = parseRuntimeSpec(readJsonFile(source), source);
        const plan = planCacheRole({
          spec,
          env: process.env,
          source,
          ...(opts.component === undefined ? {} : { component: opts.component }),
        });
        warn('cache-runtime', plan.warnings);
        const out = confOutPath(opts.confOut, process.env);
        if (opts.dryRun === true) {
          if (globalOptions(cmd).json === true) {
            printJson({
              component: plan.component,
              command: plan.command,
              confOut: out,
              dirs: plan.dirs,
              mountPath: plan.mountPath ?? null,
              readyPort: plan.readyPort,
              warnings: plan.warnings,
              toml: plan.toml,
            });
          } else {
            process.stdout.write(
              `# would write ${out} and run \`strata ${plan.command} --conf ${out}\` (${plan.component})\n`,
            );
            process.stdout.write(plan.toml);
          }
          return;
        }
        for (const d of plan.dirs) mkdirSync(d, { recursive: true });
        writeFileAtomic(out, plan.toml);
        await runRole(cmd, out, plan.command);
      }),
    );

  registerHooks(fluid);
}
