/**
 * `strata fs ls [-R] [-l] [-h] [PATH...]`: names (one per line), or with -l the long form
 * `drwxr-xr-x  2  root  root  0  2025-03-04 10:11  name`; -R lists subdirectories too, each
 * under a `path:` header like `ls -R`. `--json` prints the entries' full status.
 */
import type { Command } from 'commander';
import type { FileSystem } from '../../client/filesystem.js';
import type { FileStatus } from '../../protocol/types.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { cliPath, forEachItem, withFileSystem } from '../client.js';
import { groupName, modeString, sizeText, table, timeText, userName } from '../format.js';

interface LsOptions {
  recursive?: boolean;
  long?: boolean;
  human?: boolean;
  cacheOnly?: boolean;
}

/**
 * With --cache-only: files Strata holds bytes of (partly cached files too, and files only
 * Strata holds); directories are always listed so -R can descend.
 */
function shown(e: FileStatus, opts: LsOptions): boolean {
  if (opts.cacheOnly !== true || e.type !== 'file') return true;
  return e.ufsPath === undefined || e.cachedBytes === undefined || e.cachedBytes > 0;
}

/** Entries listed per table flush: bounds memory for huge directories while keeping columns aligned. */
const LS_BATCH = 1000;

export function registerLs(fs: Command): void {
  fs.command('ls')
    .description('list a directory (or show a file)')
    .argument('[paths...]', 'paths to list (default: /)')
    .option('-R, --recursive', 'list subdirectories recursively')
    .option('-l, --long', 'long format: mode, replicas or entries, owner, group, size, mtime, name')
    .option('-h, --human', 'sizes as 1.5MiB instead of bytes (with -l)')
    .option('--cache-only', 'only files with cached data (under a UFS mount: not the UFS-only ones)')
    .action(
      action(async (paths: string[], opts: LsOptions, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const targets = paths.length === 0 ? ['/'] : paths.map(cliPath);
        await withFileSystem(cmd, async (fs) => {
          const all: FileStatus[] = [];
          await forEachItem(cmd, targets, async (p) => {
            const st = await fs.stat(p);
            if (json) {
              if (st.type !== 'dir') {
                if (shown(st, opts)) all.push(st);
              } else await collect(fs, p, opts, all);
              return;
            }
            if (st.type !== 'dir') {
              if (shown(st, opts)) printEntries([st], opts, true);
              return;
            }
            await listDir(fs, p, opts, targets.length > 1 || opts.recursive === true);
          });
          if (json) printJson(all);
        });
      }),
    );
}

async function collect(fs: FileSystem, dir: string, opts: LsOptions, out: FileStatus[]): Promise<void> {
  const subdirs: string[] = [];
  for await (const page of fs.list(dir)) {
    for (const e of page) {
      if (shown(e, opts)) out.push(e);
      if (opts.recursive === true && e.type === 'dir') subdirs.push(e.path);
    }
  }
  for (const d of subdirs) await collect(fs, d, opts, out);
}

async function listDir(fs: FileSystem, dir: string, opts: LsOptions, header: boolean): Promise<void> {
  if (header) println(`${dir}:`);
  const subdirs: string[] = [];
  let batch: FileStatus[] = [];
  for await (const page of fs.list(dir)) {
    for (const e of page) {
      if (shown(e, opts)) batch.push(e);
      if (opts.recursive === true && e.type === 'dir') subdirs.push(e.path);
      if (batch.length >= LS_BATCH) {
        printEntries(batch, opts, false);
        batch = [];
      }
    }
  }
  printEntries(batch, opts, false);
  for (const d of subdirs) {
    println();
    await listDir(fs, d, opts, true);
  }
}

function printEntries(entries: readonly FileStatus[], opts: LsOptions, fullPath: boolean): void {
  if (entries.length === 0) return;
  if (opts.long !== true) {
    for (const e of entries) println(fullPath ? e.path : e.name);
    return;
  }
  const rows = entries.map((e) => [
    modeString(e.type, e.mode),
    e.type === 'dir' ? String(e.children ?? 0) : e.type === 'file' ? String(e.replicas) : '-',
    userName(e.uid),
    groupName(e.gid),
    sizeText(e.size, opts.human === true),
    timeText(e.mtimeMs),
    `${fullPath ? e.path : e.name}${e.type === 'symlink' && e.target !== undefined ? ` -> ${e.target}` : ''}${
      e.state === 'writing' ? ' (being written)' : ''
    }`,
  ]);
  for (const line of table(rows, new Set([1, 4]))) println(line);
}
