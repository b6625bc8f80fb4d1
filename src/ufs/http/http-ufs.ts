/**
 * `http(s)://host/prefix`: a read-only UFS over a plain HTTP origin (a CDN, a web server, a
 * dataset mirror). HEAD gives the size and the validators (ETag, Last-Modified); reads are Range
 * GETs of exactly the bytes wanted. Directories are what web servers make of them: `dir` answers
 * a redirect from `dir` to `dir/` (nginx, Apache, python's http.server all do), and `dir/` serves
 * an index page whose links are the listing (index-page.ts). An origin without index pages
 * cannot list (ENOTSUP): its files are reached by path. Writes fail with EROFS.
 *
 * Requests go through an undici Agent with connect, header and body timeouts; idempotent requests
 * are retried on connection errors and 502/503/504 before any body byte was returned.
 */
import { Readable, addAbortSignal } from 'node:stream';
import { Agent, interceptors } from 'undici';
import type { Dispatcher } from 'undici';
import { mapConcurrent } from '../../common/concurrency.js';
import { FsError } from '../../common/errors.js';
import {
  abortReason,
  isAbort,
  throwIfAborted,
  mapNetworkError,
  ufsAccessDenied,
  ufsIo,
  ufsNotFound,
  ufsNotSupported,
  ufsReadOnly,
  ufsStale,
} from '../errors.js';
import { discard, exactLength, sliceStream } from '../exact-stream.js';
import { HTTP_MAX_REDIRECTS, HTTP_MAX_SKIP_BYTES, UFS_LIST_PAGE_MAX, UFS_MAX_SOCKETS } from '../limits.js';
import type { HttpUfsOptions } from '../options.js';
import { normaliseUfsPath, ufsBaseName, ufsJoin, ufsPathParts } from '../paths.js';
import type {
  UfsCallOptions,
  UfsCapabilities,
  UfsListOptions,
  UfsListPage,
  UfsRead,
  UfsReadOptions,
  UfsStatus,
  UnderFileSystem,
} from '../ufs.js';
import type { UfsUri } from '../uri.js';
import { checkValidator, normaliseEtag } from '../validator.js';
import { MAX_INDEX_PAGE_BYTES, parseHtmlIndex, parseJsonIndex } from './index-page.js';
import type { IndexEntry } from './index-page.js';

/** First retry delay of an idempotent request; doubles per attempt. */
const RETRY_BASE_DELAY_MS = 100;
const RETRY_STATUSES = new Set([502, 503, 504]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** HEADs in flight at once while a listing page learns the sizes its index page does not give. */
const LIST_HEAD_CONCURRENCY = 8;

type Method = 'HEAD' | 'GET';

interface Response {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

/**
 * Throws away a response body we do not need. Small bodies (HEAD, error pages) are read to the end
 * so the connection stays reusable; big ones are cut (undici's dump limit).
 */
function drain(res: Response): void {
  res.body.dump().catch(() => undefined);
}

function header(h: Response['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseHttpDate(v: string | undefined): number {
  if (v === undefined) return 0;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : 0;
}

/** Strong ETags only: a weak one cannot be used in If-Match (RFC 9110 §13.1.1). */
function strongEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag.startsWith('W/')) return undefined;
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

export class HttpUfs implements UnderFileSystem {
  readonly scheme: 'http' | 'https';
  readonly capabilities: UfsCapabilities = {
    readOnly: true,
    canList: true,
    atomicRename: false,
    realDirectories: false,
  };
  readonly #uri: string;
  readonly #base: string;
  readonly #origin: string;
  readonly #opts: HttpUfsOptions;
  readonly #agent: Agent;
  readonly #dispatcher: Dispatcher;

  constructor(uri: UfsUri, opts: HttpUfsOptions) {
    this.scheme = uri.scheme === 'https' ? 'https' : 'http';
    this.#uri = uri.uri;
    this.#origin = `${this.scheme}://${uri.authority}`;
    this.#base =
      this.#origin +
      ufsPathParts(uri.rootPath)
        .map(encodeURIComponent)
        .map((s) => `/${s}`)
        .join('');
    this.#opts = opts;
    this.#agent = new Agent({
      connect: { timeout: opts.connectTimeoutMs },
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      connections: UFS_MAX_SOCKETS,
    });
    this.#dispatcher = this.#agent.compose(interceptors.redirect({ maxRedirections: HTTP_MAX_REDIRECTS }));
  }

  describe(): string {
    return this.#uri;
  }

  #where(path: string): string {
    return path === '/' ? this.#uri : `${this.#uri}${path}`;
  }

  /** The URL of a path; `dir`: of its index page (with the trailing slash). */
  #url(path: string, dir = false): string {
    return (
      this.#base +
      ufsPathParts(path)
        .map((s) => `/${encodeURIComponent(s)}`)
        .join('') +
      (path === '/' || dir ? '/' : '')
    );
  }

  #mapNet(err: unknown, path: string, signal: AbortSignal | undefined): Error {
    if (isAbort(err, signal) && signal !== undefined) return abortReason(signal);
    if (err instanceof FsError) return err;
    return (
      mapNetworkError(err, this.#where(path), this.#origin) ??
      ufsIo(this.#where(path), err instanceof Error ? err.message : String(err))
    );
  }

  /** Maps a non-success status; the body is discarded. */
  #statusError(res: Response, path: string): FsError {
    drain(res);
    const where = this.#where(path);
    const s = res.statusCode;
    if (s === 404 || s === 410) return ufsNotFound(where);
    if (s === 401 || s === 403)
      return ufsAccessDenied(where, `HTTP ${s}`, 'check the http.header.* mount options');
    if (s === 412) return ufsStale(where, 'ETag no longer matches');
    return ufsIo(where, `the origin answered HTTP ${s}`);
  }

  async #request(
    method: Method,
    path: string,
    extra: Record<string, string>,
    signal: AbortSignal | undefined,
    how: { follow?: boolean; dir?: boolean } = {},
  ): Promise<Response> {
    const headers = { ...this.#opts.headers, ...extra };
    const dispatcher = how.follow === false ? this.#agent : this.#dispatcher;
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      try {
        const res = await dispatcher.request({
          origin: this.#origin,
          path: this.#url(path, how.dir).slice(this.#origin.length),
          method,
          headers,
          ...(signal === undefined ? {} : { signal }),
        });
        const r: Response = { statusCode: res.statusCode, headers: res.headers, body: res.body };
        if (RETRY_STATUSES.has(r.statusCode) && attempt < this.#opts.maxAttempts) {
          drain(r);
          await delay(RETRY_BASE_DELAY_MS * 2 ** (attempt - 1), signal);
          continue;
        }
        return r;
      } catch (err) {
        const mapped = this.#mapNet(err, path, signal);
        const retryable = mapped instanceof FsError && mapped.code !== 'EIO' && !isAbort(err, signal);
        if (!retryable || attempt >= this.#opts.maxAttempts) throw mapped;
        await delay(RETRY_BASE_DELAY_MS * 2 ** (attempt - 1), signal);
      }
    }
  }

  async check(opts: UfsCallOptions = {}): Promise<void> {
    // Any answer proves the origin is there; only "unauthorised" is a problem of the mount itself
    // (many origins refuse or 404 a bare directory URL, which is fine for a file-by-path UFS).
    const res = await this.#request('HEAD', '/', {}, opts.signal);
    drain(res);
    if (res.statusCode === 401) {
      throw ufsAccessDenied(this.#uri, 'HTTP 401', 'check the http.header.* mount options');
    }
  }

  async stat(path: string, opts: UfsCallOptions = {}): Promise<UfsStatus> {
    const p = normaliseUfsPath(path);
    if (p === '/') {
      await this.check(opts);
      return { path: p, name: '', type: 'dir', size: 0, mtimeMs: 0 };
    }
    let res = await this.#request('HEAD', p, {}, opts.signal, { follow: false });
    drain(res);
    if (REDIRECT_STATUSES.has(res.statusCode)) {
      // `dir` → `dir/` is how web servers say "a directory"; any other redirect is followed.
      const to = header(res.headers, 'location');
      const dirUrl = this.#url(p, true);
      if (to !== undefined && URL.canParse(to, dirUrl) && new URL(to, dirUrl).href === new URL(dirUrl).href) {
        return { path: p, name: ufsBaseName(p), type: 'dir', size: 0, mtimeMs: 0 };
      }
      res = await this.#request('HEAD', p, {}, opts.signal);
      drain(res);
    }
    if (
      res.statusCode === 405 ||
      res.statusCode === 501 ||
      (res.statusCode === 200 && header(res.headers, 'content-length') === undefined)
    ) {
      // No HEAD, or no length on it: ask for the first byte and read the total from Content-Range.
      return this.#statByRange(p, opts.signal);
    }
    if (res.statusCode !== 200) throw this.#statusError(res, p);
    return this.#fileStatus(p, res.headers, Number(header(res.headers, 'content-length')));
  }

  #fileStatus(path: string, h: Response['headers'], size: number): UfsStatus {
    const etag = header(h, 'etag');
    return {
      path,
      name: ufsBaseName(path),
      type: 'file',
      size,
      mtimeMs: parseHttpDate(header(h, 'last-modified')),
      ...(etag === undefined ? {} : { etag }),
    };
  }

  async #statByRange(path: string, signal: AbortSignal | undefined): Promise<UfsStatus> {
    const res = await this.#request('GET', path, { range: 'bytes=0-0' }, signal);
    drain(res);
    if (res.statusCode === 206) {
      const total = /\/(\d+)$/.exec(header(res.headers, 'content-range') ?? '')?.[1];
      if (total === undefined) throw ufsIo(this.#where(path), 'the origin does not say the size of the file');
      return this.#fileStatus(path, res.headers, Number(total));
    }
    if (res.statusCode === 416) return this.#fileStatus(path, res.headers, 0);
    if (res.statusCode === 200) {
      const len = header(res.headers, 'content-length');
      if (len === undefined) throw ufsIo(this.#where(path), 'the origin does not say the size of the file');
      return this.#fileStatus(path, res.headers, Number(len));
    }
    throw this.#statusError(res, path);
  }

  async list(path: string, opts: UfsListOptions = {}): Promise<UfsListPage> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    const all = await this.#index(p, signal);
    const limit = Math.max(1, Math.min(opts.limit ?? UFS_LIST_PAGE_MAX, UFS_LIST_PAGE_MAX));
    const from = opts.cursor === undefined ? 0 : all.findIndex((e) => e.name > (opts.cursor as string));
    const page = from < 0 ? [] : all.slice(from, from + limit);
    const entries = await this.#statuses(p, page, signal);
    const more = from >= 0 && from + limit < all.length;
    const last = page.at(-1);
    return { entries, ...(more && last !== undefined ? { cursor: last.name } : {}) };
  }

  /** The children a directory's index page names, sorted by name. */
  async #index(p: string, signal: AbortSignal | undefined): Promise<IndexEntry[]> {
    const where = this.#where(p);
    const res = await this.#request(
      'GET',
      p,
      { accept: 'application/json;q=1, text/html;q=0.9, */*;q=0.1' },
      signal,
      { dir: true },
    );
    if (res.statusCode === 404 || res.statusCode === 410) {
      drain(res);
      // A file asked for as a directory answers 404 on most servers: tell the two apart.
      const st = await this.stat(p, signal === undefined ? {} : { signal });
      if (st.type === 'file') throw notDir(where);
      throw ufsNotSupported(
        where,
        `the origin serves no index page for this directory (HTTP ${res.statusCode})`,
      );
    }
    if (res.statusCode === 403) {
      drain(res);
      throw ufsNotSupported(
        where,
        'the origin refuses to list this directory (HTTP 403); enable index pages (nginx: autoindex on) or read files by path',
      );
    }
    if (res.statusCode !== 200) throw this.#statusError(res, p);
    const type = (header(res.headers, 'content-type') ?? '').toLowerCase();
    const isJson = type.includes('json');
    if (!isJson && !type.includes('html') && type !== '') {
      drain(res);
      throw notDir(where);
    }
    let body: string;
    try {
      body = await readCapped(res.body, MAX_INDEX_PAGE_BYTES, where);
    } catch (err) {
      throw this.#mapNet(err, p, signal);
    }
    const entries = isJson ? parseJsonIndex(body) : parseHtmlIndex(body, new URL(this.#url(p, true)));
    if (entries === undefined) throw notDir(where);
    return entries;
  }

  /** Full statuses of index entries: HEAD for the files whose size the index did not give. */
  async #statuses(dir: string, page: IndexEntry[], signal: AbortSignal | undefined): Promise<UfsStatus[]> {
    const out = await mapConcurrent(
      page,
      LIST_HEAD_CONCURRENCY,
      async (e): Promise<UfsStatus | undefined> => {
        const path = ufsJoin(dir, e.name);
        if (e.type === 'dir') return { path, name: e.name, type: 'dir', size: 0, mtimeMs: 0 };
        if (e.size !== undefined)
          return { path, name: e.name, type: 'file', size: e.size, mtimeMs: e.mtimeMs ?? 0 };
        try {
          return await this.stat(path, signal === undefined ? {} : { signal });
        } catch (err) {
          // Removed since the index was made: not an entry any more.
          if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
          return undefined;
        }
      },
    );
    return out.filter((s): s is UfsStatus => s !== undefined);
  }

  async openRead(path: string, opts: UfsReadOptions = {}): Promise<UfsRead> {
    const p = normaliseUfsPath(path);
    const signal = opts.signal;
    const where = this.#where(p);
    if (p === '/') throw new FsError('EISDIR', `${where}: is a directory`, { details: { path: where } });
    const offset = opts.offset ?? 0;
    if (opts.length === 0) {
      const st = await this.stat(p, { ...(signal === undefined ? {} : { signal }) });
      checkValidator(where, st, opts.validator);
      return {
        body: Readable.from([]),
        length: 0,
        objectSize: st.size,
        ...(st.etag === undefined ? {} : { etag: st.etag }),
      };
    }
    const extra: Record<string, string> = {};
    if (offset > 0 || opts.length !== undefined) {
      extra.range = `bytes=${offset}-${opts.length === undefined ? '' : offset + opts.length - 1}`;
    }
    const ifMatch = strongEtag(opts.validator?.etag);
    if (ifMatch !== undefined) extra['if-match'] = ifMatch;
    const res = await this.#request('GET', p, extra, signal);
    const etag = header(res.headers, 'etag');
    const mtimeMs = parseHttpDate(header(res.headers, 'last-modified'));
    let objectSize: number;
    let length: number;
    let source: Readable = res.body;
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
      if (m === null || Number(m[1]) !== offset) {
        drain(res);
        throw ufsIo(where, 'the origin answered a different range than asked');
      }
      const served = Number(m[2]) - offset + 1;
      objectSize = m[3] === '*' ? (opts.validator?.size ?? offset + served) : Number(m[3]);
      // Some servers widen a range (e.g. to the end): keep only what was asked.
      length = Math.min(served, opts.length ?? served);
      if (length < served) source = sliceStream(res.body, 0, length);
    } else if (res.statusCode === 200) {
      const len = header(res.headers, 'content-length');
      if (len === undefined) {
        drain(res);
        throw ufsIo(where, 'the origin sent no Content-Length and ignored the Range request');
      }
      objectSize = Number(len);
      length = Math.max(0, Math.min(opts.length ?? Infinity, objectSize - offset));
      if (offset > HTTP_MAX_SKIP_BYTES) {
        drain(res);
        throw ufsNotSupported(
          where,
          `the origin ignores Range requests; reading at offset ${offset} would download ${offset} bytes first`,
        );
      }
      if (offset > 0 || length < objectSize) source = sliceStream(res.body, offset, length);
    } else if (res.statusCode === 416) {
      drain(res);
      const st = await this.stat(p, { ...(signal === undefined ? {} : { signal }) });
      checkValidator(where, st, opts.validator);
      return {
        body: Readable.from([]),
        length: 0,
        objectSize: st.size,
        ...(st.etag === undefined ? {} : { etag: st.etag }),
      };
    } else {
      throw this.#statusError(res, p);
    }
    try {
      checkValidator(
        where,
        { size: objectSize, mtimeMs, ...(etag === undefined ? {} : { etag: normaliseEtag(etag) ?? etag }) },
        opts.validator,
      );
    } catch (err) {
      if (source !== res.body) discard(source);
      drain(res);
      throw err;
    }
    if (signal !== undefined) addAbortSignal(signal, source);
    const body = exactLength(source, length, where, (err) => this.#mapNet(err, p, signal));
    return { body, length, objectSize, ...(etag === undefined ? {} : { etag }) };
  }

  async write(path: string): Promise<UfsStatus> {
    throw ufsReadOnly(this.#where(normaliseUfsPath(path)), this.scheme);
  }

  async delete(path: string): Promise<void> {
    throw ufsReadOnly(this.#where(normaliseUfsPath(path)), this.scheme);
  }

  async rename(src: string): Promise<void> {
    throw ufsReadOnly(this.#where(normaliseUfsPath(src)), this.scheme);
  }

  async mkdir(path: string): Promise<void> {
    throw ufsReadOnly(this.#where(normaliseUfsPath(path)), this.scheme);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

function notDir(where: string): FsError {
  return new FsError('ENOTDIR', `${where}: not a directory`, { details: { path: where } });
}

/** A response body as text, refused beyond `maxBytes`. */
async function readCapped(body: AsyncIterable<Uint8Array>, maxBytes: number, where: string): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += chunk.length;
    if (n > maxBytes) {
      throw new FsError('E2BIG', `${where}: index page larger than ${maxBytes} bytes`, {
        details: { path: where },
      });
    }
    parts.push(Buffer.from(chunk));
  }
  return Buffer.concat(parts).toString('utf8');
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(abortReason(signal));
      },
      { once: true },
    );
  });
}
