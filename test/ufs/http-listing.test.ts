// Proves that http:// mounts list directories the way real web servers publish them: a real nginx
// (Debian nginx-light) with `autoindex` in HTML and in JSON, the test origin's index pages, and
// the parser on hostile pages; an origin without index pages is ENOTSUP with a clear message.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FsError } from '../../src/common/errors.js';
import { openUfs } from '../../src/ufs/index.js';
import { parseHtmlIndex, parseJsonIndex } from '../../src/ufs/http/index-page.js';
import type { UfsStatus, UnderFileSystem } from '../../src/ufs/index.js';
import { requireTools, which } from '../helpers/ci.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { HttpOrigin } from './http-origin.js';

async function listAll(ufs: UnderFileSystem, path: string, limit?: number): Promise<UfsStatus[]> {
  const out: UfsStatus[] = [];
  let cursor: string | undefined;
  do {
    const page = await ufs.list(path, {
      ...(limit === undefined ? {} : { limit }),
      ...(cursor === undefined ? {} : { cursor }),
    });
    out.push(...page.entries);
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}

const summary = (es: UfsStatus[]): string[] => es.map((e) => `${e.name}:${e.type}:${e.size}`);

/** A dataset tree: two files (one with a space and non-ASCII), a sub-directory, an empty one. */
function makeTree(root: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'a.bin': randomBytes(1000),
    'ünï code & more.txt': randomBytes(17),
    'sub/x.bin': randomBytes(5),
  };
  mkdirSync(join(root, 'ds', 'sub'), { recursive: true });
  mkdirSync(join(root, 'ds', 'empty'));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(root, 'ds', name), data);
  return files;
}

const EXPECTED = ['a.bin:file:1000', 'empty:dir:0', 'sub:dir:0', 'ünï code & more.txt:file:17'];

test('index pages: only direct children, each once, names decoded', () => {
  const dir = new URL('http://h/data/ds/');
  const html = `<html><body>
    <a href="../">../</a> <a href="?C=N;O=D">Name</a> <a href="/data/ds/?C=M">Modified</a>
    <a href="a.bin">a.bin</a> <a href='a.bin'>again</a> <A HREF=b%20c.txt>b c</A>
    <a class="x" href="sub/">sub/</a> <a href="sub/deeper.bin">nested</a>
    <a href="http://elsewhere/data/ds/evil">other host</a> <a href="/data/other/">sibling</a>
    <a href="/data/ds/abs.bin">absolute, same directory</a> <a href="q&amp;a.txt">entity</a>
    <a href="#top">fragment</a> <a href="./">self</a> <a href="%E2%82%AC.bin">euro</a>
    <a href="bad%zz">undecodable</a></body></html>`;
  assert.deepEqual(
    parseHtmlIndex(html, dir).map((e) => `${e.name}:${e.type}`),
    ['a.bin:file', 'abs.bin:file', 'b c.txt:file', 'q&a.txt:file', 'sub:dir', '€.bin:file'],
  );
  assert.deepEqual(
    parseJsonIndex(
      '[{"name":"f","type":"file","size":3,"mtime":"Sun, 22 Nov 2026 01:00:00 GMT"},{"name":"d","type":"directory"},{"name":"l","type":"other"}]',
    ),
    [
      { name: 'd', type: 'dir' },
      { name: 'f', type: 'file', size: 3, mtimeMs: Date.parse('Sun, 22 Nov 2026 01:00:00 GMT') },
    ],
  );
  assert.equal(parseJsonIndex('{"not":"an index"}'), undefined);
  assert.equal(parseJsonIndex('<html>'), undefined);
});

test('http:// lists the test origin in HTML and JSON; no index is ENOTSUP', async (t) => {
  const root = tempDir(t, 'strata-http-list-');
  makeTree(root);
  const origin = await HttpOrigin.start(root);
  t.after(() => origin.close());
  const ufs = openUfs(`${origin.url}/ds`);
  t.after(() => ufs.close());

  assert.deepEqual(summary(await listAll(ufs, '/')), EXPECTED);
  assert.deepEqual(summary(await listAll(ufs, '/', 1)), EXPECTED, 'pages of one cover everything once');
  assert.equal((await ufs.stat('/sub')).type, 'dir');
  assert.deepEqual(summary(await listAll(ufs, '/sub')), ['x.bin:file:5']);
  await assert.rejects(ufs.list('/a.bin'), (e: unknown) => e instanceof FsError && e.code === 'ENOTDIR');
  await assert.rejects(ufs.list('/nothing'), (e: unknown) => e instanceof FsError && e.code === 'ENOENT');

  origin.behaviour = { index: 'json' };
  const heads = origin.requests.filter((r) => r.method === 'HEAD').length;
  assert.deepEqual(summary(await listAll(ufs, '/')), EXPECTED);
  assert.equal(
    origin.requests.filter((r) => r.method === 'HEAD').length,
    heads,
    'JSON gives sizes: no HEADs',
  );

  origin.behaviour = { index: 'none' };
  const err = await ufs.list('/').then(
    () => assert.fail('listed without an index'),
    (e: unknown) => e as FsError,
  );
  assert.equal(err.code, 'ENOTSUP');
  assert.match(err.message, /refuses to list this directory \(HTTP 403\).*autoindex on/);
});

test(
  'http:// lists a real nginx autoindex (HTML and JSON)',
  { skip: requireTools('nginx'), timeout: 60_000 },
  async (t) => {
    const root = tempDir(t, 'strata-http-nginx-');
    makeTree(root);
    mkdirSync(join(root, 'json'));
    makeTree(join(root, 'json'));
    const port = await freePort();
    const conf = join(root, 'nginx.conf');
    writeFileSync(
      conf,
      `daemon off; master_process off; worker_processes 1; pid ${root}/nginx.pid; error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${root}/t1; proxy_temp_path ${root}/t2; fastcgi_temp_path ${root}/t3;
  uwsgi_temp_path ${root}/t4; scgi_temp_path ${root}/t5;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { autoindex on; }
    location /json/ { autoindex on; autoindex_format json; }
  }
}
`,
    );
    const nginx = spawn(which('nginx') ?? 'nginx', ['-p', root, '-c', conf], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    nginx.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    t.after(() => {
      nginx.kill('SIGKILL');
    });
    await waitFor(
      `nginx up on ${port} (${stderr})`,
      async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok === true,
      20_000,
    );

    for (const base of [`http://127.0.0.1:${port}/ds`, `http://127.0.0.1:${port}/json/ds`]) {
      const ufs = openUfs(base);
      t.after(() => ufs.close());
      assert.deepEqual(summary(await listAll(ufs, '/')), EXPECTED, base);
      assert.equal((await ufs.stat('/sub')).type, 'dir', `${base}: nginx redirects sub to sub/`);
      assert.equal((await ufs.stat('/a.bin')).type, 'file');
      assert.deepEqual(summary(await listAll(ufs, '/sub')), ['x.bin:file:5']);
      await assert.rejects(ufs.list('/nothing'), (e: unknown) => e instanceof FsError && e.code === 'ENOENT');
    }
  },
);
