// Proves crash safety with real processes: a writer process is SIGKILLed at random moments while
// it writes blocks and moves them between tiers; after each kill the store reopens with every
// acknowledged block intact (checksums verified), no partial block visible and staging cleaned.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { openFixture, readBlock } from './store-fixture.js';

const CHILD = fileURLToPath(new URL('./crash-child.js', import.meta.url));
const ROUNDS = 4;

test('SIGKILL during writes and moves loses no acknowledged block and leaves no partial one', async (t) => {
  const dir = tempDir(t, 'strata-crash-');
  const acknowledged = new Map<number, string>();
  const seed = Date.now();
  let next = 1;
  for (let round = 0; round < ROUNDS; round++) {
    const child = startProcess(process.execPath, [CHILD, dir, String(next)], { t });
    await child.waitForOutput('ready', 15_000);
    // Kill after a few commits plus a random delay, so the kill lands anywhere in a write or move.
    const target = 5 + ((seed + round * 13) % 20);
    await waitFor('commits', () => (child.stdout.match(/^committed /gm) ?? []).length >= target, 20_000, 5);
    await new Promise((r) => setTimeout(r, (seed + round * 7) % 37));
    child.child.kill('SIGKILL');
    await child.exited;
    for (const m of child.stdout.matchAll(/^committed (\d+) ([0-9a-f]{64})$/gm)) {
      acknowledged.set(Number(m[1]), m[2] as string);
    }
    next = Math.max(...acknowledged.keys()) + 10;
  }
  const f = await openFixture(t, {
    dir,
    clusterId: 'crash',
    dataDirs: ['[MEM:3MB]{dir}/mem', '[DISK:256MB]{dir}/disk'],
  });
  const stored = [...f.store.list()];
  assert.ok(acknowledged.size >= ROUNDS * 5, `seed ${seed}: ${acknowledged.size} blocks acknowledged`);
  for (const [id, sha] of acknowledged) {
    const data = await readBlock(f.store, id);
    assert.equal(createHash('sha256').update(data).digest('hex'), sha, `seed ${seed}: block ${id}`);
  }
  // Anything else found is a block whose publish completed just before the kill: whole and verified.
  for (const b of stored) {
    if (acknowledged.has(b.blockId)) continue;
    const data = await readBlock(f.store, b.blockId);
    assert.equal(data.length, b.lengthBytes);
  }
  assert.equal(f.store.recovery.corrupt.length, 0, `seed ${seed}`);
  for (const d of f.tiers.allDirs())
    assert.deepEqual(readdirSync(d.stagingDir), [], `seed ${seed}: ${d.stagingDir}`);
  assert.ok(
    stored.some((b) => b.storageType === 'DISK') && stored.some((b) => b.storageType === 'MEM'),
    'blocks were spread over both tiers',
  );
  const used = f.tiers.allDirs().reduce((s, d) => s + d.usedBytes, 0);
  assert.equal(
    used,
    stored.reduce((s, b) => s + b.fileBytes, 0),
    'usage is exactly the blocks found',
  );
});
