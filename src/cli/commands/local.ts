import type { Command } from 'commander';
import { StrataError } from '../../common/errors.js';
import { action } from '../context.js';

// Placeholder until the all-in-one cluster lands with the client library.
export function register(program: Command): void {
  program
    .command('local')
    .description('start an all-in-one local cluster (master + two workers) on the embedded store')
    .action(
      action(() => {
        throw new StrataError(
          'STRATA_NOT_IMPLEMENTED',
          'local: the all-in-one cluster is not built yet (see README: status)',
        );
      }),
    );
}
