/**
 * `node dist/test/proxy/conformance/main.js [--id TEST-ID] [--json]`: runs http-cache-tests
 * through a freshly started `strata proxy` and prints pass / required-failure counts. Exit 1
 * when a required test fails that is not on the ignore list.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSummary, runSuite, startOrigin, startProxy } from './harness.js';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const idAt = args.indexOf('--id');
  const only = idAt >= 0 ? args[idAt + 1] : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'strata-cache-tests-'));
  const origin = await startOrigin();
  const proxy = await startProxy(dir, origin.port);
  try {
    const summary = await runSuite(`http://127.0.0.1:${proxy.port}`, only);
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    else process.stdout.write(`${formatSummary(summary)}\n`);
    process.exitCode = summary.requiredFailures.length > 0 ? 1 : 0;
  } finally {
    await proxy.stop();
    origin.server.close();
    origin.server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
