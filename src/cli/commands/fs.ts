/**
 * `strata fs …`: the file system commands (ls, mkdir, put, get, cat, touch, rm, mv, stat, count,
 * du, df, chmod, chown, blocks, free), one group per file under src/cli/fs/.
 */
import type { Command } from 'commander';
import { registerInfo } from '../fs/info.js';
import { registerLs } from '../fs/listing.js';
import { registerModify } from '../fs/modify.js';
import { registerTransfer } from '../fs/transfer.js';

export function register(program: Command): void {
  const fs = program
    .command('fs')
    .description(
      'file system commands: ls, mkdir, put, get, cat, touch, rm, mv, stat, count, du, df, chmod, chown, blocks, free',
    )
    // `-h` means "human-readable sizes" here, as in ls/du/df; help is --help.
    .helpOption('--help', 'display help for the command');
  registerLs(fs);
  registerModify(fs);
  registerTransfer(fs);
  registerInfo(fs);
}
