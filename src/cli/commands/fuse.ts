import type { Command } from 'commander';
import type { RawOverride } from '../../common/config/index.js';
import { UsageError } from '../../common/errors.js';
import { Lifecycle } from '../../common/lifecycle.js';
import { createLogger } from '../../common/logging.js';
import { createRegistry } from '../../common/metrics.js';
import { FuseService, splitOptions } from '../../fuse/index.js';
import { action, loadCliConfig } from '../context.js';

/** Unmount, commit open files and close the client; commits may upload up to a block each. */
const SHUTDOWN_GRACE_MS = 60_000;

interface FuseCliOptions {
  mntPath?: string;
  fsPath?: string;
  mntNumber?: string;
  o: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...splitOptions(value)];
}

function intArg(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${name}: expected a positive integer (got ${JSON.stringify(text)})`);
  return n;
}

export function register(program: Command): void {
  program
    .command('fuse')
    .description(
      'mount the namespace (or fuse.fs_path) at fuse.mnt_path and serve it in the foreground until SIGTERM',
    )
    .option('--mnt-path <path>', 'mount point (overrides fuse.mnt_path)')
    .option('--fs-path <path>', 'Strata directory shown at the mount point (overrides fuse.fs_path)')
    .option('--mnt-number <n>', 'FUSE sessions (overrides fuse.mnt_number; only 1 is supported)')
    .option(
      '-o <options>',
      'extra mount options, comma-separated (repeatable), e.g. -o ro,nonempty',
      collect,
      [],
    )
    .action(
      action(async (opts: FuseCliOptions, cmd: Command) => {
        const overrides: RawOverride[] = [];
        if (opts.mntPath !== undefined)
          overrides.push({ key: 'fuse.mnt_path', value: opts.mntPath, source: '--mnt-path' });
        if (opts.fsPath !== undefined)
          overrides.push({ key: 'fuse.fs_path', value: opts.fsPath, source: '--fs-path' });
        if (opts.mntNumber !== undefined) {
          overrides.push({
            key: 'fuse.mnt_number',
            value: intArg('--mnt-number', opts.mntNumber),
            source: '--mnt-number',
          });
        }
        const loaded = loadCliConfig(cmd, overrides);
        const config = loaded.config;
        const log = createLogger({ level: config.log.level, logDir: config.log.log_dir, role: 'fuse' });
        for (const w of loaded.warnings) log.warn({ source: loaded.source }, `configuration: ${w}`);
        const lifecycle = new Lifecycle(log, SHUTDOWN_GRACE_MS);
        lifecycle.add('log', () => new Promise<void>((resolve) => log.flush(() => resolve())));
        lifecycle.installSignalHandlers();
        const service = await FuseService.start({
          config,
          log,
          registry: createRegistry('fuse'),
          extraOptions: opts.o,
          onLost: () => {
            void lifecycle.stop('mount lost').then(() => process.exit(1));
          },
        });
        lifecycle.add('fuse', () => service.stop());
      }),
    );
}
