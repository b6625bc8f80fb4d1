/**
 * The miss-TTFB floor: the smallest Node.js HTTP proxy with strata's HTTP stack and none of its
 * cache. `node dist/bench/proxy/floor.js <originPort>` serves every request from the origin
 * through an undici keep-alive pool configured as `Upstream` is, writes the client's response
 * head from undici's headers callback (as strata's miss path does) and pipes the body. No
 * lookup, no coalescing, no policy, no cache writer. Measured beside strata in the same run, it
 * splits a miss's extra time into the cost of any Node.js hop (floor minus origin) and the cost
 * of strata's own code (strata minus floor). Prints `listening <port>` when ready.
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const originPort = Number(process.argv[2]);
if (!Number.isInteger(originPort) || originPort <= 0) {
  process.stderr.write('usage: floor.js <origin port>\n');
  process.exit(2);
}

/** Request headers that are not forwarded (hop-by-hop, and Host: undici sets the origin's). */
const DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host']);

const pool = new Pool(`http://127.0.0.1:${originPort}`, {
  connections: 256,
  keepAliveTimeout: 4_000,
  keepAliveMaxTimeout: 60_000,
  pipelining: 1,
});

function forwarded(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !DROPPED.has(k)) out[k] = v;
  return out;
}

const server = createServer({ noDelay: true }, (req, res) => {
  pool.request(
    { method: req.method ?? 'GET', path: req.url ?? '/', headers: forwarded(req.headers), idempotent: false },
    (err, up) => {
      if (err !== null) {
        res.writeHead(502).end();
        return;
      }
      const headers: [string, string][] = [];
      for (const [k, v] of Object.entries(up.headers)) {
        if (v === undefined || k === 'connection' || k === 'keep-alive' || k === 'transfer-encoding')
          continue;
        for (const one of Array.isArray(v) ? v : [v]) headers.push([k, one]);
      }
      res.writeHead(up.statusCode, headers.flat());
      res.flushHeaders();
      up.body.on('error', () => res.destroy());
      res.on('close', () => up.body.destroy());
      up.body.pipe(res);
    },
  );
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => {
  void pool.destroy();
  process.exit(0);
});
