import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../src/common/runtime.js';

/**
 * Ports handed to servers a test starts later are drawn from below Linux's ephemeral range
 * (32768–60999 by default). A port that the kernel picked for `listen(0)` and that we released
 * again may be taken by any outgoing connection's local port before the server binds it (seen
 * as EADDRINUSE under load); ports below the range are never used for outgoing connections.
 *
 * Test files run in parallel processes, and a bind check alone cannot see a port that another
 * process picked a moment ago but whose server has not bound it yet (a node takes a second or
 * more to start on a loaded machine: seen as EADDRINUSE in CI). So every pick is also reserved
 * with an exclusive file in one shared directory, holding the picking process's pid, until that
 * process exits. A reservation whose process is gone is stale and taken over.
 */
const FIRST_PORT = 20_000;
const LAST_PORT = 32_000;
const MAX_ATTEMPTS = 400;
const RESERVATIONS_DIR = join(tmpdir(), 'strata-test-ports');

const reserved = new Set<number>();
let exitHookInstalled = false;

function releaseAll(): void {
  for (const port of reserved) rmSync(join(RESERVATIONS_DIR, String(port)), { force: true });
  reserved.clear();
}

/** Reserves `port` for this process; false when a live process holds it. */
function reserve(port: number): boolean {
  if (reserved.has(port)) return false;
  mkdirSync(RESERVATIONS_DIR, { recursive: true });
  const file = join(RESERVATIONS_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      reserved.add(port);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.once('exit', releaseAll);
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: number;
      try {
        owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
      } catch {
        // Removed this instant: treat as held.
        return false;
      }
      if (Number.isInteger(owner) && processAlive(owner)) return false;
      // Stale (its process died without cleaning up): remove it and try once more.
      rmSync(file, { force: true });
    }
  }
  return false;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port free on 127.0.0.1 at the time of the call, outside the ephemeral range, and
 * reserved against every other test process until this one exits.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const port = FIRST_PORT + Math.floor(Math.random() * (LAST_PORT - FIRST_PORT));
    if (!reserve(port)) continue;
    if (await bindable(port)) return port;
    // Someone outside the tests holds it: keep the reservation (it is useless to us anyway).
  }
  throw new Error(`no free port in ${FIRST_PORT}-${LAST_PORT} after ${MAX_ATTEMPTS} attempts`);
}

export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) ports.push(await freePort());
  return ports;
}
