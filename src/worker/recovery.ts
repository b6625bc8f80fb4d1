/**
 * Start-up scan of the data directories: staging leftovers (writes a crash interrupted) are
 * removed, published block files are found by name and sized with one stat each — no data is
 * read; checksums are verified lazily when a block is read. A file whose size cannot be a block
 * is removed and reported corrupt; a block found twice (a move interrupted after publishing its
 * copy) keeps the newer copy.
 */
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logging.js';
import { lengthFromFileSize } from '../protocol/block-format.js';
import { unlinkIfExists } from './fs-util.js';
import type { TierDir } from './tier-dir.js';

export const BLOCK_FILE_SUFFIX = '.blk';
const BLOCK_FILE_RE = /^([1-9]\d{0,15})\.blk$/;
/** Concurrent stats during the scan. */
const SCAN_CONCURRENCY = 64;

export function blockFileName(blockId: number): string {
  return `${blockId}${BLOCK_FILE_SUFFIX}`;
}

export interface FoundBlock {
  blockId: number;
  dir: TierDir;
  path: string;
  lengthBytes: number;
  fileBytes: number;
  mtimeMs: number;
}

export interface RecoveryReport {
  blocks: FoundBlock[];
  /** Block ids whose files were damaged beyond use (removed). */
  corrupt: number[];
  stagingFilesRemoved: number;
  duplicatesRemoved: number;
  unknownFiles: number;
}

export async function recoverDirs(dirs: readonly TierDir[], log: Logger): Promise<RecoveryReport> {
  const report: RecoveryReport = {
    blocks: [],
    corrupt: [],
    stagingFilesRemoved: 0,
    duplicatesRemoved: 0,
    unknownFiles: 0,
  };
  const byId = new Map<number, FoundBlock>();
  for (const dir of dirs) {
    await mkdir(dir.activeDir, { recursive: true });
    await mkdir(dir.stagingDir, { recursive: true });
    for (const name of await readdir(dir.stagingDir)) {
      if (await unlinkIfExists(join(dir.stagingDir, name))) report.stagingFilesRemoved++;
    }
    const names = await readdir(dir.activeDir);
    for (let i = 0; i < names.length; i += SCAN_CONCURRENCY) {
      const batch = names.slice(i, i + SCAN_CONCURRENCY);
      const found = await Promise.all(batch.map((name) => inspect(dir, name, report, log)));
      for (const f of found) {
        if (f === undefined) continue;
        const prev = byId.get(f.blockId);
        if (prev === undefined) {
          byId.set(f.blockId, f);
          continue;
        }
        const [keep, drop] = prev.mtimeMs >= f.mtimeMs ? [prev, f] : [f, prev];
        log.warn(
          { blockId: f.blockId, kept: keep.path, removed: drop.path },
          'block found twice: kept the newer copy',
        );
        await unlinkIfExists(drop.path);
        report.duplicatesRemoved++;
        byId.set(f.blockId, keep);
      }
    }
  }
  report.blocks = [...byId.values()].sort((a, b) => a.mtimeMs - b.mtimeMs);
  return report;
}

async function inspect(
  dir: TierDir,
  name: string,
  report: RecoveryReport,
  log: Logger,
): Promise<FoundBlock | undefined> {
  const path = join(dir.activeDir, name);
  const m = BLOCK_FILE_RE.exec(name);
  const blockId = m === null ? NaN : Number(m[1]);
  if (!Number.isSafeInteger(blockId)) {
    report.unknownFiles++;
    log.warn({ path }, 'unknown file in a block directory: left alone');
    return undefined;
  }
  const st = await stat(path);
  const lengthBytes = st.isFile() ? lengthFromFileSize(st.size) : undefined;
  if (lengthBytes === undefined) {
    log.error({ path, sizeBytes: st.size }, 'block file has an impossible size: removed as corrupt');
    await unlinkIfExists(path);
    report.corrupt.push(blockId);
    return undefined;
  }
  return { blockId, dir, path, lengthBytes, fileBytes: st.size, mtimeMs: st.mtimeMs };
}
