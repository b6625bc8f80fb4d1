import type { Command } from 'commander';
import { Lifecycle } from '../../common/lifecycle.js';
import { createLogger } from '../../common/logging.js';
import type { LogLevel } from '../../common/logging.js';
import { UsageError } from '../../common/errors.js';
import { ProxyServer, formatProxyConfig, loadProxyConfig } from '../../proxy/index.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { maskProxySecrets } from '../../proxy/config.js';

/** Time beyond drain_timeout_seconds for closing stores and listeners before a forced exit. */
const SHUTDOWN_SLACK_MS = 10_000;

interface ProxyOptions {
  config?: string;
  checkConfig?: string;
}

export function register(program: Command): void {
  program
    .command('proxy')
    .description(
      'run the caching streaming edge proxy (seed 004: L1 memory, L2 file, raw disk or a Strata cluster)',
    )
    .argument('[file]', 'proxy configuration (YAML); same as --config')
    .option('-c, --config <file>', 'proxy configuration file (YAML)')
    .option(
      '--check-config <file>',
      'validate a configuration, print the effective values and exit (2 on problems)',
    )
    .action(
      action(async (file: string | undefined, opts: ProxyOptions, cmd: Command) => {
        const g = globalOptions(cmd);
        if (opts.checkConfig !== undefined) {
          const loaded = loadProxyConfig(opts.checkConfig);
          for (const w of loaded.warnings) process.stderr.write(`strata: proxy: warning: ${w}\n`);
          if (g.json === true) {
            printJson({
              source: loaded.source,
              warnings: loaded.warnings,
              config: maskProxySecrets(loaded.config),
            });
            return;
          }
          println(`# effective proxy configuration from ${loaded.source}`);
          println('# sizes in bytes, cache_ttl and *_seconds in seconds');
          process.stdout.write(formatProxyConfig(loaded.config));
          return;
        }
        const path = opts.config ?? file;
        if (path === undefined)
          throw new UsageError('proxy: a configuration file is needed (--config proxy.yaml)');
        const loaded = loadProxyConfig(path);
        const log = createLogger({
          level: loaded.config.log_level.toUpperCase() as LogLevel,
          logDir: 'stdout',
          role: 'proxy',
        });
        for (const w of loaded.warnings) log.warn({ source: loaded.source }, w);
        const server = new ProxyServer(loaded.config, log);
        const lifecycle = new Lifecycle(log, loaded.config.drain_timeout_seconds * 1000 + SHUTDOWN_SLACK_MS);
        lifecycle.add('proxy', () => server.stop());
        lifecycle.installSignalHandlers();
        process.on('SIGHUP', () => {
          try {
            const next = loadProxyConfig(path);
            for (const w of next.warnings) log.warn({ source: next.source }, w);
            const { applied, needRestart } = server.reload(next.config);
            log.info(
              { applied, source: next.source },
              `configuration reloaded (${applied.length} key(s) applied)`,
            );
            if (needRestart.length > 0)
              log.warn(
                { needRestart },
                `these keys changed but need a restart to apply: ${needRestart.join(', ')}`,
              );
          } catch (err) {
            log.error(
              { err: (err as Error).message },
              'configuration reload failed: keeping the running configuration',
            );
          }
        });
        try {
          await server.start();
        } catch (err) {
          // Listeners already bound must not keep the process alive after a failed start.
          await server.stop();
          throw err;
        }
      }),
    );
}
