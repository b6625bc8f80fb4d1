// Runs the http-tests/cache-tests suite (npm http-cache-tests, ~350 tests) through a real
// `strata proxy` process in front of the suite's own origin, and fails on any required failure
// that is not on the ignore list (harness.ts, one reason per entry); the budget is 10 at most.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { IGNORED_REQUIRED, formatSummary, runSuite, startOrigin, startProxy } from './conformance/harness.js';
import { tempDir } from '../helpers/tmp.js';

/** The brief's bar: published required failures run from 10 (Caddy) to 37 (Fastly). */
const MAX_REQUIRED_FAILURES = 10;

test(
  'http-cache-tests through strata proxy: no unexplained required failure',
  { timeout: 240_000 },
  async (t) => {
    const dir = tempDir(t, 'strata-cache-tests-');
    const origin = await startOrigin();
    t.after(() => {
      origin.server.closeAllConnections();
      origin.server.close();
    });
    const proxy = await startProxy(dir, origin.port);
    t.after(() => proxy.stop());
    const summary = await runSuite(`http://127.0.0.1:${proxy.port}`);
    for (const line of formatSummary(summary).split('\n')) t.diagnostic(line);
    assert.ok(summary.total > 300, `the suite ran (${summary.total} tests)`);
    assert.deepEqual(
      summary.requiredFailures.map((f) => `${f.id}: ${f.message}`),
      [],
      'required failures outside the ignore list',
    );
    const allRequired = summary.requiredFailures.length + summary.ignoredFailures.length;
    assert.ok(
      allRequired <= MAX_REQUIRED_FAILURES,
      `${allRequired} required failures (budget ${MAX_REQUIRED_FAILURES})`,
    );
    for (const id of Object.keys(IGNORED_REQUIRED))
      assert.ok(summary.verdicts[id] !== undefined, `ignore-list entry ${id} names a test that exists`);
    // The proxy must have answered every test: setup failures mean PUT or headers did not pass.
    assert.ok(summary.setupFailures.length <= 8, `setup failures: ${JSON.stringify(summary.setupFailures)}`);
  },
);
