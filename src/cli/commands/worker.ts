import type { Command } from 'commander';
import { Lifecycle } from '../../common/lifecycle.js';
import { createLogger } from '../../common/logging.js';
import { createRegistry } from '../../common/metrics.js';
import { createWorkerRpc } from '../../worker/rpc-wiring.js';
import { DEFAULT_STOP_GRACE_MS, Worker } from '../../worker/worker.js';
import { action, loadCliConfig } from '../context.js';

/** Shutdown bound: in-flight streams get DEFAULT_STOP_GRACE_MS, the rest a little more. */
const SHUTDOWN_GRACE_MS = DEFAULT_STOP_GRACE_MS + 4_000;

export function register(program: Command): void {
  program
    .command('worker')
    .description('run a worker in the foreground: block tiers from worker.data_dir, data server, heartbeats')
    .action(
      action(async (_opts: unknown, cmd: Command) => {
        const loaded = loadCliConfig(cmd);
        const config = loaded.config;
        const log = createLogger({ level: config.log.level, logDir: config.log.log_dir, role: 'worker' });
        for (const w of loaded.warnings) log.warn({ source: loaded.source }, w);
        const lifecycle = new Lifecycle(log, SHUTDOWN_GRACE_MS);
        lifecycle.installSignalHandlers();
        const registry = createRegistry('worker');
        const rpc = createWorkerRpc(config, log, registry);
        const worker = await Worker.start({ config, log, registry, rpc });
        lifecycle.add('worker', () => worker.stop());
      }),
    );
}
