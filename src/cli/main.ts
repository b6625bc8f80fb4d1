#!/usr/bin/env -S node --initial-heap-size=64
/**
 * The `strata` executable: one binary, a subcommand per role and per client action.
 */
import { CommanderError } from 'commander';
import { reportError } from './context.js';
import { EXIT_USAGE } from './exit-codes.js';
import { buildProgram, normaliseArgv } from './program.js';

async function main(rawArgv: string[]): Promise<void> {
  const argv = normaliseArgv(rawArgv);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are "errors" to commander; they already printed.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    process.exitCode = reportError(err, '', argv.includes('--debug'));
  }
}

await main(process.argv);
