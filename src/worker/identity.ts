/**
 * Who this worker is and which cluster its data directories belong to.
 *
 * Each data directory holds a marker `.strata-worker.json` naming the cluster and the worker id
 * (a UUID generated once). A restarted worker reads its id back, so the master recognises it; a
 * directory marked for another cluster is refused (unless `format_worker` wipes it); directories
 * that disagree on the worker id (mixed up between machines) are refused too.
 *
 * The host id identifies the machine, not its name: a client whose host id matches may use the
 * block files directly (short-circuit).
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../common/logging.js';
import { DataDirError } from './errors.js';
import { writeFileAtomic } from './fs-util.js';

export const MARKER_FILE = '.strata-worker.json';
const MARKER_FORMAT = 1;

const markerSchema = z.object({
  format: z.number().int(),
  clusterId: z.string().min(1),
  workerId: z.string().uuid(),
  createdAtMs: z.number(),
});
type Marker = z.infer<typeof markerSchema>;

/**
 * A stable id of this machine: a hash of /etc/machine-id and the kernel boot id (so containers
 * sharing a kernel and a machine id agree, and a re-imaged machine does not collide).
 */
export function machineHostId(): string {
  const read = (paths: string[]): string => {
    for (const p of paths) {
      try {
        const v = readFileSync(p, 'utf8').trim();
        if (v !== '') return v;
      } catch {
        // try the next one
      }
    }
    return '';
  };
  const machineId = read(['/etc/machine-id', '/var/lib/dbus/machine-id']);
  const bootId = read(['/proc/sys/kernel/random/boot_id']);
  return createHash('sha256').update(`${machineId}\n${bootId}`).digest('hex').slice(0, 32);
}

export interface PrepareOptions {
  clusterId: string;
  /** `format_worker`: wipe this cluster's (or another cluster's) block data first. */
  format: boolean;
  log: Logger;
}

/**
 * Creates missing directories, checks every marker, applies `format_worker`, and returns the
 * worker id (reused from the markers, or new). Writes the marker into every directory.
 */
export async function prepareDataDirs(paths: readonly string[], opts: PrepareOptions): Promise<string> {
  const markers = new Map<string, Marker | undefined>();
  for (const p of paths) {
    await ensureDir(p);
    markers.set(p, await readMarker(p));
  }
  if (opts.format) {
    for (const p of paths) {
      const m = markers.get(p);
      // Only what Strata owns is removed: the marked cluster's subtree and our own cluster's.
      const owned = new Set([opts.clusterId, ...(m === undefined ? [] : [m.clusterId])]);
      for (const cid of owned) await rm(join(p, cid), { recursive: true, force: true });
      await rm(join(p, MARKER_FILE), { force: true });
      opts.log.warn({ dir: p }, 'format_worker = true: block data wiped');
      if (m !== undefined && m.clusterId !== opts.clusterId) markers.set(p, undefined);
    }
  }
  for (const [p, m] of markers) {
    if (m !== undefined && m.clusterId !== opts.clusterId) {
      throw new DataDirError(
        p,
        `belongs to cluster "${m.clusterId}" but this worker is in cluster "${opts.clusterId}" ` +
          '(use another directory, or set format_worker = true to wipe it)',
      );
    }
  }
  const ids = new Set([...markers.values()].filter((m) => m !== undefined).map((m) => m.workerId));
  if (ids.size > 1) {
    const listing = [...markers].map(([p, m]) => `${p}=${m?.workerId ?? '(none)'}`).join(', ');
    throw new DataDirError(
      paths.join(','),
      `directories belong to different workers (${listing}); give each worker its own directories`,
    );
  }
  const workerId = ids.values().next().value ?? randomUUID();
  for (const [p, m] of markers) {
    if (m === undefined) {
      const marker: Marker = {
        format: MARKER_FORMAT,
        clusterId: opts.clusterId,
        workerId,
        createdAtMs: Date.now(),
      };
      await writeFileAtomic(join(p, MARKER_FILE), `${JSON.stringify(marker)}\n`);
    }
  }
  return workerId;
}

async function ensureDir(p: string): Promise<void> {
  try {
    const s = await stat(p);
    if (!s.isDirectory()) throw new DataDirError(p, 'exists and is not a directory');
    return;
  } catch (err) {
    if (err instanceof DataDirError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new DataDirError(p, `cannot be used: ${(err as Error).message}`);
  }
  try {
    await mkdir(p, { recursive: true });
  } catch (err) {
    throw new DataDirError(p, `cannot be created: ${(err as Error).message}`);
  }
}

async function readMarker(p: string): Promise<Marker | undefined> {
  let text: string;
  try {
    text = await readFile(join(p, MARKER_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DataDirError(p, `cannot read ${MARKER_FILE}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new DataDirError(p, `${MARKER_FILE} is not valid JSON (remove it or set format_worker = true)`);
  }
  const r = markerSchema.safeParse(parsed);
  if (!r.success) {
    throw new DataDirError(p, `${MARKER_FILE} is malformed (remove it or set format_worker = true)`);
  }
  return r.data;
}
