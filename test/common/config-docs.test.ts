// Proves docs/configuration.md documents every key the schema accepts (so the reference cannot
// drift from the code): each section.key of the effective default configuration appears in it.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaultConfig } from '../../src/common/config/index.js';

test('every configuration key is documented', () => {
  const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const missing: string[] = [];
  for (const [section, value] of Object.entries(config)) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      assert.ok(doc.includes(`[${section}]`), `section [${section}] is documented`);
      for (const key of Object.keys(value))
        if (!doc.includes(`| \`${key}\` |`)) missing.push(`${section}.${key}`);
    } else if (!doc.includes(`| \`${section}\` |`)) {
      missing.push(section);
    }
  }
  assert.deepEqual(missing, [], `undocumented keys: ${missing.join(', ')}`);
});
