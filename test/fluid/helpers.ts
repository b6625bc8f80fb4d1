/** Shared by the Fluid tests: where the fixtures live, and how to read them. */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/common/errors.js';

/** The repository root (tests run from dist/test/fluid). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Fluid's sample inputs and CRDs, copied from the shared fixtures (see fixtures/README.md). */
export const FLUID_FIXTURES = join(REPO_ROOT, 'test', 'fluid', 'fixtures');

export function fixtureJson(name: string): unknown {
  return JSON.parse(readFileSync(join(FLUID_FIXTURES, name), 'utf8')) as unknown;
}

/** Asserts `fn` throws a ConfigError with a problem on `key` whose message matches `message`. */
export function assertProblem(fn: () => unknown, key: string, message: RegExp): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  const hit = caught.problems.find((p) => p.key === key);
  assert.ok(
    hit !== undefined,
    `expected a problem on ${key}; got ${caught.problems.map((p) => `${p.key}: ${p.message}`).join(' | ')}`,
  );
  assert.match(hit.message, message);
  assert.ok(!hit.message.includes('\n'), 'one line');
  return caught;
}
