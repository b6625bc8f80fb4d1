/**
 * A process that writes blocks into a block store as fast as it can (with eviction moving them
 * between a tiny MEM tier and a DISK tier) and prints `committed <id> <sha256>` after each
 * publish, for crash-safety tests that SIGKILL it at a random moment. Not a test file itself.
 *
 * argv: <dataRoot> <firstBlockId>
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseConfigText } from '../../src/common/config/index.js';
import { silentLogger } from '../../src/common/logging.js';
import { BlockStore } from '../../src/worker/block-store.js';
import { Evictor } from '../../src/worker/eviction.js';
import { prepareDataDirs } from '../../src/worker/identity.js';
import { buildTiers } from '../../src/worker/tiers.js';

const [root, first] = process.argv.slice(2);
if (root === undefined || first === undefined)
  throw new Error('usage: crash-child <dataRoot> <firstBlockId>');

const CRASH_DATA_DIRS = (dir: string): string[] => [`[MEM:3MB]${dir}/mem`, `[DISK:256MB]${dir}/disk`];

const config = parseConfigText(
  `cluster_id = "crash"\n[worker]\ndata_dir = ${JSON.stringify(CRASH_DATA_DIRS(root))}\n` +
    '[worker.watermarks]\nMEM = { high = 0.5, low = 0.2 }\n',
  'crash-child',
  { env: {} },
).config;
const log = silentLogger();
await prepareDataDirs(
  config.worker.data_dir.map((d) => d.path),
  { clusterId: config.cluster_id, format: false, log },
);
const tiers = buildTiers(config, { log });
const store = await BlockStore.open({ tiers, log, spaceWaitMs: 1000 });
const evictor = new Evictor({
  store,
  tiers,
  intervalMs: 5,
  promoteAfterReads: 0,
  log,
  requestDrop: () => undefined,
});
evictor.start();
process.stdout.write('ready\n');
for (let id = Number(first); ; id++) {
  const data = randomBytes(64 * 1024 + ((id * 7919) % (600 * 1024)));
  const w = await store.createWriter(id, 'MEM', data.length);
  for (let off = 0; off < data.length; off += 32 * 1024) await w.write(data.subarray(off, off + 32 * 1024));
  await store.commitWriter(w);
  process.stdout.write(`committed ${id} ${createHash('sha256').update(data).digest('hex')}\n`);
}
