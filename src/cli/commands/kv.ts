import type { Command } from 'commander';
import { stringify } from 'yaml';
import { UsageError } from '../../common/errors.js';
import { Lifecycle } from '../../common/lifecycle.js';
import { LOG_LEVELS, createLogger } from '../../common/logging.js';
import type { LogLevel } from '../../common/logging.js';
import { DEFAULT_KV_CONFIG_PATH, describeKvConfig, loadKvConfig, startKvNode } from '../../kv/index.js';
import { action, globalOptions, printJson, println } from '../context.js';

interface KvOptions {
  config: string;
  check?: boolean;
  logLevel?: string;
}

export function register(program: Command): void {
  program
    .command('kv')
    .description(
      'run a key-value cache node (seed 002): HTTP API on a consistent-hash ring, optional Redis (RESP) listener',
    )
    .option(
      '--config <file>',
      "node configuration in YAML (the seed's -config=FILE works too)",
      DEFAULT_KV_CONFIG_PATH,
    )
    .option('--check', 'validate the configuration, print the effective values and exit (2 when invalid)')
    .option('--log-level <level>', `override log_level (${LOG_LEVELS.join(', ')})`)
    .action(
      action(async (opts: KvOptions, cmd: Command) => {
        const g = globalOptions(cmd);
        const loaded = loadKvConfig(opts.config);
        for (const w of loaded.warnings)
          process.stderr.write(`strata: kv: warning: ${loaded.source}: ${w}\n`);
        const config = loaded.config;
        if (opts.logLevel !== undefined) {
          const level = LOG_LEVELS.find((l) => l === opts.logLevel?.toUpperCase());
          if (level === undefined) {
            throw new UsageError(
              `--log-level: unknown level "${opts.logLevel}" (expected ${LOG_LEVELS.join(', ')})`,
            );
          }
          config.logLevel = level satisfies LogLevel;
        }
        if (opts.check === true) {
          const shown = describeKvConfig(config);
          if (g.json === true) printJson({ source: loaded.source, warnings: loaded.warnings, config: shown });
          else {
            println(`# effective configuration from ${loaded.source}`);
            println('# sizes are in bytes, durations in milliseconds');
            process.stdout.write(stringify(shown));
          }
          return;
        }
        const log = createLogger({ level: config.logLevel, logDir: 'stdout', role: 'kv' });
        const lifecycle = new Lifecycle(log, config.shutdownGraceMs);
        lifecycle.installSignalHandlers();
        try {
          await startKvNode(config, log, lifecycle);
        } catch (err) {
          await lifecycle.stop('start failed');
          throw err;
        }
      }),
    );
}
