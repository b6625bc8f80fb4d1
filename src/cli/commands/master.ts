import type { Command } from 'commander';
import { createLogger } from '../../common/logging.js';
import { Lifecycle } from '../../common/lifecycle.js';
import { MasterServer } from '../../master/master.js';
import { action, loadCliConfig } from '../context.js';

export function register(program: Command): void {
  program
    .command('master')
    .description('run a master (namespace, workers, placement, TTL) in the foreground until SIGTERM')
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const { config, source, warnings } = loadCliConfig(cmd);
        const log = createLogger({ level: config.log.level, logDir: config.log.log_dir, role: 'master' });
        for (const w of warnings) log.warn({ source }, `configuration: ${w}`);
        const lifecycle = new Lifecycle(log);
        // Closers run last-registered first: the log is flushed after the master has stopped.
        lifecycle.add('log', () => new Promise<void>((resolve) => log.flush(() => resolve())));
        const server = await MasterServer.start({ config, log });
        lifecycle.add('master', () => server.stop());
        lifecycle.installSignalHandlers();
      }),
    );
}
