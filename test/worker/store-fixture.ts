/**
 * An in-process block store over small tiers in a temp dir, for fast tests of tiers, the store
 * and eviction without any network.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import type { ClusterConfig } from '../../src/common/config/index.js';
import { silentLogger } from '../../src/common/logging.js';
import { BlockStore } from '../../src/worker/block-store.js';
import type { BlockInfo } from '../../src/worker/block-store.js';
import { Evictor } from '../../src/worker/eviction.js';
import { prepareDataDirs } from '../../src/worker/identity.js';
import { buildTiers } from '../../src/worker/tiers.js';
import type { TierSet } from '../../src/worker/tiers.js';
import type { StorageType } from '../../src/common/config/index.js';
import { tempDir } from '../helpers/tmp.js';

export interface Fixture {
  dir: string;
  config: ClusterConfig;
  tiers: TierSet;
  store: BlockStore;
  evictor: Evictor;
  workerId: string;
  /** Blocks the fake master has been asked to drop. */
  dropRequests: number[][];
}

export interface FixtureOptions {
  /** data_dir entries; `{dir}` expands to the temp dir. */
  dataDirs: string[];
  extraToml?: string;
  spaceWaitMs?: number;
  promoteAfterReads?: number;
  /** The fake master's answer: which requested blocks may go (default none). */
  grantDrop?: (blockId: number) => boolean;
  dir?: string;
  clusterId?: string;
  /** format_worker */
  format?: boolean;
}

export function makeConfig(dir: string, o: FixtureOptions): ClusterConfig {
  const dataDirs = o.dataDirs.map((d) => d.replaceAll('{dir}', dir));
  return parseConfigText(
    `cluster_id = "${o.clusterId ?? 'test'}"\nformat_worker = ${o.format ?? false}\n[worker]\ndata_dir = ${JSON.stringify(dataDirs)}\npromote_after_reads = ${o.promoteAfterReads ?? 3}\n${o.extraToml ?? ''}\n`,
    'fixture',
    { env: {} },
  ).config;
}

export async function openFixture(t: Pick<TestContext, 'after'>, o: FixtureOptions): Promise<Fixture> {
  const dir = o.dir ?? tempDir(t, 'strata-worker-');
  const config = makeConfig(dir, o);
  const log = silentLogger();
  const workerId = await prepareDataDirs(
    config.worker.data_dir.map((d) => d.path),
    { clusterId: config.cluster_id, format: config.format_worker, log },
  );
  const tiers = buildTiers(config, { log });
  const dropRequests: number[][] = [];
  const late: { evictor?: Evictor } = {};
  const store = await BlockStore.open({
    tiers,
    log,
    spaceWaitMs: o.spaceWaitMs ?? 300,
    onSpaceNeeded: (tier, bytes) => late.evictor?.needSpace(tier, bytes),
  });
  const evictor = new Evictor({
    store,
    tiers,
    intervalMs: 50,
    promoteAfterReads: config.worker.promote_after_reads,
    log,
    requestDrop: (ids) => {
      dropRequests.push(ids);
      const grant = o.grantDrop;
      if (grant === undefined) return;
      setImmediate(() => {
        for (const id of ids) if (grant(id)) void store.delete(id, 'evicted');
      });
    },
  });
  late.evictor = evictor;
  t.after(async () => {
    await evictor.stop();
    await store.close();
  });
  return { dir, config, tiers, store, evictor, workerId, dropRequests };
}

export function randomData(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Writes a whole block through a writer in `chunkBytes` pieces. */
export async function writeBlock(
  store: BlockStore,
  blockId: number,
  data: Buffer,
  type: StorageType = 'MEM',
  chunkBytes = 100_000,
  hint = true,
): Promise<BlockInfo> {
  const w = await store.createWriter(blockId, type, hint ? data.length : 0);
  try {
    for (let off = 0; off < data.length; off += chunkBytes)
      await w.write(data.subarray(off, off + chunkBytes));
  } catch (err) {
    await store.abortWriter(w);
    throw err;
  }
  return store.commitWriter(w, data.length);
}

/** Reads a whole block through a verified reader. */
export async function readBlock(
  store: BlockStore,
  blockId: number,
  offset = 0,
  length?: number,
): Promise<Buffer> {
  const r = await store.openReader(blockId);
  try {
    const parts: Buffer[] = [];
    await r.read(offset, length ?? r.lengthBytes - offset, (s) => {
      parts.push(Buffer.from(s));
    });
    return Buffer.concat(parts);
  } finally {
    await r.close();
  }
}

export function path(...p: string[]): string {
  return join(...p);
}
