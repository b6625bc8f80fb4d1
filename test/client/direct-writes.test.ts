// Short-circuit writes with `client.direct_writes` (O_DIRECT staging files) and without, against a
// real cluster (MiniCluster): files of sizes around the 1 MiB slot and the block boundary read back
// byte for byte, through short-circuit and remote readers alike.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';

const MiB = 1024 * 1024;
const SIZES = [0, 1, 4095, MiB - 1, MiB, MiB + 1, 2 * MiB, 2 * MiB + 1, 5 * MiB + 4097];

test('short-circuit writes give the exact bytes with direct writes on and off', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1 });
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  assert.equal(config.client.direct_writes, false, 'off by default');
  const direct = FileSystem.create({ config, settings: { directWrites: true } });
  const buffered = FileSystem.create({ config });
  const remote = FileSystem.create({ config, settings: { shortCircuit: false } });
  t.after(async () => {
    await direct.close();
    await buffered.close();
    await remote.close();
  });
  for (const [name, fs] of [
    ['direct', direct],
    ['buffered', buffered],
  ] as const) {
    for (const size of SIZES) {
      const data = randomBytes(size);
      const path = `/${name}/f${size}`;
      const w = await fs.create(path, { blockSizeBytes: 2 * MiB, parents: true });
      // Uneven pieces, so slots fill across write calls.
      for (let at = 0; at < size; at += 300_001)
        await w.write(data.subarray(at, Math.min(size, at + 300_001)));
      const st = await w.close();
      assert.equal(st.size, size, `${path}: size`);
      assert.ok((await fs.readFile(path)).equals(data), `${path}: short-circuit read`);
      assert.ok((await remote.readFile(path)).equals(data), `${path}: remote read`);
    }
  }
});
