/**
 * Browse under a UFS mount: the unified namespace, as `strata ls` sees it. A path under a mount
 * is entered from its UFS when the namespace does not hold it yet, a directory's first page is
 * synced with its UFS listing first (at most once per `master.ufs_sync_interval`: the sync keeps
 * its own clock, so the console's auto-refresh does not list the UFS every 5 s), and every
 * entry carries its UFS origin (`ufsPath`: the mount's URI, which holds no secret, plus the path
 * inside it). Outside mounts this is the plain namespace.
 */
import type { Logger } from '../../common/logging.js';
import type { FileStatus } from '../../protocol/types.js';
import type { MasterCore } from '../core.js';
import { isWithin, trimPath, ufsPathOf } from '../mounts/mount-table.js';
import type { Resolved } from '../mounts/mount-table.js';

/** The status of `path`, entered from its UFS when needed, with its UFS origin. */
export async function browseStatus(core: MasterCore, path: string): Promise<FileStatus> {
  const r = core.ufs.mounts.table.resolve(path);
  if (r === undefined) return core.namespace.getStatus(path);
  const st = await core.ufs.sync.status(trimPath(path), r, () => core.namespace.getStatus(path));
  return withUfsOrigin(st, r);
}

/**
 * Before a directory's first page: enters what its UFS lists; true when the directory is under a
 * mount (and was synced). An unreachable UFS leaves the listing to what Strata holds (a cache
 * answers without its origin), with a warning in the log.
 */
export async function syncBrowsedDir(core: MasterCore, path: string, log: Logger): Promise<boolean> {
  const r = core.ufs.mounts.table.resolve(path);
  if (r === undefined) return false;
  try {
    await core.ufs.sync.syncDir(trimPath(path), r);
    return true;
  } catch (err) {
    log.warn(
      { path, err: err instanceof Error ? err.message : String(err) },
      'UFS listing failed; the console shows the cache only',
    );
    return false;
  }
}

/** Adds the UFS origin to entries of a listing of `dir`. */
export function withUfsOrigins(core: MasterCore, dir: string, entries: FileStatus[]): FileStatus[] {
  const r = core.ufs.mounts.table.resolve(dir);
  return r === undefined ? entries : entries.map((e) => withUfsOrigin(e, r));
}

function withUfsOrigin(s: FileStatus, r: Resolved): FileStatus {
  const p = trimPath(s.path);
  const inner = isWithin(p, r.mount.path) ? ufsPathOf(p, r.mount.path) : r.ufsPath;
  return { ...s, ufsPath: inner === '/' ? r.mount.uri : `${r.mount.uri}${inner}` };
}
