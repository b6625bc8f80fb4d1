/**
 * `strata free <path>…` (and `strata fs free [-r]`): drop the cached copies of files under a UFS
 * mount whose data the UFS holds. Files only Strata holds (a write not yet persisted) are kept
 * and counted; a path under no mount is refused.
 */
import type { Command } from 'commander';
import type { FileSystem, FreeResult } from '../../client/filesystem.js';
import { FsError } from '../../common/errors.js';
import { formatBytes } from '../../common/units.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { cliPath, forEachItem, withFileSystem } from '../client.js';

export function register(program: Command): void {
  program
    .command('free')
    .description(
      'drop cached copies of files under a UFS mount that the UFS holds (directories: everything below)',
    )
    .argument('<paths...>', 'paths under a UFS mount')
    .action(
      action(async (paths: string[], _opts: unknown, cmd: Command) => {
        await freePaths(cmd, paths, true);
      }),
    );
}

/** Frees each path, printing what was dropped; directories need `recursive`. */
export async function freePaths(cmd: Command, paths: readonly string[], recursive: boolean): Promise<void> {
  const json = globalOptions(cmd).json === true;
  const results: (FreeResult & { path: string })[] = [];
  await withFileSystem(cmd, (fs: FileSystem) =>
    forEachItem(cmd, paths.map(cliPath), async (p) => {
      if (!recursive) {
        const st = await fs.stat(p);
        if (st.type === 'dir') {
          throw new FsError('EISDIR', `${p}: is a directory (use -r to free everything under it)`, {
            details: { path: p },
          });
        }
      }
      const r = await fs.free(p);
      if (json) results.push({ path: p, ...r });
      else println(freeLine(p, r));
    }),
  );
  if (json) printJson(results);
}

function freeLine(path: string, r: FreeResult): string {
  const kept = r.skippedFiles > 0 ? `; ${r.skippedFiles} file(s) kept: their data is not in the UFS yet` : '';
  return `${path}: freed ${r.files} file(s), ${r.blocks} block copies, ${formatBytes(r.bytes)}${kept}`;
}
