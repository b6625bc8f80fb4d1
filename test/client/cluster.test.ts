// The SDK against a real cluster (MiniCluster: master and workers as child processes): byte-exact
// round trips around block boundaries (1 MiB blocks and the default), short-circuit and remote;
// the random-write handle against a local file; concurrent writers and readers.
import { createHash, randomBytes } from 'node:crypto';
import { open as openLocal } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FileSystem } from '../../src/client/index.js';
import type { ClientSettings } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { Registry } from '../../src/common/metrics.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const BS = MiB;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function client(
  t: { after: (fn: () => Promise<void>) => void },
  cluster: MiniCluster,
  settings: Partial<ClientSettings> = {},
  registry?: Registry,
): FileSystem {
  const config = loadConfig({ path: cluster.clientConfPath, env: {} }).config;
  const fs = FileSystem.create({ config, settings, ...(registry === undefined ? {} : { registry }) });
  t.after(() => fs.close());
  return fs;
}

/** Streams `size` deterministic bytes into a file and returns their sha256. */
async function writeBig(
  fs: FileSystem,
  path: string,
  size: number,
  opts: { blockSizeBytes?: number } = {},
): Promise<string> {
  const h = createHash('sha256');
  const piece = randomBytes(3 * MiB + 7);
  const w = await fs.create(path, { overwrite: true, parents: true, ...opts });
  for (let done = 0; done < size;) {
    const n = Math.min(piece.length, size - done);
    const part = piece.subarray(0, n);
    h.update(part);
    await w.write(part);
    done += n;
  }
  const st = await w.close();
  assert.equal(st.size, size);
  return h.digest('hex');
}

async function shaOfStream(fs: FileSystem, path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

test('round trips are byte-identical: 1 MiB blocks and the default, short-circuit and remote', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 2 });
  const registry = new Registry();
  const local = client(t, cluster, { blockSizeBytes: BS }, registry);
  const remote = client(t, cluster, { blockSizeBytes: BS, shortCircuit: false });
  for (const [name, fs] of [
    ['short-circuit', local],
    ['remote', remote],
  ] as const) {
    for (const size of [0, 1, BS - 1, BS, BS + 1]) {
      const data = randomBytes(size);
      await fs.writeFile(`/${name}/${size}`, data, { parents: true });
      assert.equal(sha(await fs.readFile(`/${name}/${size}`)), sha(data), `${name} ${size}`);
      assert.equal(await shaOfStream(fs, `/${name}/${size}`), sha(data), `${name} stream ${size}`);
      const { blocks } = await fs.blockLocations(`/${name}/${size}`);
      assert.equal(blocks.length, Math.ceil(size / BS), `${name}: blocks of ${size}`);
    }
  }
  // 300 MiB: 300 blocks of 1 MiB, and 3 blocks of the default size (128 MiB).
  const big = await writeBig(local, '/big/small-blocks', 300 * MiB);
  assert.equal(await shaOfStream(remote, '/big/small-blocks'), big, 'written short-circuit, read remote');
  const big2 = await writeBig(remote, '/big/default-blocks', 300 * MiB, { blockSizeBytes: 128 * MiB });
  assert.equal(await shaOfStream(local, '/big/default-blocks'), big2, 'written remote, read short-circuit');
  assert.equal((await local.blockLocations('/big/default-blocks')).blocks.length, 3);
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'strata_client_read_bytes_total');
  const localBytes = (m?.values ?? [])
    .filter((v) => v.labels.path === 'local')
    .reduce((a, v) => a + v.value, 0);
  assert.ok(localBytes >= 300 * MiB, `short-circuit reads happened (${localBytes} bytes)`);
});

test('random-write handle on a real cluster matches a local file', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 2 });
  const fs = client(t, cluster, { blockSizeBytes: BS });
  const dir = tempDir(t, 'strata-model-');
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 3 * BS }),
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant('write' as const),
            pos: fc.integer({ min: 0, max: 5 * BS }),
            len: fc.integer({ min: 1, max: BS + 1000 }),
          }),
          fc.record({ kind: fc.constant('truncate' as const), len: fc.integer({ min: 0, max: 6 * BS }) }),
        ),
        { minLength: 1, maxLength: 8 },
      ),
      async (initial, ops) => {
        run++;
        const path = `/model/${run}`;
        const start = randomBytes(initial);
        await fs.writeFile(path, start, { parents: true });
        const model = await openLocal(join(dir, String(run)), 'w+');
        try {
          await model.write(start, 0, start.length, 0);
          const h = await fs.openForWrite(path);
          for (const o of ops) {
            if (o.kind === 'write') {
              const buf = randomBytes(o.len);
              await h.pwrite(buf, o.pos);
              await model.write(buf, 0, buf.length, o.pos);
            } else {
              await h.truncate(o.len);
              await model.truncate(o.len);
            }
          }
          await h.close();
          const size = (await model.stat()).size;
          const want = Buffer.alloc(size);
          await model.read(want, 0, size, 0);
          assert.equal(sha(await fs.readFile(path)), sha(want), JSON.stringify(ops));
        } finally {
          await model.close();
        }
      },
    ),
    { numRuns: 12, seed: Number(process.env.STRATA_TEST_SEED ?? 7) },
  );
});

test('concurrent writers to different files and readers of one file', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 2 });
  const fs = client(t, cluster, { blockSizeBytes: BS });
  const files = Array.from({ length: 8 }, (_, i) => ({
    path: `/conc/w${i}`,
    data: randomBytes(3 * BS + i * 1000),
  }));
  await Promise.all(files.map((f) => fs.writeFile(f.path, f.data, { parents: true })));
  for (const f of files) assert.equal(sha(await fs.readFile(f.path)), sha(f.data));
  const shared = files[3];
  assert.ok(shared !== undefined);
  const other = client(t, cluster, { blockSizeBytes: BS, shortCircuit: false });
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      i % 2 === 0 ? shaOfStream(fs, shared.path) : shaOfStream(other, shared.path),
    ),
  );
  for (const r of results) assert.equal(r, sha(shared.data));
});

test('a slow writer keeps its lease: renewals outlast a short lease timeout', async (t) => {
  const cluster = await MiniCluster.start(t, { workers: 1, masterToml: 'file_lease_timeout = "2s"\n' });
  const fs = client(t, cluster, { blockSizeBytes: BS });
  const w = await fs.create('/slow', { parents: true });
  await w.write(Buffer.from('first '));
  // Idle for more than two lease timeouts: only renewals keep the lease.
  await new Promise((r) => setTimeout(r, 5000));
  await w.write(Buffer.from('second'));
  await w.close();
  assert.equal((await fs.readFile('/slow')).toString(), 'first second');
  const h = await fs.openForWrite('/slow');
  await new Promise((r) => setTimeout(r, 5000));
  await h.pwrite(Buffer.from('FIRST'), 0);
  await h.close();
  assert.equal((await fs.readFile('/slow')).toString(), 'FIRST second');
});
