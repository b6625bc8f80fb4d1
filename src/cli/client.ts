/**
 * What client commands (`fs`, `report`, `node`) share: a FileSystem made from the CLI's
 * configuration (`--conf`, `--master`), closed when the command ends; paths as users type them;
 * and commands over several paths that report each failure and exit 4 when only some failed.
 */
import type { Command } from 'commander';
import { FileSystem } from '../client/filesystem.js';
import { UsageError } from '../common/errors.js';
import { commandPath, globalOptions, loadCliConfig, reportError } from './context.js';
import { EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE } from './exit-codes.js';

/** Runs `fn` with a client connected as the command's configuration says; always closes it. */
export async function withFileSystem<T>(cmd: Command, fn: (fs: FileSystem) => Promise<T>): Promise<T> {
  const { config } = loadCliConfig(cmd);
  const fs = FileSystem.create({ config });
  try {
    return await fn(fs);
  } finally {
    await fs.close();
  }
}

/** A path as typed: relative paths are taken from the root ("a/b" is "/a/b"). */
export function cliPath(text: string): string {
  if (text === '') throw new UsageError('empty path (expected a path such as /data/file)');
  return text.startsWith('/') ? text : `/${text}`;
}

/**
 * Runs `fn` for each item; prints a line per failure and sets the exit code: the failure's own
 * code when every item failed (or there was one), EXIT_PARTIAL when only some did.
 */
export async function forEachItem<T>(
  cmd: Command,
  items: readonly T[],
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const debug = globalOptions(cmd).debug === true;
  const where = commandPath(cmd);
  let failed = 0;
  let lastCode = 0;
  for (const item of items) {
    try {
      await fn(item);
    } catch (err) {
      failed++;
      lastCode = reportError(err, where, debug);
      // Losing the cluster fails every later item too: stop here.
      if (lastCode === EXIT_USAGE || lastCode === EXIT_UNREACHABLE) break;
    }
  }
  if (failed === 0) return;
  process.exitCode = failed === items.length || items.length === 1 ? lastCode : EXIT_PARTIAL;
}

/**
 * Parses a chmod mode: octal ("755", "0644", "1777") or symbolic ("u+x", "go-w", "a=r,u+w",
 * "+x") applied to the current mode. Returns undefined for anything else.
 */
export function parseMode(text: string, current: number, isDir: boolean): number | undefined {
  if (/^[0-7]{1,4}$/.test(text)) return parseInt(text, 8);
  let mode = current;
  for (const clause of text.split(',')) {
    const m = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
    if (m === null) return undefined;
    const who = m[1] === '' || m[1] === undefined ? 'a' : m[1];
    const op = m[2];
    const perms = m[3] ?? '';
    let bits = 0;
    const targets = who.includes('a') ? 'ugo' : who;
    for (const t of targets) {
      const shift = t === 'u' ? 6 : t === 'g' ? 3 : 0;
      if (perms.includes('r')) bits |= 4 << shift;
      if (perms.includes('w')) bits |= 2 << shift;
      if (perms.includes('x') || (perms.includes('X') && (isDir || (current & 0o111) !== 0)))
        bits |= 1 << shift;
      if (perms.includes('s') && t === 'u') bits |= 0o4000;
      if (perms.includes('s') && t === 'g') bits |= 0o2000;
    }
    if (perms.includes('t')) bits |= 0o1000;
    if (op === '+') mode |= bits;
    else if (op === '-') mode &= ~bits;
    else {
      let clear = 0;
      for (const t of targets) clear |= 7 << (t === 'u' ? 6 : t === 'g' ? 3 : 0);
      mode = (mode & ~clear) | bits;
    }
  }
  return mode & 0o7777;
}
