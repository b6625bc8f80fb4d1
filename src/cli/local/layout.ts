/**
 * The shape of a `strata local` cluster: where each role keeps its data under the data
 * directory, which ports it listens on, which tiers each worker gets (a MEM tier on /dev/shm when
 * it is a tmpfs with room, a DISK tier under the data directory), and the configuration file each
 * child process is started with.
 *
 * Ports come from the effective configuration (so `--conf` or ./conf/strata-cluster.toml can move
 * them): master `master.rpc_port`/`master.web_port`, first worker `worker.rpc_port`/
 * `worker.web_port`, the second worker on the next free pair above.
 */
import { createHash } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { stringify } from 'smol-toml';
import type { ClusterConfig } from '../../common/config/index.js';
import { StrataError } from '../../common/errors.js';
import { formatBytes } from '../../common/units.js';

const MiB = 1024 * 1024;
/** statfs type of tmpfs: the only filesystem a MEM tier belongs on. */
const TMPFS_MAGIC = 0x01021994;
/** Default size of the first worker's MEM tier. */
export const DEFAULT_LOCAL_MEM_BYTES = 1024 * MiB;
/** A MEM tier smaller than this is not worth having (Docker's default 64 MiB /dev/shm, say). */
export const MIN_LOCAL_MEM_BYTES = 64 * MiB;
/** Share of /dev/shm's free space a MEM tier may take at most. */
const MEM_SHARE_OF_SHM = 0.25;
/** How far above the first worker's ports the second worker's pair is looked for. */
const PORT_SEARCH_SPAN = 100;
/** Every role of a local cluster listens on loopback only: nothing is exposed to the network. */
export const LOCAL_HOST = '127.0.0.1';

export interface RoleLayout {
  name: string;
  role: 'master' | 'worker';
  rpcPort: number;
  webPort: number;
  /** Keys that set the ports, for "port in use" messages. */
  portKeys: [string, string];
  confPath: string;
  logPath: string;
  /** Worker tiers as data_dir entries. */
  tiers: string[];
}

export interface LocalLayout {
  dataDir: string;
  roles: RoleLayout[];
  /** The MEM tier's directory (outside the data dir), if any. */
  memDir: string | undefined;
  memBytes: number;
  pidFile: string;
}

export interface LayoutOptions {
  dataDir: string;
  /** MEM tier size on the first worker; 0 disables it. */
  memBytes: number;
  shmDir?: string;
}

/** Where the MEM tier of a data dir's cluster lives: one per data dir, so two local clusters do not share it. */
export function localMemRoot(dataDir: string, shmDir = '/dev/shm'): string {
  const tag = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 10);
  return join(shmDir, `strata-local-${tag}`);
}

function memDirFor(dataDir: string, shmDir: string): string {
  return join(localMemRoot(dataDir, shmDir), 'worker-0');
}

/** Bytes a MEM tier can have on `shmDir` (0 when it is missing or not a tmpfs). */
export function memTierBytes(shmDir: string, wanted: number): number {
  if (wanted <= 0) return 0;
  try {
    const s = statfsSync(shmDir);
    if (s.type !== TMPFS_MAGIC) return 0;
    const free = s.bavail * s.bsize;
    const bytes = Math.min(wanted, Math.floor(free * MEM_SHARE_OF_SHM));
    const rounded = Math.floor(bytes / MiB) * MiB;
    return rounded >= MIN_LOCAL_MEM_BYTES ? rounded : 0;
  } catch {
    return 0;
  }
}

export async function planLayout(config: ClusterConfig, opts: LayoutOptions): Promise<LocalLayout> {
  const dataDir = resolve(opts.dataDir);
  const shm = opts.shmDir ?? '/dev/shm';
  const memBytes = memTierBytes(shm, opts.memBytes);
  const memDir = memBytes > 0 ? memDirFor(dataDir, shm) : undefined;
  const role = (
    name: string,
    kind: 'master' | 'worker',
    rpc: number,
    web: number,
    keys: [string, string],
    tiers: string[],
  ): RoleLayout => ({
    name,
    role: kind,
    rpcPort: rpc,
    webPort: web,
    portKeys: keys,
    confPath: join(dataDir, 'conf', `${name}.toml`),
    logPath: join(dataDir, 'logs', `${name}.log`),
    tiers,
  });
  const master = role(
    'master',
    'master',
    config.master.rpc_port,
    config.master.web_port,
    ['master.rpc_port', 'master.web_port'],
    [],
  );
  const w0Tiers = [
    ...(memDir === undefined ? [] : [`[MEM:${Math.round(memBytes / MiB)}MB]${memDir}`]),
    `[DISK]${join(dataDir, 'worker-0', 'disk')}`,
  ];
  const w0 = role(
    'worker-0',
    'worker',
    config.worker.rpc_port,
    config.worker.web_port,
    ['worker.rpc_port', 'worker.web_port'],
    w0Tiers,
  );
  const taken = new Set([master.rpcPort, master.webPort, w0.rpcPort, w0.webPort]);
  const second = await nextFreePair(w0.rpcPort, w0.webPort, taken);
  const w1 = role(
    'worker-1',
    'worker',
    second.rpc,
    second.web,
    ['worker.rpc_port', 'worker.web_port'],
    [`[DISK]${join(dataDir, 'worker-1', 'disk')}`],
  );
  return { dataDir, roles: [master, w0, w1], memDir, memBytes, pidFile: join(dataDir, 'local.pid') };
}

/** Whether a TCP port can be bound on `host` now. */
export function portFree(port: number, host = LOCAL_HOST): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once('error', () => resolvePort(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolvePort(true)));
  });
}

async function nextFreePair(
  rpc: number,
  web: number,
  taken: Set<number>,
): Promise<{ rpc: number; web: number }> {
  for (let d = 1; d <= PORT_SEARCH_SPAN; d++) {
    const r = rpc + d;
    const w = web + d;
    if (r > 65535 || w > 65535) break;
    if (taken.has(r) || taken.has(w) || r === w) continue;
    if ((await portFree(r)) && (await portFree(w))) return { rpc: r, web: w };
  }
  throw new StrataError(
    'STRATA_PORT_IN_USE',
    `no free port pair for the second worker within ${PORT_SEARCH_SPAN} above ${rpc}/${web} (change worker.rpc_port and worker.web_port)`,
  );
}

/** Fails with one clear line naming the first port of the cluster that is already taken. */
export async function checkPorts(layout: LocalLayout): Promise<void> {
  for (const r of layout.roles) {
    for (const [port, key] of [
      [r.rpcPort, r.portKeys[0]],
      [r.webPort, r.portKeys[1]],
    ] as const) {
      if (!(await portFree(port))) {
        const change =
          r.name === 'worker-1' ? `${key} (the second worker takes the next free pair above it)` : key;
        throw new StrataError(
          'STRATA_PORT_IN_USE',
          `port ${port} (${r.name}, ${key}) is already in use on ${LOCAL_HOST}: stop what listens there (is another strata local running?) or change ${change} in a config file passed with --conf`,
          { details: { port, key } },
        );
      }
    }
  }
}

/** The configuration file text of one role: the effective config with the local layout applied. */
export function roleConfigText(config: ClusterConfig, layout: LocalLayout, r: RoleLayout): string {
  const master = layout.roles[0] as RoleLayout;
  const raw = {
    cluster_id: config.cluster_id,
    format_master: false,
    format_worker: false,
    testing: config.testing,
    master: {
      ...config.master,
      hostname: LOCAL_HOST,
      bind_host: LOCAL_HOST,
      rpc_port: master.rpcPort,
      web_port: master.webPort,
      meta_dir: join(layout.dataDir, 'master', 'meta'),
      meta_store: 'lmdb',
    },
    client: {
      ...config.client,
      hostname: LOCAL_HOST,
      master_addrs: [{ hostname: LOCAL_HOST, port: master.rpcPort }],
    },
    worker: {
      ...config.worker,
      hostname: LOCAL_HOST,
      bind_host: LOCAL_HOST,
      rpc_port: r.role === 'worker' ? r.rpcPort : config.worker.rpc_port,
      web_port: r.role === 'worker' ? r.webPort : config.worker.web_port,
      data_dir: r.role === 'worker' ? r.tiers : [`[DISK]${join(layout.dataDir, 'worker-0', 'disk')}`],
      // A laptop's disk is shared with everything else: keep the reserve the config asks for, no more.
      dir_reserved: config.worker.dir_reserved,
    },
    log: { level: config.log.level, log_dir: 'stdout' },
  };
  return `# Generated by strata local for ${r.name}; edited copies are overwritten at the next start.\n${stringify(raw)}\n`;
}

export function describeTiers(layout: LocalLayout, r: RoleLayout): string {
  return r.tiers
    .map((t) => {
      const m = /^\[([A-Z]+)(?::[^\]]+)?\](.*)$/.exec(t);
      if (m === null) return t;
      return m[1] === 'MEM' ? `MEM ${formatBytes(layout.memBytes)} (${m[2]})` : `${m[1]} (${m[2]})`;
    })
    .join(', ');
}
