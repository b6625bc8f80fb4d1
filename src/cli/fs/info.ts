/**
 * Read-only views: `fs stat`, `fs count`, `fs du [-s] [-h]`, `fs df [-h]`, `fs blocks` (where
 * each block of a file is, holes included) and `fs free` (drop cached copies of a UFS-backed
 * path; needs UFS mounts, which this version does not have yet). `--json` everywhere.
 */
import type { Command } from 'commander';
import { FsError } from '../../common/errors.js';
import type { FileStatus, LocatedBlock } from '../../protocol/types.js';
import { freePaths } from '../commands/free.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { cliPath, forEachItem, withFileSystem } from '../client.js';
import { groupName, modeString, sizeText, table, timeText, userName } from '../format.js';

export function registerInfo(fs: Command): void {
  fs.command('stat')
    .description('show the status of files and directories')
    .argument('<paths...>', 'paths')
    .action(
      action(async (paths: string[], _opts: unknown, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        await withFileSystem(cmd, async (fs) => {
          const out: FileStatus[] = [];
          await forEachItem(cmd, paths.map(cliPath), async (p) => {
            const st = await fs.stat(p);
            if (json) out.push(st);
            else printStat(st);
          });
          if (json) printJson(paths.length === 1 ? out[0] : out);
        });
      }),
    );

  fs.command('count')
    .description('count directories, files and bytes under paths: DIRS FILES BYTES PATH')
    .argument('<paths...>', 'paths')
    .option('-h, --human', 'sizes as 1.5MiB')
    .option('-v, --header', 'print a header line')
    .action(
      action(async (paths: string[], opts: { human?: boolean; header?: boolean }, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        await withFileSystem(cmd, async (fs) => {
          const rows: string[][] = opts.header === true ? [['DIRS', 'FILES', 'BYTES', 'PATH']] : [];
          const out: unknown[] = [];
          await forEachItem(cmd, paths.map(cliPath), async (p) => {
            const s = await fs.contentSummary(p);
            out.push({ path: p, ...s });
            rows.push([String(s.dirs), String(s.files), sizeText(s.length, opts.human === true), p]);
          });
          if (json) printJson(out);
          else for (const line of table(rows, new Set([0, 1, 2]))) println(line);
        });
      }),
    );

  fs.command('du')
    .description('space used by each entry of a directory: BYTES CACHED PATH')
    .argument('[paths...]', 'paths (default: /)')
    .option('-s, --summary', 'one line per path instead of one per entry')
    .option('-h, --human', 'sizes as 1.5MiB')
    .action(
      action(async (paths: string[], opts: { summary?: boolean; human?: boolean }, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const h = opts.human === true;
        await withFileSystem(cmd, async (fs) => {
          const rows: string[][] = [];
          const out: unknown[] = [];
          const add = (path: string, length: number, cached: number): void => {
            out.push({ path, length, cachedBytes: cached });
            rows.push([sizeText(length, h), sizeText(cached, h), path]);
          };
          await forEachItem(cmd, (paths.length === 0 ? ['/'] : paths).map(cliPath), async (p) => {
            const st = await fs.stat(p);
            if (opts.summary === true || st.type !== 'dir') {
              const s = await fs.contentSummary(p);
              add(p, s.length, s.cachedBytes);
              return;
            }
            for await (const e of fs.entries(p)) {
              if (e.type === 'dir') {
                const s = await fs.contentSummary(e.path);
                add(e.path, s.length, s.cachedBytes);
              } else add(e.path, e.size, e.cachedBytes ?? 0);
            }
          });
          if (json) printJson(out);
          else for (const line of table(rows, new Set([0, 1]))) println(line);
        });
      }),
    );

  fs.command('df')
    .description('cluster capacity, used and available space')
    .option('-h, --human', 'sizes as 1.5GiB')
    .action(
      action(async (opts: { human?: boolean }, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const h = opts.human === true;
        await withFileSystem(cmd, async (fs) => {
          const info = await fs.clusterInfo();
          if (json) {
            printJson({
              capacityBytes: info.capacityBytes,
              usedBytes: info.usedBytes,
              availableBytes: info.availableBytes,
              tiers: info.tiers,
            });
            return;
          }
          const pct = (used: number, cap: number): string =>
            cap > 0 ? `${Math.round((used / cap) * 100)}%` : '-';
          const rows = [
            ['Tier', 'Size', 'Used', 'Available', 'Use%'],
            ...info.tiers.map((t) => [
              t.storageType,
              sizeText(t.capacityBytes, h),
              sizeText(t.usedBytes, h),
              sizeText(t.availableBytes, h),
              pct(t.usedBytes, t.capacityBytes),
            ]),
            [
              'total',
              sizeText(info.capacityBytes, h),
              sizeText(info.usedBytes, h),
              sizeText(info.availableBytes, h),
              pct(info.usedBytes, info.capacityBytes),
            ],
          ];
          for (const line of table(rows, new Set([1, 2, 3, 4]))) println(line);
        });
      }),
    );

  fs.command('blocks')
    .description('list the blocks of a file and the workers holding each')
    .argument('<path>', 'file')
    .action(
      action(async (pathText: string, _opts: unknown, cmd: Command) => {
        const json = globalOptions(cmd).json === true;
        const p = cliPath(pathText);
        await withFileSystem(cmd, async (fs) => {
          const { status, blocks } = await fs.blockLocations(p);
          if (status.type !== 'file')
            throw new FsError('EISDIR', `${p}: is a directory (blocks are per file)`, {
              details: { path: p },
            });
          if (json) {
            printJson({
              path: p,
              size: status.size,
              blockSize: status.blockSize,
              replicas: status.replicas,
              blocks,
            });
            return;
          }
          println(
            `${p}: ${status.size} bytes, block size ${status.blockSize}, ${status.replicas} replica(s)`,
          );
          const rows = [['BLOCK', 'OFFSET', 'LENGTH', 'WORKERS']];
          for (const seg of withHoles(blocks, status.size)) {
            rows.push(
              seg.block === undefined
                ? ['(hole)', String(seg.offset), String(seg.length), '-']
                : [
                    String(seg.block.blockId),
                    String(seg.offset),
                    String(seg.length),
                    seg.block.workers.length === 0
                      ? '(no live copy)'
                      : seg.block.workers.map((w) => `${w.hostname}:${w.rpcPort}`).join(','),
                  ],
            );
          }
          for (const line of table(rows, new Set([1, 2]))) println(line);
        });
      }),
    );

  fs.command('free')
    .description('drop the cached copies of a path that is backed by a UFS mount')
    .argument('<paths...>', 'paths under a UFS mount')
    .option('-r, --recursive', 'everything under directories')
    .action(
      action(async (paths: string[], opts: { recursive?: boolean }, cmd: Command) => {
        await freePaths(cmd, paths, opts.recursive === true);
      }),
    );
}

function printStat(st: FileStatus): void {
  const rows: [string, string][] = [
    ['path', st.path],
    ['type', st.type + (st.state === 'writing' ? ' (being written)' : '')],
    ['size', `${st.size}`],
    ['mode', `${st.mode.toString(8).padStart(4, '0')} (${modeString(st.type, st.mode)})`],
    ['owner', `${userName(st.uid)} (${st.uid})`],
    ['group', `${groupName(st.gid)} (${st.gid})`],
    ['links', `${st.nlink}`],
    ['modified', timeText(st.mtimeMs)],
    ['accessed', timeText(st.atimeMs)],
    ['changed', timeText(st.ctimeMs)],
  ];
  if (st.type === 'file') {
    rows.push(
      ['block size', `${st.blockSize}`],
      ['replicas', `${st.replicas}`],
      ['storage type', st.storageType],
    );
    if (st.cachedBytes !== undefined) rows.push(['cached', `${st.cachedBytes}`]);
  }
  if (st.type === 'dir' && st.children !== undefined) rows.push(['entries', `${st.children}`]);
  if (st.target !== undefined) rows.push(['target', st.target]);
  if (st.ttlMs > 0) rows.push(['ttl', `${st.ttlMs} ms, then ${st.ttlAction}`]);
  if (st.ufsPath !== undefined) rows.push(['ufs path', st.ufsPath]);
  rows.push(['id', `${st.id}`]);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) println(`${k.padStart(w)}: ${v}`);
}

/** The file as contiguous segments: located blocks and the holes between them. */
function withHoles(
  blocks: readonly LocatedBlock[],
  size: number,
): { offset: number; length: number; block?: LocatedBlock }[] {
  const out: { offset: number; length: number; block?: LocatedBlock }[] = [];
  let at = 0;
  for (const b of [...blocks].sort((x, y) => x.offset - y.offset)) {
    if (b.offset > at) out.push({ offset: at, length: b.offset - at });
    out.push({ offset: b.offset, length: b.length, block: b });
    at = b.offset + b.length;
  }
  if (at < size) out.push({ offset: at, length: size - at });
  return out;
}
