/**
 * What every command shares: global options, configuration loading with CLI overrides, output in
 * words or JSON, and one way to report an error.
 */
import type { Command } from 'commander';
import { loadConfig, parseEndpoints } from '../common/config/index.js';
import type { ClusterConfig, LoadedConfig, RawOverride } from '../common/config/index.js';
import { ConfigError, FsError, StrataError, UsageError, formatProblem } from '../common/errors.js';
import { exitCodeFor } from './exit-codes.js';

export interface GlobalOptions {
  conf?: string;
  master?: string;
  json?: boolean;
  debug?: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

/** Loads the configuration the way every client-side command does, honouring `--master`. */
export function loadCliConfig(cmd: Command, extra: RawOverride[] = []): LoadedConfig {
  const g = globalOptions(cmd);
  const overrides: RawOverride[] = [...extra];
  if (g.master !== undefined) {
    const addrs = parseEndpoints(g.master);
    if (addrs === undefined) {
      throw new UsageError(`--master: expected host:port[,host:port...] (got ${JSON.stringify(g.master)})`);
    }
    overrides.push({ key: 'client.master_addrs', value: addrs, source: '--master' });
  }
  const loaded = loadConfig({ ...(g.conf === undefined ? {} : { path: g.conf }), overrides });
  if (g.debug === true) for (const w of loaded.warnings) process.stderr.write(`strata: warning: ${w}\n`);
  return loaded;
}

export function cliConfig(cmd: Command): ClusterConfig {
  return loadCliConfig(cmd).config;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function println(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/** The full command path, e.g. "fs rm", for error prefixes. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  let c: Command | null = cmd;
  while (c !== null && c.parent !== null) {
    names.unshift(c.name());
    c = c.parent;
  }
  return names.join(' ');
}

/**
 * Prints one clear line for an error (`strata: fs rm /x: no such file or directory`), the stack
 * only with --debug, and returns the exit code.
 */
export function reportError(err: unknown, where: string, debug: boolean): number {
  const prefix = where === '' ? 'strata' : `strata: ${where}`;
  if (err instanceof ConfigError) {
    process.stderr.write(`${prefix}: ${err.details?.source as string}: invalid configuration:\n`);
    for (const p of err.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
  } else if (err instanceof FsError) {
    // fsError() messages read "<path>: <words> (<extra>)"; print the path right after the command.
    const path = typeof err.details?.path === 'string' ? err.details.path : undefined;
    const rest =
      path !== undefined && err.message.startsWith(`${path}: `)
        ? err.message.slice(path.length + 2)
        : err.message;
    process.stderr.write(`${prefix}${path === undefined ? '' : ` ${path}`}: ${rest}\n`);
  } else if (err instanceof StrataError) {
    process.stderr.write(`${prefix}: ${err.message}\n`);
  } else if (err instanceof Error) {
    process.stderr.write(`${prefix}: ${err.message}\n`);
  } else {
    process.stderr.write(`${prefix}: ${String(err)}\n`);
  }
  if (debug && err instanceof Error && err.stack !== undefined) process.stderr.write(`${err.stack}\n`);
  return exitCodeFor(err);
}

/**
 * Wraps a command action: errors become one line and an exit code. Long-running roles keep the
 * process alive themselves; short commands end when their action resolves.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void> | void,
): (...args: A) => Promise<void> {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err, commandPath(cmd), globalOptions(cmd).debug === true);
    }
  };
}
