/**
 * The FUSE role (`strata fuse`): a client of the cluster, the mount, and the web port with
 * `/metrics` and `/healthz`. Start checks everything it can before mounting (the cluster answers,
 * `fs_path` is a directory, the web port is free, the mount point is usable) so a bad setup fails
 * with one clear line instead of a half-made mount.
 */
import { createHash } from 'node:crypto';
import type { FileSystem as StrataClient } from '../client/index.js';
import { FileSystem, localHostId } from '../client/index.js';
import type { ClusterConfig } from '../common/config/index.js';
import { FsError, UsageError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { OpsHttpServer } from '../common/ops-http.js';
import type { FuseBinding, MountedFs } from './binding.js';
import { FuseMetrics, instrument } from './metrics.js';
import { mountAt, prepareMountPoint } from './mount-point.js';
import { KernelFuseBinding } from './kernel/engine.js';
import { NativeFuseBinding } from './native-engine.js';
import { StrataFs } from './strata-fs.js';

/** Shown in /proc/self/mountinfo as the source and as the type `fuse.strata`. */
export const FUSE_FS_NAME = 'strata';
/**
 * Options every mount gets first: other users may use it (root mounts it for the node's
 * pods), and the kernel checks permissions against the modes we report (the client acts as
 * root on the master whoever asks).
 */
export const DEFAULT_MOUNT_OPTIONS: readonly string[] = ['allow_other', 'default_permissions'];
/** A request unanswered this long fails with ETIMEDOUT (a commit uploads up to a block). */
export const FUSE_REQUEST_TIMEOUT_MS = 120_000;
/**
 * Short-circuit reads up to this size run on the event loop (`syncLocalReadMaxBytes`): a 4 KiB
 * random read then costs one thread hand-over fewer each way, the largest share of its time.
 * Block files of a local worker are in its memory tier or the page cache in the common case;
 * a read from a cold disk blocks the loop for that one small read.
 */
export const FUSE_SYNC_LOCAL_READ_MAX_BYTES = 128 * 1024;
/** Hex digits of a mount's tag (64 bits: no two mounts of one cluster share one). */
const MOUNT_TAG_CHARS = 16;
/** How often the mount is checked to still exist (an admin may `umount` it under us). */
export const MOUNT_WATCH_INTERVAL_MS = 2_000;

export interface FuseServiceOptions {
  config: ClusterConfig;
  log: Logger;
  registry: Registry;
  /** `-o` options from the command line, added after the config's `fuse.options`. */
  extraOptions?: readonly string[];
  binding?: FuseBinding;
  /** Called when the mount disappeared without us (the process should stop). */
  onLost?: () => void;
}

export function splitOptions(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export class FuseService {
  readonly mountPath: string;
  readonly #client: StrataClient;
  readonly #fs: StrataFs;
  readonly #http: OpsHttpServer;
  readonly #mount: MountedFs;
  readonly #metrics: FuseMetrics;
  readonly #log: Logger;
  readonly #watch: NodeJS.Timeout;
  #stopping: Promise<void> | undefined;
  readonly #onLost: (() => void) | undefined;
  #lost = false;

  private constructor(
    mountPath: string,
    client: StrataClient,
    fs: StrataFs,
    http: OpsHttpServer,
    mount: MountedFs,
    metrics: FuseMetrics,
    log: Logger,
    onLost: (() => void) | undefined,
  ) {
    this.mountPath = mountPath;
    this.#client = client;
    this.#fs = fs;
    this.#http = http;
    this.#mount = mount;
    this.#metrics = metrics;
    this.#log = log;
    this.#onLost = onLost;
    this.#watch = setInterval(() => {
      void mountAt(mountPath).then((m) => {
        if (m === undefined) this.lost('unmounted by someone else');
      });
    }, MOUNT_WATCH_INTERVAL_MS);
    this.#watch.unref();
  }

  /** The mount went away without `stop` (told once): the process should stop. */
  lost(reason: string): void {
    if (this.#stopping !== undefined || this.#lost) return;
    this.#lost = true;
    this.#log.error({ mountPath: this.mountPath, reason }, 'the mount disappeared: stopping');
    this.#onLost?.();
  }

  get webPort(): number {
    return this.#http.address().port;
  }

  static async start(opts: FuseServiceOptions): Promise<FuseService> {
    const { config, log, registry } = opts;
    const f = config.fuse;
    if (f.mnt_number > 1) {
      log.warn({ mnt_number: f.mnt_number }, 'fuse.mnt_number > 1 is not supported: mounting one session');
    }
    const options = [...DEFAULT_MOUNT_OPTIONS, ...splitOptions(f.options), ...(opts.extraOptions ?? [])];
    const client = FileSystem.create({
      config,
      settings: { syncLocalReadMaxBytes: FUSE_SYNC_LOCAL_READ_MAX_BYTES },
      caller: null,
      registry,
      log: log.child({ component: 'fuse.client' }),
    });
    const cleanup: (() => Promise<void>)[] = [() => client.close()];
    const undo = async (): Promise<void> => {
      for (const c of cleanup.reverse()) await c().catch(() => undefined);
    };
    try {
      await ensureFsPath(client, f.fs_path, log);
      await prepareMountPoint(f.mnt_path, { allowNonEmpty: options.includes('nonempty'), log });
      const metrics = new FuseMetrics(registry);
      let mounted = false;
      const http = new OpsHttpServer({
        host: '0.0.0.0',
        port: f.web_port,
        registry,
        log: log.child({ component: 'fuse.http' }),
        healthAliases: ['/healthz'],
        live: () => (mounted ? { ok: true, mountPath: f.mnt_path } : { ok: false, reason: 'not mounted' }),
        ready: () => (mounted ? { ok: true } : { ok: false, reason: 'not mounted' }),
      });
      await http.listen().catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(`fuse.web_port ${f.web_port}: cannot listen (${err.code ?? err.message})`);
      });
      cleanup.push(() => http.close());
      const fs = new StrataFs({
        fs: client,
        fsPath: f.fs_path,
        ioSizeBytes: f.max_write,
        log,
        mountTag: mountTag(localHostId(), f.mnt_path),
      });
      // Files a crashed predecessor at this mount point kept open after unlinking them.
      const leftovers = await fs.cleanHidden();
      if (leftovers > 0) log.info({ files: leftovers }, 'removed files a previous mount kept after unlink');
      // The kernel engine knows at once when the kernel ends the session (unmounted from
      // outside); the 2 s mount watch covers fuse-native.
      const started: { service?: FuseService } = {};
      const binding =
        opts.binding ??
        (f.binding === 'kernel'
          ? new KernelFuseBinding({
              onInternalError: (err, opcode) =>
                log.warn({ err, opcode }, 'a malformed FUSE request was answered EINVAL'),
              onEnd: (reason) => started.service?.lost(reason),
            })
          : new NativeFuseBinding());
      const mount = await binding.mount(
        instrument(fs, metrics, log.child({ component: 'fuse.ops' }), f.debug),
        {
          mountPath: f.mnt_path,
          fsName: FUSE_FS_NAME,
          subtype: FUSE_FS_NAME,
          entryTimeoutMs: f.entry_timeout_ms,
          attrTimeoutMs: f.attr_timeout_ms,
          maxWriteBytes: f.max_write,
          extraOptions: options,
          debug: f.debug,
          requestTimeoutMs: FUSE_REQUEST_TIMEOUT_MS,
          directReads: fs,
        },
      );
      mounted = true;
      metrics.mounted.set(1);
      metrics.openHandlesSource = () => fs.openHandles;
      const directReads = mount.directReads;
      if (directReads !== undefined) metrics.directReadsSource = directReads;
      log.info(
        {
          mountPath: f.mnt_path,
          fsPath: f.fs_path,
          webPort: http.address().port,
          binding: binding.name,
          options,
        },
        'strata fuse mounted',
      );
      started.service = new FuseService(f.mnt_path, client, fs, http, mount, metrics, log, opts.onLost);
      return started.service;
    } catch (err) {
      await undo();
      throw err;
    }
  }

  /** Unmounts (lazily), commits files still open for writing, closes the client. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#watch);
      await this.#mount.unmount().catch((err: unknown) => this.#log.error({ err }, 'unmount failed'));
      this.#metrics.mounted.set(0);
      await this.#fs.commitAll();
      await this.#http.close();
      await this.#client.close();
      this.#log.info({ mountPath: this.mountPath }, 'strata fuse unmounted');
    })();
    return this.#stopping;
  }
}

/**
 * Names this mount's hidden files and their registry: one per machine and mount point, so the
 * next mount at the same place (the only one that can succeed a crashed one) cleans up after it
 * while mounts elsewhere keep theirs.
 */
export function mountTag(hostId: string, mntPath: string): string {
  return createHash('sha256').update(`${hostId}\0${mntPath}`).digest('hex').slice(0, MOUNT_TAG_CHARS);
}

/** fs_path must be a directory; it is created when missing (Fluid points mounts at new paths). */
async function ensureFsPath(client: StrataClient, fsPath: string, log: Logger): Promise<void> {
  try {
    const st = await client.stat(fsPath);
    if (st.type !== 'dir') throw new UsageError(`fuse.fs_path ${fsPath} is a ${st.type}, not a directory`);
  } catch (err) {
    if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
    log.info({ fsPath }, 'fuse.fs_path does not exist: creating it');
    await client.mkdir(fsPath, { parents: true });
  }
}
