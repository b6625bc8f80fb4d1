/**
 * Serves the console's page shell at `/` and its assets under `/console/`, with the page
 * hardening headers. Assets named with their content hash (`?v=` in the shell) are cached for
 * good; any other request for them revalidates by ETag.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../../common/logging.js';
import type { OpsHttpServer } from '../../common/ops-http.js';
import { sendJson } from '../../common/ops-http.js';
import { ASSET_PREFIX } from './assets.js';
import type { ConsoleAssets } from './assets.js';
import { setHardeningHeaders } from './security.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';

export function addConsolePages(http: OpsHttpServer, assets: ConsoleAssets, log: Logger): void {
  if (assets.problem !== undefined) log.warn(assets.problem);
  const shell = (_req: unknown, res: ServerResponse): void => {
    setHardeningHeaders(res, 'page');
    if (assets.problem !== undefined) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`Strata console unavailable: ${assets.problem}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': assets.shell.length,
      'cache-control': 'no-cache',
    });
    res.end(assets.shell);
  };
  for (const path of ['/', '/console', ASSET_PREFIX]) {
    http.route('GET', path, shell);
    http.route('HEAD', path, shell);
  }
  http.prefixRoute('GET', ASSET_PREFIX, (req, res, url) => {
    setHardeningHeaders(res, 'page');
    const name = url.pathname.slice(ASSET_PREFIX.length);
    const a = name.includes('/') ? undefined : assets.get(name);
    if (a === undefined) {
      sendJson(res, 404, {
        error: { code: 'STRATA_NOT_FOUND', message: `no console asset ${url.pathname}` },
      });
      return;
    }
    const etag = `"${a.hash}"`;
    const cache = url.searchParams.get('v') === a.hash ? IMMUTABLE : 'no-cache';
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag, 'cache-control': cache });
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': a.contentType,
      'content-length': a.body.length,
      etag,
      'cache-control': cache,
    });
    res.end(a.body);
  });
}
