import type { Command } from 'commander';
import { stringify } from 'smol-toml';
import { loadConfig, maskSecrets } from '../../common/config/index.js';
import { action, globalOptions, printJson, println } from '../context.js';

export function register(program: Command): void {
  program
    .command('check-config')
    .description(
      'validate a cluster configuration and print the effective values (exit 2 listing every problem)',
    )
    .argument('[file]', 'configuration file (default: --conf, $STRATA_CONF_FILE, ./conf/strata-cluster.toml)')
    .action(
      action((file: string | undefined, _opts: unknown, cmd: Command) => {
        const g = globalOptions(cmd);
        const path = file ?? g.conf;
        const loaded = loadConfig(path === undefined ? {} : { path });
        for (const w of loaded.warnings) process.stderr.write(`strata: check-config: warning: ${w}\n`);
        const shown = maskSecrets(loaded.config);
        if (g.json === true) {
          printJson({ source: loaded.source ?? null, warnings: loaded.warnings, config: shown });
          return;
        }
        println(`# effective configuration from ${loaded.source ?? 'built-in defaults'}`);
        println('# sizes are in bytes, durations in milliseconds');
        println(stringify(shown));
      }),
    );
}
