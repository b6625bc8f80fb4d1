/**
 * `strata mount` (list), `strata mount <uri> [path] [-c key=value]… [options]` and
 * `strata umount <path>`: the UFS mount table (docs/ufs.md). The master checks a new mount
 * against its UFS (reachable, credentials accepted) before storing it; secret option values are
 * never printed (the master masks them in every answer).
 */
import type { Command } from 'commander';
import type { MountRequest } from '../../client/filesystem.js';
import { STORAGE_TYPES } from '../../common/config/data-dir.js';
import type { StorageType } from '../../common/config/data-dir.js';
import { TTL_ACTIONS, WRITE_TYPES } from '../../common/config/schema.js';
import type { WriteType } from '../../common/config/schema.js';
import { FsError, StrataError, UsageError } from '../../common/errors.js';
import { DURATION_HELP, SIZE_HELP, formatDuration, parseDuration, parseSize } from '../../common/units.js';
import type { MountInfo } from '../../protocol/ufs-types.js';
import { MAX_MOUNT_OPTIONS } from '../../protocol/ufs-types.js';
import { action, globalOptions, printJson, println } from '../context.js';
import { cliPath, withFileSystem } from '../client.js';
import { sizeText, table } from '../format.js';

/** Most replicas a mount may ask for (the protocol's bound). */
const MAX_MOUNT_REPLICAS = 16;
/** TTL actions a mount takes (`none` is what no --ttl means). */
const MOUNT_TTL_ACTIONS = TTL_ACTIONS.filter((a) => a !== 'none');

interface MountCliOptions {
  option: string[];
  ttl?: string;
  ttlAction?: string;
  writeType?: string;
  readVerifyUfs?: boolean;
  autoCache?: string;
  replicas?: string;
  blockSize?: string;
  storageType?: string;
  check?: boolean;
  dryRun?: boolean;
  readOnly?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function register(program: Command): void {
  program
    .command('mount')
    .description('mount a UFS (s3://, file://, http(s)://) into the namespace, or list mounts (no arguments)')
    .argument('[uri]', 'the UFS root, e.g. s3://bucket/prefix, file:///data, https://host/prefix')
    .argument('[path]', 'where it appears (default: 1:1, s3://bucket/a mounts at /bucket/a)')
    .option(
      '-c, --option <key=value>',
      'a UFS option, e.g. s3.endpoint_url=http://minio:9000 (repeatable)',
      collect,
      [],
    )
    .option('--ttl <duration>', `files expire this long after entering the cache (${DURATION_HELP})`)
    .option('--ttl-action <action>', `what expiry does: ${MOUNT_TTL_ACTIONS.join(' or ')} (default free)`)
    .option('--write-type <type>', `how writes reach the UFS: ${WRITE_TYPES.join(', ')} (default cache)`)
    .option(
      '--read-verify-ufs',
      're-check the UFS object when a cached file is opened; a changed one is re-read',
    )
    .option(
      '--read-only',
      'nothing under the mount may be created, written, renamed or deleted (EROFS); reads and loads work',
    )
    .option('--auto-cache <bool>', 'cache what reads fetch from the UFS: true (default) or false')
    .option(
      '--replicas <n>',
      `cached copies of each block (1-${MAX_MOUNT_REPLICAS}; default: client.replicas)`,
    )
    .option('--block-size <size>', `block size of files under the mount (${SIZE_HELP})`)
    .option('--storage-type <type>', `tier for cached blocks: ${STORAGE_TYPES.join(', ')}`)
    .option('--check', 'check the UFS (reachable, credentials accepted) and print the result; mount nothing')
    .option(
      '--dry-run',
      'validate the URI, options and mount point without contacting the UFS; mount nothing',
    )
    .action(
      action(
        async (uri: string | undefined, path: string | undefined, opts: MountCliOptions, cmd: Command) => {
          const json = globalOptions(cmd).json === true;
          if (uri === undefined) {
            if (hasMountFlags(opts)) throw new UsageError('mount: options need a UFS URI to mount');
            await withFileSystem(cmd, async (fs) => {
              const mounts = await fs.listMounts();
              if (json) printJson(mounts);
              else printMounts(mounts);
            });
            return;
          }
          const req = mountRequest(opts);
          await withFileSystem(cmd, async (fs) => {
            let m: MountInfo;
            try {
              m = await fs.mount(uri, path === undefined ? undefined : cliPath(path), req);
            } catch (err) {
              throw refused(err);
            }
            if (json) {
              printJson(m);
              return;
            }
            if (opts.check === true)
              println(`${m.uri}: reachable, credentials accepted; would mount at ${m.path}`);
            else if (opts.dryRun === true)
              println(`${m.uri}: would mount at ${m.path} (the UFS was not contacted)`);
            else println(`mounted ${m.uri} at ${m.path}`);
          });
        },
      ),
    );

  program
    .command('umount')
    .alias('unmount')
    .description(
      'remove a mount: its entries leave the namespace and its cached copies are dropped; the UFS is untouched',
    )
    .argument('<path>', 'the mount point')
    .action(
      action(async (path: string, _opts: unknown, cmd: Command) => {
        const p = cliPath(path);
        await withFileSystem(cmd, async (fs) => {
          await fs.unmount(p);
          if (globalOptions(cmd).json === true) printJson({ unmounted: p });
          else println(`unmounted ${p}`);
        });
      }),
    );
}

function hasMountFlags(o: MountCliOptions): boolean {
  return (
    o.option.length > 0 ||
    [
      o.ttl,
      o.ttlAction,
      o.writeType,
      o.readVerifyUfs,
      o.readOnly,
      o.autoCache,
      o.replicas,
      o.blockSize,
      o.storageType,
      o.check,
      o.dryRun,
    ].some((v) => v !== undefined)
  );
}

/** The CLI flags as a mount request; every bad value is a usage error naming what is allowed. */
export function mountRequest(o: MountCliOptions): MountRequest {
  const options: Record<string, string> = {};
  if (o.option.length > MAX_MOUNT_OPTIONS) {
    throw new UsageError(`mount: at most ${MAX_MOUNT_OPTIONS} -c options (got ${o.option.length})`);
  }
  for (const kv of o.option) {
    const eq = kv.indexOf('=');
    if (eq <= 0)
      throw new UsageError(`mount: -c expects key=value (got "${eq < 0 ? kv : kv.slice(0, eq)}…")`);
    const key = kv.slice(0, eq).trim();
    if (key in options) throw new UsageError(`mount: option ${key} given twice`);
    options[key] = kv.slice(eq + 1);
  }
  const req: MountRequest = { options };
  if (o.ttl !== undefined) {
    const ms = parseDuration(o.ttl);
    if (ms === undefined || ms <= 0)
      throw new UsageError(`mount: --ttl expects ${DURATION_HELP} above 0 (got "${o.ttl}")`);
    req.ttlMs = ms;
  }
  if (o.ttlAction !== undefined) {
    const a = MOUNT_TTL_ACTIONS.find((x) => x === o.ttlAction);
    if (a === undefined) {
      throw new UsageError(
        `mount: --ttl-action expects ${MOUNT_TTL_ACTIONS.join(' or ')} (got "${o.ttlAction}")`,
      );
    }
    if (req.ttlMs === undefined) throw new UsageError('mount: --ttl-action needs --ttl');
    req.ttlAction = a;
  }
  if (o.writeType !== undefined) {
    const w = WRITE_TYPES.find((x) => x === o.writeType);
    if (w === undefined) {
      throw new UsageError(`mount: --write-type expects ${WRITE_TYPES.join(', ')} (got "${o.writeType}")`);
    }
    req.writeType = w satisfies WriteType;
  }
  if (o.readVerifyUfs === true) req.readVerifyUfs = true;
  if (o.readOnly === true) req.mountReadOnly = true;
  if (o.autoCache !== undefined) {
    const v = o.autoCache.toLowerCase();
    if (v !== 'true' && v !== 'false') {
      throw new UsageError(`mount: --auto-cache expects true or false (got "${o.autoCache}")`);
    }
    req.autoCache = v === 'true';
  }
  if (o.replicas !== undefined) {
    const n = Number(o.replicas);
    if (!Number.isInteger(n) || n < 1 || n > MAX_MOUNT_REPLICAS) {
      throw new UsageError(
        `mount: --replicas expects an integer from 1 to ${MAX_MOUNT_REPLICAS} (got "${o.replicas}")`,
      );
    }
    req.replicas = n;
  }
  if (o.blockSize !== undefined) {
    const n = parseSize(o.blockSize);
    if (n === undefined || n <= 0)
      throw new UsageError(`mount: --block-size expects ${SIZE_HELP} (got "${o.blockSize}")`);
    req.blockSize = n;
  }
  if (o.storageType !== undefined) {
    const t = STORAGE_TYPES.find((x) => x === o.storageType?.toUpperCase());
    if (t === undefined) {
      throw new UsageError(
        `mount: --storage-type expects ${STORAGE_TYPES.join(', ')} (got "${o.storageType}")`,
      );
    }
    req.storageType = t satisfies StorageType;
  }
  if (o.check === true && o.dryRun === true) {
    throw new UsageError(
      'mount: --check and --dry-run exclude each other (--check contacts the UFS, --dry-run does not)',
    );
  }
  if (o.check === true) {
    req.dryRun = true;
    req.check = true;
  }
  if (o.dryRun === true) {
    req.dryRun = true;
    req.check = false;
  }
  return req;
}

/**
 * A refused mount: the UFS's own answer (unreachable, denied, missing bucket) is a failed
 * operation (exit 1), not an unreachable cluster (exit 3), and says nothing was mounted.
 */
function refused(err: unknown): unknown {
  if (!(err instanceof FsError)) return err;
  return new StrataError('STRATA_MOUNT_REFUSED', `${err.message}; nothing was mounted`, {
    cause: err,
    details: { code: err.code },
  });
}

function printMounts(mounts: readonly MountInfo[]): void {
  if (mounts.length === 0) {
    println('no mounts (strata mount <uri> [path] adds one)');
    return;
  }
  const rows = [['PATH', 'UFS', 'WRITE', 'TTL', 'OPTIONS']];
  for (const m of mounts) {
    const flags = [
      ...(m.readOnly || m.mountReadOnly === true ? ['read-only'] : []),
      ...(m.readVerifyUfs ? ['read-verify-ufs'] : []),
      ...(m.autoCache ? [] : ['auto-cache=false']),
      ...(m.replicas > 0 ? [`replicas=${m.replicas}`] : []),
      ...(m.blockSize > 0 ? [`block-size=${sizeText(m.blockSize, true)}`] : []),
      ...(m.storageType === undefined ? [] : [`storage-type=${m.storageType}`]),
    ];
    const options = Object.entries(m.options)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`);
    rows.push([
      m.path,
      m.uri,
      m.writeType,
      m.ttlMs > 0 ? `${ttlText(m.ttlMs)} ${m.ttlAction}` : '-',
      [...flags, ...options].join(' ') || '-',
    ]);
  }
  for (const line of table(rows, new Set())) println(line);
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** A TTL as typed: whole days and hours stay "7d" and "12h". */
function ttlText(ms: number): string {
  if (ms % DAY_MS === 0) return `${ms / DAY_MS}d`;
  if (ms % HOUR_MS === 0) return `${ms / HOUR_MS}h`;
  return formatDuration(ms);
}
