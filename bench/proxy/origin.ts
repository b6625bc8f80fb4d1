/**
 * The benchmark origin, run as its own process so it never competes with the measuring process:
 * `/obj/<bytes>[?anything]` answers that many bytes (cacheable, ETag, Content-Length) generated
 * from one repeated buffer, so a 1 GiB body costs the origin no memory; `/__count?path=P` says
 * how many requests P (with its query) received. Prints `listening <port>` when ready.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const BLOCK = Buffer.alloc(1024 * 1024);
for (let i = 0; i < BLOCK.length; i++) BLOCK[i] = (i * 31 + (i >> 10)) & 0xff;

const counts = new Map<string, number>();
/** Responses still being sent: the bench waits for 0 between phases. */
let active = 0;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/__active') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(String(active));
    return;
  }
  if (url.startsWith('/__count?')) {
    const path = new URL(url, 'http://x').searchParams.get('path') ?? '';
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(String(counts.get(path) ?? 0));
    return;
  }
  counts.set(url, (counts.get(url) ?? 0) + 1);
  const m = /^\/obj\/(\d+)/.exec(url);
  if (m === null) {
    res.writeHead(404);
    res.end();
    return;
  }
  const size = Number(m[1]);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': size,
    'cache-control': 'public, max-age=3600',
    etag: `"obj-${size}"`,
    'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT',
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let sent = 0;
  active++;
  res.once('close', () => active--);
  const pump = (): void => {
    while (sent < size) {
      const n = Math.min(BLOCK.length, size - sent);
      sent += n;
      const ok = res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n));
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
