import type { Command } from 'commander';
import { Lifecycle } from '../../common/lifecycle.js';
import { createLogger } from '../../common/logging.js';
import { createRegistry } from '../../common/metrics.js';
import { DEFAULT_STOP_GRACE_MS, S3Gateway } from '../../gateway/s3/index.js';
import { action, loadCliConfig } from '../context.js';

/** Shutdown bound: requests in flight get DEFAULT_STOP_GRACE_MS, closing the rest a little more. */
const SHUTDOWN_GRACE_MS = DEFAULT_STOP_GRACE_MS + 4_000;

export function register(program: Command): void {
  program
    .command('s3')
    .description(
      'run the S3-compatible gateway in the foreground ([s3_gateway]: listen, region, users, limits)',
    )
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const loaded = loadCliConfig(cmd);
        const config = loaded.config;
        const log = createLogger({ level: config.log.level, logDir: config.log.log_dir, role: 's3' });
        for (const w of loaded.warnings) log.warn({ source: loaded.source }, w);
        const lifecycle = new Lifecycle(log, SHUTDOWN_GRACE_MS);
        lifecycle.add('log', () => new Promise<void>((resolve) => log.flush(() => resolve())));
        const gateway = await S3Gateway.start({ config, log, registry: createRegistry('s3') });
        lifecycle.add('s3', () => gateway.stop());
        lifecycle.installSignalHandlers();
      }),
    );
}
