/**
 * Moving bytes: `fs put LOCAL... DST` (files or whole directories; `-` reads stdin),
 * `fs get SRC LOCAL` (files or directories) and `fs cat PATH...`. Everything streams: a file is
 * never held in memory. `get` writes to a temp file beside the target and renames it when
 * complete, so an interrupted download leaves no partial file. Large transfers show a progress
 * bar on a terminal.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { FileSystem } from '../../client/filesystem.js';
import { parseStorageType } from '../../common/config/index.js';
import { FsError, UsageError, fsError } from '../../common/errors.js';
import { parseDuration, parseSize } from '../../common/units.js';
import type { StorageType } from '../../common/config/index.js';
import { action, globalOptions, printJson } from '../context.js';
import { cliPath, forEachItem, withFileSystem } from '../client.js';
import { Progress } from '../progress.js';

interface PutOptions {
  force?: boolean;
  blockSize?: string;
  replicas?: string;
  storageType?: string;
  ttl?: string;
}

interface CreateArgs {
  blockSizeBytes?: number;
  replicas?: number;
  storageType?: StorageType;
  ttlMs?: number;
}

export function registerTransfer(fs: Command): void {
  fs.command('put')
    .description('copy local files or directories into Strata ("-" reads stdin)')
    .argument(
      '<paths...>',
      'local files or directories (or - for stdin), then the destination (an existing directory receives the sources by name)',
    )
    .option('-f, --force', 'overwrite existing files')
    .option('--block-size <size>', 'block size of new files, e.g. 64MB (default client.block_size)')
    .option('--replicas <n>', 'copies of each block (default client.replicas)')
    .option(
      '--storage-type <type>',
      'preferred tier: MEM, NVME, SSD, DISK, HDD (default client.storage_type)',
    )
    .option('--ttl <duration>', 'expire the files this long after their last change, e.g. 7d')
    .action(
      action(async (paths: string[], opts: PutOptions, cmd: Command) => {
        if (paths.length < 2) throw new UsageError('fs put: expected one or more sources and a destination');
        const sources = paths.slice(0, -1);
        const dstText = paths[paths.length - 1] as string;
        const create = createArgs(opts);
        const dst = cliPath(dstText);
        if (sources.includes('-') && sources.length > 1) {
          throw new UsageError('fs put: "-" (stdin) must be the only source');
        }
        const json = globalOptions(cmd).json === true;
        await withFileSystem(cmd, async (fs) => {
          const dstStat = await fs.exists(dst);
          const intoDir = dstStat?.type === 'dir' || dstText.endsWith('/');
          if (sources.length > 1 && !intoDir) {
            throw fsError('ENOTDIR', dst, 'several sources need a directory as destination');
          }
          const results: { source: string; path: string; bytes: number }[] = [];
          await forEachItem(cmd, sources, async (src) => {
            if (src === '-') {
              if (intoDir)
                throw new UsageError('fs put -: the destination must be a file path, not a directory');
              const bytes = await putStream(fs, process.stdin, dst, undefined, 'stdin', opts, create, json);
              results.push({ source: '-', path: dst, bytes });
              return;
            }
            const target = intoDir ? joinRemote(dst, basename(src)) : dst;
            await putPath(fs, src, target, opts, create, json, results);
          });
          if (json) printJson(results);
        });
      }),
    );

  fs.command('get')
    .description('copy files or directories from Strata to the local disk')
    .argument('<src>', 'path in Strata')
    .argument('<local>', 'local destination (an existing directory receives the source by name)')
    .option('-f, --force', 'overwrite existing local files')
    .action(
      action(async (srcText: string, local: string, opts: { force?: boolean }, cmd: Command) => {
        const src = cliPath(srcText);
        const json = globalOptions(cmd).json === true;
        await withFileSystem(cmd, async (fs) => {
          const st = await fs.stat(src);
          const localStat = await stat(local).catch(() => undefined);
          const target = localStat?.isDirectory() === true ? join(local, basename(src) || 'root') : local;
          const results: { path: string; local: string; bytes: number }[] = [];
          await getPath(fs, src, st.type === 'dir', target, opts.force === true, json, results);
          if (json) printJson(results);
        });
      }),
    );

  fs.command('cat')
    .description('write files to stdout')
    .argument('<paths...>', 'files to print, in order')
    .action(
      action(async (paths: string[], _opts: unknown, cmd: Command) => {
        await withFileSystem(cmd, async (fs) => {
          let closed = false;
          await forEachItem(cmd, paths.map(cliPath), async (p) => {
            if (closed) return;
            try {
              await pipeline(fs.createReadStream(p), process.stdout, { end: false });
            } catch (err) {
              // The reader went away (`cat | head`): stop quietly, like cat(1).
              if ((err as NodeJS.ErrnoException).code === 'EPIPE' || process.stdout.destroyed) {
                closed = true;
                return;
              }
              throw err;
            }
          });
        });
      }),
    );
}

function createArgs(opts: PutOptions): CreateArgs {
  const out: CreateArgs = {};
  if (opts.blockSize !== undefined) {
    const n = parseSize(opts.blockSize);
    if (n === undefined || n < 64 * 1024 || n % 4096 !== 0) {
      throw new UsageError(
        `--block-size: expected a size of at least 64KB, a multiple of 4096 (got "${opts.blockSize}")`,
      );
    }
    out.blockSizeBytes = n;
  }
  if (opts.replicas !== undefined) {
    const n = Number(opts.replicas);
    if (!Number.isInteger(n) || n < 1 || n > 16) {
      throw new UsageError(`--replicas: expected a number from 1 to 16 (got "${opts.replicas}")`);
    }
    out.replicas = n;
  }
  if (opts.storageType !== undefined) {
    const t = parseStorageType(opts.storageType);
    if (t === undefined) {
      throw new UsageError(
        `--storage-type: expected MEM, NVME, SSD, DISK or HDD (got "${opts.storageType}")`,
      );
    }
    out.storageType = t;
  }
  if (opts.ttl !== undefined) {
    const ms = parseDuration(opts.ttl);
    if (ms === undefined)
      throw new UsageError(`--ttl: expected a duration such as 10m, 1h or 7d (got "${opts.ttl}")`);
    out.ttlMs = ms;
  }
  return out;
}

function joinRemote(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

async function putPath(
  fs: FileSystem,
  src: string,
  dst: string,
  opts: PutOptions,
  create: CreateArgs,
  json: boolean,
  results: { source: string; path: string; bytes: number }[],
): Promise<void> {
  let st;
  try {
    st = await lstat(src);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FsError(
      code === 'EACCES' ? 'EACCES' : 'ENOENT',
      `${src}: ${code === 'EACCES' ? 'permission denied' : 'no such file or directory'} (local source)`,
      {
        details: { path: src },
      },
    );
  }
  if (st.isDirectory()) {
    await fs.mkdir(dst, { parents: true });
    const names = (await readdir(src)).sort();
    for (const name of names)
      await putPath(fs, join(src, name), joinRemote(dst, name), opts, create, json, results);
    return;
  }
  if (!st.isFile()) {
    const real = await stat(src).catch(() => undefined);
    if (real?.isFile() !== true)
      throw new FsError('EINVAL', `${src}: not a regular file (local source)`, { details: { path: src } });
  }
  const bytes = await putStream(
    fs,
    createReadStream(src, { highWaterMark: 1024 * 1024 }),
    dst,
    st.size,
    src,
    opts,
    create,
    json,
  );
  results.push({ source: src, path: dst, bytes });
}

async function putStream(
  fs: FileSystem,
  input: Readable,
  dst: string,
  size: number | undefined,
  label: string,
  opts: PutOptions,
  create: CreateArgs,
  json: boolean,
): Promise<number> {
  const progress = new Progress({
    label: basename(label),
    ...(size === undefined ? {} : { totalBytes: size }),
    ...(json ? { enabled: false } : {}),
  });
  const out = fs.createWriteStream(dst, {
    ...create,
    overwrite: opts.force === true,
    // Like HDFS: missing parent directories of the destination are created.
    parents: true,
    ...(size === undefined ? {} : { sizeHintBytes: size }),
  });
  try {
    await pipeline(input, counter(progress), out);
  } finally {
    progress.finish();
  }
  return progress.bytes;
}

async function getPath(
  fs: FileSystem,
  src: string,
  isDir: boolean,
  target: string,
  force: boolean,
  json: boolean,
  results: { path: string; local: string; bytes: number }[],
): Promise<void> {
  if (isDir) {
    await mkdir(target, { recursive: true });
    for await (const e of fs.entries(src)) {
      if (e.type === 'symlink') continue;
      await getPath(fs, e.path, e.type === 'dir', join(target, e.name), force, json, results);
    }
    return;
  }
  const existing = await stat(target).catch(() => undefined);
  if (existing !== undefined && !force) {
    throw new FsError('EEXIST', `${target}: file exists (local destination; -f overwrites)`, {
      details: { path: target },
    });
  }
  const r = await fs.open(src);
  const tmp = join(dirname(target), `.${basename(target)}.strata-${process.pid}.part`);
  const progress = new Progress({
    label: basename(src),
    totalBytes: r.size,
    ...(json ? { enabled: false } : {}),
  });
  try {
    await pipeline(r.createReadStream(), counter(progress), createWriteStream(tmp) as Writable);
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    progress.finish();
    await r.close();
  }
  results.push({ path: src, local: target, bytes: progress.bytes });
}

function counter(progress: Progress): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb): void {
      progress.add(chunk.length);
      cb(null, chunk);
    },
  });
}
