/**
 * A real HTTP origin on 127.0.0.1 for UFS tests: serves a directory with HEAD, single-range GETs,
 * strong ETags, Last-Modified and If-Match, logs every request (to count upstream fetches), and can
 * misbehave on cue: ignore Range, refuse HEAD, demand a header, or cut the connection mid-body.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface OriginRequest {
  method: string;
  path: string;
  range: string | undefined;
}

export interface OriginBehaviour {
  /** Answer 200 with the whole body whatever the Range header says. */
  ignoreRange?: boolean;
  /** Answer 405 to HEAD. */
  noHead?: boolean;
  /** Demand `authorization: <value>`; 401 otherwise. */
  requireAuthorization?: string;
  /** Destroy the socket after this many body bytes of a GET (an outage mid-read). */
  cutAfterBytes?: number;
  /** Wait this long before answering a GET (to let concurrent readers pile up). */
  delayMs?: number;
  /** Send GET bodies at about this rate (64 KiB at a time), for faults that must land mid-body. */
  bytesPerSecond?: number;
  /** Directory index pages: 'html' (default, like nginx's autoindex), 'json' (autoindex_format json), or 'none' (403). */
  index?: 'html' | 'json' | 'none';
}

export class HttpOrigin {
  readonly root: string;
  readonly requests: OriginRequest[] = [];
  behaviour: OriginBehaviour = {};
  readonly #server: Server;
  #port = 0;

  private constructor(root: string) {
    this.root = root;
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  }

  static async start(root: string): Promise<HttpOrigin> {
    const o = new HttpOrigin(root);
    await new Promise<void>((resolve) => o.#server.listen(0, '127.0.0.1', resolve));
    o.#port = (o.#server.address() as AddressInfo).port;
    return o;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** GET requests for one path (decoded), e.g. to assert a single upstream fetch. */
  gets(path: string): OriginRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && r.path === path);
  }

  static etagOf(size: number, mtimeMs: number): string {
    return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const range = req.headers.range;
    this.requests.push({ method: req.method ?? '', path, range });
    const b = this.behaviour;
    if (b.requireAuthorization !== undefined && req.headers.authorization !== b.requireAuthorization) {
      res.writeHead(401).end();
      return;
    }
    if (req.method === 'HEAD' && b.noHead === true) {
      res.writeHead(405).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path.split('/').includes('..')) {
      res.writeHead(400).end();
      return;
    }
    const file = join(this.root, path);
    const st = await stat(file).catch(() => undefined);
    if (st?.isDirectory() === true) {
      await this.#directory(url.pathname, file, req, res);
      return;
    }
    if (st === undefined || !st.isFile()) {
      res.writeHead(404).end();
      return;
    }
    const etag = HttpOrigin.etagOf(st.size, st.mtimeMs);
    const headers: Record<string, string> = {
      etag,
      'last-modified': new Date(st.mtimeMs).toUTCString(),
      'accept-ranges': 'bytes',
    };
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined && ifMatch !== '*' && !ifMatch.split(/\s*,\s*/).includes(etag)) {
      res.writeHead(412, headers).end();
      return;
    }
    let start = 0;
    let end = st.size - 1;
    let status = 200;
    if (range !== undefined && b.ignoreRange !== true && req.method === 'GET') {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (m === null) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` }).end();
        return;
      }
      start = Number(m[1]);
      end = m[2] === '' ? st.size - 1 : Math.min(Number(m[2]), st.size - 1);
      if (start >= st.size || end < start) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${st.size}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${st.size}`;
    }
    const length = Math.max(0, end - start + 1);
    headers['content-length'] = String(length);
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    if (b.delayMs !== undefined) await new Promise((r) => setTimeout(r, b.delayMs));
    res.writeHead(status, headers);
    if (length === 0) {
      res.end();
      return;
    }
    const body = createReadStream(file, { start, end, highWaterMark: 64 * 1024 });
    let sent = 0;
    const cut = b.cutAfterBytes;
    const rate = b.bytesPerSecond;
    const startedMs = performance.now();
    body.on('data', (data: string | Buffer) => {
      const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (rate !== undefined) {
        // Ahead of the rate: hold the stream until the time this chunk is due.
        const dueMs = ((sent + chunk.length) / rate) * 1000 - (performance.now() - startedMs);
        if (dueMs > 0) {
          body.pause();
          setTimeout(() => body.resume(), dueMs);
        }
      }
      if (cut !== undefined && sent + chunk.length >= cut) {
        res.write(chunk.subarray(0, Math.max(0, cut - sent)));
        body.destroy();
        // Let the partial bytes leave, then drop the connection as an outage would.
        setImmediate(() => res.socket?.destroy());
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.on('end', () => res.end());
    body.on('error', () => res.destroy());
  }

  /** As web servers do: `dir` redirects to `dir/`, which serves an index page (or 403). */
  async #directory(rawPath: string, dir: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!rawPath.endsWith('/')) {
      res.writeHead(301, { location: `${rawPath}/`, 'content-length': '0' }).end();
      return;
    }
    const index = this.behaviour.index ?? 'html';
    if (index === 'none') {
      res.writeHead(403, { 'content-length': '0' }).end();
      return;
    }
    const entries = await readdir(dir, { withFileTypes: true });
    let body: string;
    if (index === 'json') {
      const items = await Promise.all(
        entries.map(async (e) => {
          const st = await stat(join(dir, e.name));
          return e.isDirectory()
            ? { name: e.name, type: 'directory', mtime: st.mtime.toUTCString() }
            : { name: e.name, type: 'file', mtime: st.mtime.toUTCString(), size: st.size };
        }),
      );
      body = JSON.stringify(items);
    } else {
      // nginx's autoindex page, with an Apache-style sort link and a parent link to ignore.
      const esc = (v: string): string =>
        v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
      const links = entries.map((e) => {
        const href = encodeURIComponent(e.name) + (e.isDirectory() ? '/' : '');
        return `<a href="${esc(href)}">${esc(e.name)}${e.isDirectory() ? '/' : ''}</a>`;
      });
      body =
        `<html><head><title>Index of ${esc(rawPath)}</title></head><body><h1>Index of ${esc(rawPath)}</h1>` +
        `<a href="?C=N;O=D">Name</a><hr><pre><a href="../">../</a>\n${links.join('\n')}</pre><hr></body></html>`;
    }
    const type = index === 'json' ? 'application/json' : 'text/html';
    res.writeHead(200, { 'content-type': type });
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
