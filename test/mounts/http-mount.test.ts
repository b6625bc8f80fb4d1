// An http:// mount as users see it (SDK against a MiniCluster of processes, a loopback origin that
// serves index pages): `ls` shows the origin's directories, `load` of a directory caches every
// file below it; an origin without index pages still serves files by path and ls shows those.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileSystem } from '../../src/client/index.js';
import { loadConfig } from '../../src/common/config/index.js';
import { MiniCluster } from '../helpers/mini-cluster.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from '../ufs/http-origin.js';

const BACKGROUND_WAIT_MS = 60_000;
const MiB = 1024 * 1024;

test(
  'http:// mounts list through index pages and load whole directories',
  { timeout: 120_000 },
  async (t) => {
    const root = tempDir(t, 'strata-http-mount-');
    const files: Record<string, Buffer> = {
      'a.bin': randomBytes(MiB + 3),
      'sub/b.bin': randomBytes(2 * MiB),
      'sub/deep/c.txt': randomBytes(10),
    };
    for (const [name, data] of Object.entries(files)) {
      mkdirSync(join(root, 'site', name, '..'), { recursive: true });
      writeFileSync(join(root, 'site', name), data);
    }
    const origin = await HttpOrigin.start(root);
    t.after(() => origin.close());
    const cluster = await MiniCluster.start(t, { workers: 1, masterToml: 'heartbeat_interval = 100' });
    const fs = FileSystem.create({ config: loadConfig({ path: cluster.clientConfPath, env: {} }).config });
    t.after(() => fs.close());
    await fs.mount(`${origin.url}/site`, '/web', { options: {}, blockSize: MiB });

    const names = async (path: string): Promise<string[]> => {
      const out: string[] = [];
      for await (const e of fs.entries(path)) out.push(`${e.name}:${e.type}`);
      return out.sort();
    };
    assert.deepEqual(await names('/web'), ['a.bin:file', 'sub:dir']);
    assert.deepEqual(await names('/web/sub'), ['b.bin:file', 'deep:dir']);
    assert.equal((await fs.stat('/web/sub/b.bin')).size, files['sub/b.bin']?.length);

    const job = await fs.load('/web');
    let st = job;
    await waitFor(
      'load of /web finished',
      async () => {
        st = await fs.loadStatus(job.jobId);
        return st.state !== 'scanning' && st.state !== 'running';
      },
      BACKGROUND_WAIT_MS,
    );
    const total = Object.values(files).reduce((n, b) => n + b.length, 0);
    assert.equal(st.state, 'completed', JSON.stringify(st));
    assert.equal(st.totalFiles, 3);
    assert.equal(st.totalBytes, total);
    for (const [name, data] of Object.entries(files)) {
      await waitFor(
        `${name} cached`,
        async () => (await fs.stat(`/web/${name}`)).cachedBytes === data.length,
        BACKGROUND_WAIT_MS,
      );
      assert.ok((await fs.readFile(`/web/${name}`)).equals(data), name);
    }

    // No index pages: nothing to list, files by path still work and then show up.
    const plain = await HttpOrigin.start(root);
    t.after(() => plain.close());
    plain.behaviour = { index: 'none' };
    await fs.mount(`${plain.url}/site`, '/plain', { options: {}, blockSize: MiB });
    assert.deepEqual(await names('/plain'), []);
    assert.ok((await fs.readFile('/plain/a.bin')).equals(files['a.bin'] ?? Buffer.alloc(0)));
    assert.deepEqual(await names('/plain'), ['a.bin:file']);
  },
);
