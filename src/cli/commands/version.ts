import type { Command } from 'commander';
import { STRATA_VERSION } from '../../common/version.js';
import { action, globalOptions, printJson, println } from '../context.js';

export function register(program: Command): void {
  program
    .command('version')
    .description('print the version of strata and of the runtime')
    .action(
      action((_opts: unknown, cmd: Command) => {
        const info = {
          version: STRATA_VERSION,
          node: process.version,
          platform: `${process.platform}-${process.arch}`,
        };
        if (globalOptions(cmd).json === true) printJson(info);
        else println(`strata ${info.version} (node ${info.node}, ${info.platform})`);
      }),
    );
}
