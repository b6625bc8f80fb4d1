import type { Command } from 'commander';
import { createLogger } from '../../common/logging.js';
import { Lifecycle } from '../../common/lifecycle.js';
import { MasterServer } from '../../master/master.js';
import { isLmdbCommitFailure, LmdbStore } from '../../meta/index.js';
import { action, loadCliConfig } from '../context.js';

/** Exit code of a master stopped by its store's failure (EX_IOERR). */
const EXIT_STORE_FAILED = 74;

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
        // lmdb-js rejects a promise of its own (a batch's first write, which no caller holds) when a
        // commit fails; the store sees the same failure through its writes, so that one is dropped
        // here instead of killing the process with a stack trace. Any other unhandled rejection
        // is a bug: logged, then the process exits as Node.js would.
        process.on('unhandledRejection', (reason: unknown) => {
          if (isLmdbCommitFailure(reason)) return;
          log.fatal({ err: reason }, 'unhandled promise rejection');
          log.flush(() => process.exit(1));
        });
        // Fail-stop: a store that failed a commit (its disk full or failing) refuses all work until
        // reopened, and reopening replays its write-ahead log. Stopping hands that to the
        // supervisor's restart (and, with etcd, the leadership to a standby) instead of serving errors.
        if (server.store instanceof LmdbStore)
          server.store.onFatal((err) => {
            log.fatal(
              { err, metaDir: config.master.meta_dir },
              `metadata store failed (${err.message}); stopping. Restart the master once ` +
                `${config.master.meta_dir} is writable and has free space: acknowledged operations ` +
                'are replayed from the write-ahead log',
            );
            void lifecycle.stop('metadata store failed').finally(() => process.exit(EXIT_STORE_FAILED));
          });
      }),
    );
}
