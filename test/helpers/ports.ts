import { createServer } from 'node:net';

/**
 * Ports handed to servers a test starts later are drawn from below Linux's ephemeral range
 * (32768–60999 by default). A port that the kernel picked for `listen(0)` and that we released
 * again may be taken by any outgoing connection's local port before the server binds it (seen
 * as EADDRINUSE under load); ports below the range are never used for outgoing connections, so
 * only another test's choice can collide, and a random pick checked by binding makes that rare.
 */
const FIRST_PORT = 20_000;
const LAST_PORT = 32_000;
const MAX_ATTEMPTS = 200;

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 at the time of the call, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const port = FIRST_PORT + Math.floor(Math.random() * (LAST_PORT - FIRST_PORT));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port in ${FIRST_PORT}-${LAST_PORT} after ${MAX_ATTEMPTS} attempts`);
}

export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
