// Proves the ThinRuntime ConfigMap watch without FUSE: a rewrite that derives the same configuration
// or does not parse changes nothing (the latter is reported), a changed one calls onChange once.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { watchFluidConfig, writeFileAtomic } from '../../src/fluid/index.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';

test('watchFluidConfig: same or invalid content is ignored, a change fires once', async (t) => {
  const dir = tempDir(t, 'strata-fluid-watch-');
  const source = join(dir, 'config.json');
  writeFileAtomic(source, '{"v":1}');
  const derive = (): string => JSON.stringify((JSON.parse(readFileSync(source, 'utf8')) as { v: unknown }).v);
  let changes = 0;
  const invalid: string[] = [];
  const watcher = watchFluidConfig({
    source,
    current: derive(),
    derive,
    onChange: () => changes++,
    onInvalid: (err) => invalid.push(err instanceof Error ? err.message : String(err)),
  });
  t.after(() => watcher.close());

  writeFileAtomic(source, '{ "v": 1 }');
  writeFileAtomic(source, '{"v": ');
  await waitFor('the unusable file reported', () => invalid.length > 0, 10_000);
  assert.equal(changes, 0);
  writeFileAtomic(source, '{"v":2}');
  await waitFor('the change seen', () => changes > 0, 10_000);
  writeFileAtomic(source, '{"v":3}');
  // Absence can only be checked over a window: longer than the settle time, a second change is silent.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(changes, 1);
});
