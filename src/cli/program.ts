/**
 * Builds the `strata` command tree; main.ts runs it, tests inspect it.
 */
import { Command } from 'commander';
import { STRATA_VERSION } from '../common/version.js';
import { COMMANDS } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('strata')
    .description('Strata: a distributed tiered cache between your jobs and their object storage')
    .version(STRATA_VERSION, '-V, --version', 'print the version')
    .option(
      '--conf <file>',
      'cluster configuration file (else $STRATA_CONF_FILE, else ./conf/strata-cluster.toml)',
    )
    .option('--master <host:port,...>', 'master address(es), overriding client.master_addrs')
    .option('--json', 'print structured output as JSON')
    .option('--debug', 'print stack traces and configuration warnings')
    .showSuggestionAfterError(true)
    .enablePositionalOptions(false)
    .exitOverride();
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s),
    outputError: (s, write) => write(s.startsWith('error: ') ? `strata: ${s.slice(7)}` : s),
  });
  for (const register of COMMANDS) register(program);
  exitOverrideAll(program);
  return program;
}

function exitOverrideAll(cmd: Command): void {
  for (const c of cmd.commands) {
    c.exitOverride();
    exitOverrideAll(c);
  }
}

/**
 * The seed's KV node is started Go-style (`-config=config/node1.yaml`); accept that spelling of
 * the one long option users carry over from it, and leave every other argument alone.
 */
export function normaliseArgv(argv: readonly string[]): string[] {
  return argv.map((a) => (a === '-config' || a.startsWith('-config=') ? `-${a}` : a));
}
