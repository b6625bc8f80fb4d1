// Proves that a read-through survives the death of the worker filling the block: the reader, on
// the worker's machine (it follows the fill's staging file) or not (the worker streams to it),
// gets every byte of the file through another worker. A real cluster (master + 2 workers as processes) and a loopback HTTP origin
// that sends slowly enough for the kill to land mid-block.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { Registry } from '../../src/common/metrics.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { HttpOrigin } from '../ufs/http-origin.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

for (const shortCircuit of [true, false]) {
  test(
    `the worker filling a block killed mid-read: the read completes from another (${shortCircuit ? 'following the staging file' : 'streamed by the worker'})`,
    { timeout: 120_000 },
    async (t) => {
      const root = tempDir(t, 'strata-origin-');
      mkdirSync(join(root, 'site'), { recursive: true });
      const origin = await HttpOrigin.start(root);
      t.after(() => origin.close());
      const cluster = await MiniCluster.start(t, {
        workers: 2,
        masterToml: 'heartbeat_interval = 100\nworker_blacklist_interval = "1s"\nworker_lost_interval = "3s"',
      });
      const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
      const registry = new Registry();
      const fs = FileSystem.create({ config, settings: { blockSizeBytes: MiB, shortCircuit }, registry });
      t.after(() => fs.close());
      await fs.mount(origin.url + '/site', '/web', { options: {}, blockSize: MiB });
      const body = randomBytes(4 * MiB + 4321);
      writeFileSync(join(root, 'site', 'slow.bin'), body);
      await fs.stat('/web/slow.bin');
      origin.behaviour = { bytesPerSecond: 4 * MiB };

      const h = createHash('sha256');
      let got = 0;
      let killed = '';
      for await (const chunk of fs.createReadStream('/web/slow.bin', { readAheadBytes: 256 * 1024 })) {
        h.update(chunk as Buffer);
        got += (chunk as Buffer).length;
        if (killed === '' && got >= MiB + 256 * 1024) {
          // The worker filling the block being read (block 1).
          const { blocks } = await fs.blockLocations('/web/slow.bin');
          const filler = blocks[1]?.workers[0];
          assert.ok(filler !== undefined, 'block 1 has a worker');
          const node = cluster.workers.find((w) => w.rpcPort === filler.rpcPort);
          assert.ok(node !== undefined, `worker at port ${filler.rpcPort}`);
          killed = String(filler.rpcPort);
          await cluster.stopNode(node, 'SIGKILL');
        }
      }
      assert.notEqual(killed, '', 'a worker was killed mid-read');
      assert.equal(got, body.length);
      assert.equal(h.digest('hex'), sha(body));
      const failovers = (await registry.getMetricsAsJSON())
        .find((m) => m.name === 'strata_client_worker_failovers_total')
        ?.values.reduce((a, v) => a + v.value, 0);
      assert.ok((failovers ?? 0) >= 1, `the reader met the dead worker (failovers: ${String(failovers)})`);
    },
  );
}
