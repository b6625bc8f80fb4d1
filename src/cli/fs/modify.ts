/**
 * Namespace changes: `fs mkdir [-p]`, `fs touch`, `fs rm [-r] [-f]`, `fs mv`, `fs chmod [-R]`,
 * `fs chown [-R]`. Each takes several paths; a failure is printed for its path and the others go
 * on (exit 4 when only some failed).
 */
import type { Command } from 'commander';
import type { FileSystem } from '../../client/filesystem.js';
import { FsError, UsageError, fsError } from '../../common/errors.js';
import { action } from '../context.js';
import { cliPath, forEachItem, parseMode, withFileSystem } from '../client.js';
import { parseGroup, parseUser } from '../format.js';

export function registerModify(fs: Command): void {
  fs.command('mkdir')
    .description('create directories')
    .argument('<paths...>', 'directories to create')
    .option('-p, --parents', 'create missing parents; no error if the directory exists')
    .action(
      action(async (paths: string[], opts: { parents?: boolean }, cmd: Command) => {
        await withFileSystem(cmd, (fs) =>
          forEachItem(cmd, paths.map(cliPath), async (p) => {
            await fs.mkdir(p, { parents: opts.parents === true });
          }),
        );
      }),
    );

  fs.command('touch')
    .description('create empty files, or set the times of existing ones to now')
    .argument('<paths...>', 'files')
    .action(
      action(async (paths: string[], _opts: unknown, cmd: Command) => {
        await withFileSystem(cmd, (fs) =>
          forEachItem(cmd, paths.map(cliPath), async (p) => {
            const now = Date.now();
            if ((await fs.exists(p)) !== undefined) {
              await fs.utimes(p, now, now);
              return;
            }
            const w = await fs.create(p);
            await w.close();
          }),
        );
      }),
    );

  fs.command('rm')
    .description('remove files (and directories with -r)')
    .argument('<paths...>', 'paths to remove')
    .option('-r, --recursive', 'remove directories and their contents')
    .option('-f, --force', 'ignore paths that do not exist')
    .action(
      action(async (paths: string[], opts: { recursive?: boolean; force?: boolean }, cmd: Command) => {
        await withFileSystem(cmd, (fs) =>
          forEachItem(cmd, paths.map(cliPath), async (p) => {
            if (p === '/' || p.replace(/\/+$/, '') === '')
              throw new FsError('EBUSY', '/: refusing to remove the root', { details: { path: '/' } });
            const st = await fs.exists(p);
            if (st === undefined) {
              if (opts.force === true) return;
              throw fsError('ENOENT', p);
            }
            if (st.type === 'dir' && opts.recursive !== true)
              throw fsError('EISDIR', p, 'use -r to remove a directory');
            await fs.delete(p, { recursive: opts.recursive === true });
          }),
        );
      }),
    );

  fs.command('mv')
    .description('rename or move files and directories')
    .argument('<paths...>', 'sources, then the destination (an existing directory receives them by name)')
    .option('-n, --no-clobber', 'do not replace an existing destination')
    .action(
      action(async (paths: string[], opts: { clobber?: boolean }, cmd: Command) => {
        if (paths.length < 2) throw new UsageError('fs mv: expected one or more sources and a destination');
        const all = paths.map(cliPath);
        const dst = all[all.length - 1] as string;
        const sources = all.slice(0, -1);
        await withFileSystem(cmd, async (fs) => {
          const dstStat = await fs.exists(dst);
          const intoDir = dstStat?.type === 'dir';
          if (sources.length > 1 && !intoDir)
            throw fsError('ENOTDIR', dst, 'several sources need a directory as destination');
          await forEachItem(cmd, sources, async (src) => {
            const name =
              src
                .split('/')
                .filter((s) => s !== '')
                .pop() ?? '';
            const target = intoDir ? `${dst === '/' ? '' : dst}/${name}` : dst;
            await fs.rename(src, target, { noReplace: opts.clobber === false });
          });
        });
      }),
    );

  fs.command('chmod')
    .description('change permission bits (octal like 755 or symbolic like u+x,go-w)')
    .argument('<mode>', 'new mode')
    .argument('<paths...>', 'paths')
    .option('-R, --recursive', 'apply to directories and everything under them')
    .action(
      action(async (modeText: string, paths: string[], opts: { recursive?: boolean }, cmd: Command) => {
        if (parseMode(modeText, 0, false) === undefined) {
          throw new UsageError(
            `fs chmod: bad mode "${modeText}" (expected octal such as 755 or symbolic such as u+x,go-w)`,
          );
        }
        await withFileSystem(cmd, (fs) =>
          forEachItem(cmd, paths.map(cliPath), async (p) => {
            await walk(fs, p, opts.recursive === true, async (path, type, mode) => {
              const next = parseMode(modeText, mode, type === 'dir') as number;
              if (next !== mode) await fs.chmod(path, next);
            });
          }),
        );
      }),
    );

  fs.command('chown')
    .description('change owner and/or group (OWNER, OWNER:GROUP or :GROUP; names or numbers)')
    .argument('<owner>', 'new owner[:group]')
    .argument('<paths...>', 'paths')
    .option('-R, --recursive', 'apply to directories and everything under them')
    .action(
      action(async (ownerText: string, paths: string[], opts: { recursive?: boolean }, cmd: Command) => {
        const { uid, gid } = parseOwner(ownerText);
        await withFileSystem(cmd, (fs) =>
          forEachItem(cmd, paths.map(cliPath), async (p) => {
            await walk(fs, p, opts.recursive === true, async (path) => {
              await fs.chown(path, uid, gid);
            });
          }),
        );
      }),
    );
}

function parseOwner(text: string): { uid?: number; gid?: number } {
  const [u, g] = text.split(':', 2);
  const out: { uid?: number; gid?: number } = {};
  if (u !== undefined && u !== '') {
    const uid = parseUser(u);
    if (uid === undefined)
      throw new UsageError(`fs chown: unknown user "${u}" (expected a user name or a number)`);
    out.uid = uid;
  }
  if (g !== undefined && g !== '') {
    const gid = parseGroup(g);
    if (gid === undefined)
      throw new UsageError(`fs chown: unknown group "${g}" (expected a group name or a number)`);
    out.gid = gid;
  }
  if (out.uid === undefined && out.gid === undefined) {
    throw new UsageError(`fs chown: expected OWNER, OWNER:GROUP or :GROUP (got "${text}")`);
  }
  return out;
}

/** Applies `fn` to a path and, with `recursive`, to everything under it (parents first). */
async function walk(
  fs: FileSystem,
  path: string,
  recursive: boolean,
  fn: (path: string, type: 'file' | 'dir' | 'symlink', mode: number) => Promise<void>,
): Promise<void> {
  const st = await fs.stat(path);
  await fn(path, st.type, st.mode);
  if (!recursive || st.type !== 'dir') return;
  for await (const page of fs.list(path)) {
    for (const e of page) {
      if (e.type === 'dir') await walk(fs, e.path, true, fn);
      else await fn(e.path, e.type, e.mode);
    }
  }
}
