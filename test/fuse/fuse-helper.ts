/**
 * Mounting for tests: a MiniCluster, `strata fuse` as a child process with its own config, a
 * wait until the kernel shows the mount, and an unmount in `t.after` whatever happened (a failed
 * test never leaves a mount behind). Shell commands run against the mount with a deadline.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { mountAt } from '../../src/fuse/mount-point.js';
import type { MiniCluster, MiniClusterOptions } from '../helpers/mini-cluster.js';
import { freePort } from '../helpers/ports.js';
import { run, startStrata } from '../helpers/process.js';
import type { Proc, RunResult } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

type Ctx = Pick<TestContext, 'after'>;

/**
 * The engine the suites mount with: `[fuse] binding`'s default, or STRATA_FUSE_BINDING
 * (kernel | fuse-native) to run every suite against the other one.
 */
export const FUSE_BINDING_UNDER_TEST = process.env.STRATA_FUSE_BINDING;

/** A skip reason when the binding under test is not our kernel engine (for its own features), else false. */
export function kernelEngineOnly(feature: string): string | false {
  return FUSE_BINDING_UNDER_TEST !== undefined && FUSE_BINDING_UNDER_TEST !== 'kernel'
    ? `${feature}: kernel engine features (STRATA_FUSE_BINDING=${FUSE_BINDING_UNDER_TEST} selects another engine)`
    : false;
}

/** Tools every FUSE suite needs. */
export const FUSE_TOOLS = ['fusermount', 'mountpoint', 'umount'];

/** Small blocks so block boundaries, background uploads and ENOSPC show up with little data. */
export const TEST_CLUSTER: MiniClusterOptions = { clientToml: 'block_size = "4MB"\n' };

export interface FuseMount {
  mnt: string;
  confPath: string;
  webPort: number;
  proc: Proc;
  /** Starts `strata fuse` again on the same config (after a crash). */
  restart(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Lazily detaches whatever is mounted at `mnt` (ignores "not mounted"). */
export function forceUnmount(mnt: string): void {
  for (const [cmd, args] of [
    ['fusermount', ['-uz', mnt]],
    ['umount', ['-l', mnt]],
  ] as const) {
    try {
      execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
      return;
    } catch {
      // not mounted, or the other tool is needed
    }
  }
}

export async function waitMounted(mnt: string, proc: Proc): Promise<void> {
  // The log line first: a stale mount left by a killed predecessor also shows as fuse.strata.
  await proc.waitForOutput('strata fuse mounted', 20_000);
  await waitFor(
    `fuse.strata mounted at ${mnt}`,
    async () => {
      if (proc.child.exitCode !== null) {
        throw new Error(`strata fuse exited with ${proc.child.exitCode}\n${proc.stderr.slice(-4000)}`);
      }
      return (await mountAt(mnt))?.fsType === 'fuse.strata';
    },
    20_000,
    50,
  );
}

export async function mountFuse(
  t: Ctx,
  cluster: MiniCluster,
  opts: { fsPath?: string; options?: string; fuseToml?: string; binding?: string } = {},
): Promise<FuseMount> {
  // Not under the cluster's temp dir: that is removed by an earlier `after` hook than ours, and
  // must never be walked while the mount is still there.
  const mnt = mkdtempSync(join(tmpdir(), 'strata-mnt-'));
  const webPort = await freePort();
  const confPath = join(cluster.dir, 'fuse.toml');
  const base = readFileSync(cluster.clientConfPath, 'utf8');
  writeFileSync(
    confPath,
    `${base}\n[fuse]\nmnt_path = "${mnt}"\nfs_path = "${opts.fsPath ?? '/'}"\nweb_port = ${webPort}\n` +
      `options = "${opts.options ?? ''}"\n` +
      ((opts.binding ?? FUSE_BINDING_UNDER_TEST) === undefined
        ? ''
        : `binding = "${opts.binding ?? FUSE_BINDING_UNDER_TEST}"\n`) +
      `${opts.fuseToml ?? ''}\n`,
  );
  const env = { ...process.env };
  delete env.STRATA_CONF_FILE;
  const m: FuseMount = {
    mnt,
    confPath,
    webPort,
    proc: startStrata(['fuse', '--conf', confPath], { env }),
    async restart() {
      m.proc = startStrata(['fuse', '--conf', confPath], { env });
      await waitMounted(mnt, m.proc);
    },
    async stop(signal = 'SIGTERM') {
      await m.proc.stop(signal, 15_000);
    },
  };
  t.after(async () => {
    await m.proc.stop('SIGTERM', 15_000).catch(() => undefined);
    if ((await mountAt(mnt)) !== undefined) forceUnmount(mnt);
    if ((await mountAt(mnt)) === undefined) rmSync(mnt, { recursive: true, force: true });
  });
  await waitMounted(mnt, m.proc);
  return m;
}

/** Runs a shell command (in `cwd`) with a deadline. */
export function sh(script: string, cwd: string, timeoutMs = 60_000): Promise<RunResult> {
  return run('bash', ['-c', script], { cwd, timeoutMs });
}

/** Like `sh`, failing with the command's output unless it exits 0. */
export async function shOk(script: string, cwd: string, timeoutMs = 60_000): Promise<string> {
  const r = await sh(script, cwd, timeoutMs);
  if (r.code !== 0)
    throw new Error(`"${script}" exited with ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return r.stdout;
}
