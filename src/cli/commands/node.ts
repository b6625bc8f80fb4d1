/**
 * `strata node --list` (the workers with state, capacity and usage) and
 * `strata node --decommission host:port` (stop placing blocks there and drain it).
 */
import type { Command } from 'commander';
import { UsageError } from '../../common/errors.js';
import { parseHostPort } from '../../common/net.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { withFileSystem } from '../client.js';
import { sizeText, table, timeText } from '../format.js';

export function register(program: Command): void {
  program
    .command('node')
    .description('list workers (--list) or decommission one (--decommission host:port)')
    .option('-l, --list', 'list the workers (the default)')
    .option(
      '--decommission <worker>',
      'drain a worker ("host:port" or its worker id) and stop placing blocks on it',
    )
    .option('-H, --human', 'sizes as 1.5GiB')
    .action(
      action(async (opts: { list?: boolean; decommission?: string; human?: boolean }, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        if (opts.decommission !== undefined && opts.list === true) {
          throw new UsageError('node: use either --list or --decommission, not both');
        }
        await withFileSystem(cmd, async (fs) => {
          if (opts.decommission !== undefined) {
            const target = opts.decommission.trim();
            if (target === '' || (target.includes(':') && parseHostPort(target) === undefined)) {
              throw new UsageError(
                `node --decommission: expected host:port or a worker id (got "${opts.decommission}")`,
              );
            }
            const workerId = await fs.decommissionWorker(target);
            if (json) printJson({ decommissioning: target, workerId });
            else println(`decommissioning worker ${workerId} (${target}): its blocks move to other workers`);
            return;
          }
          const workers = await fs.listWorkers();
          if (json) {
            printJson(workers);
            return;
          }
          if (workers.length === 0) {
            println('no workers have registered');
            return;
          }
          const h = opts.human === true;
          const rows = [
            ['WORKER', 'ID', 'STATE', 'CAPACITY', 'USED', 'AVAILABLE', 'BLOCKS', 'LAST HEARTBEAT', 'VERSION'],
          ];
          for (const w of workers) {
            rows.push([
              `${w.address.hostname}:${w.address.rpcPort}`,
              w.address.workerId,
              w.state,
              sizeText(w.capacityBytes, h),
              sizeText(w.usedBytes, h),
              sizeText(w.availableBytes, h),
              String(w.blocks),
              timeText(w.lastHeartbeatMs),
              w.version,
            ]);
          }
          for (const line of table(rows, new Set([3, 4, 5, 6]))) println(line);
        });
      }),
    );
}
