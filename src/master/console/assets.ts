/**
 * The console's built files (src/console-ui bundled by esbuild into dist/src/console-ui at
 * `npm run build`), read once at start and served from memory. The page shell is generated here:
 * it names the bundle with a content hash so browsers may cache the bundle for good and still
 * see a new build at once. Nothing from a request ever reaches a file path: only the names
 * found at start are served.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the built console is, next to the compiled server. */
export const DEFAULT_ASSET_DIR = fileURLToPath(new URL('../../console-ui/', import.meta.url));
/** URL prefix of the assets. */
export const ASSET_PREFIX = '/console/';
/** Largest asset file read (the bundle is about 30 KiB). */
const MAX_ASSET_BYTES = 4 * 1024 * 1024;

/** The files esbuild writes (package.json `build:console`); nothing else in the folder is served. */
const BUILT_FILES = ['main.js', 'main.js.map', 'styles.css', 'styles.css.map'];

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export interface Asset {
  body: Buffer;
  contentType: string;
  /** Short content hash: the ETag and the cache-busting query of the shell's links. */
  hash: string;
}

/** A small inline-free favicon: a stack of three tiers. */
const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="4" y="5" width="24" height="6" rx="2" fill="#2f6fde"/><rect x="4" y="13" width="24" height="6" rx="2" fill="#4f8df0"/><rect x="4" y="21" width="24" height="6" rx="2" fill="#8db5f5"/></svg>`;

export class ConsoleAssets {
  readonly #files = new Map<string, Asset>();
  readonly shell: Buffer;
  /** Why the console cannot be shown (assets missing), or undefined when it can. */
  readonly problem: string | undefined;

  private constructor(files: Map<string, Asset>, problem: string | undefined) {
    this.#files = files;
    this.problem = problem;
    this.shell = Buffer.from(
      renderShell(files.get('main.js')?.hash ?? '0', files.get('styles.css')?.hash ?? '0'),
    );
  }

  static load(dir: string = DEFAULT_ASSET_DIR): ConsoleAssets {
    const files = new Map<string, Asset>();
    files.set('favicon.svg', asset(Buffer.from(FAVICON_SVG), '.svg'));
    for (const name of BUILT_FILES) {
      let body: Buffer;
      try {
        body = readFileSync(join(dir, name));
      } catch {
        continue; // reported below when it matters
      }
      if (body.length <= MAX_ASSET_BYTES) files.set(name, asset(body, extname(name)));
    }
    const missing = ['main.js', 'styles.css'].filter((n) => !files.has(n));
    const problem =
      missing.length === 0
        ? undefined
        : `console assets missing in ${dir} (${missing.join(', ')}): run "npm run build"`;
    return new ConsoleAssets(files, problem);
  }

  get(name: string): Asset | undefined {
    return this.#files.get(name);
  }
}

function asset(body: Buffer, ext: string): Asset {
  return {
    body,
    contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
    hash: createHash('sha256').update(body).digest('hex').slice(0, 16),
  };
}

function renderShell(jsHash: string, cssHash: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Strata console</title>
<link rel="icon" href="${ASSET_PREFIX}favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${ASSET_PREFIX}styles.css?v=${cssHash}">
<script type="module" src="${ASSET_PREFIX}main.js?v=${jsHash}"></script>
</head>
<body>
<noscript><p class="noscript">The Strata console needs JavaScript. The same data is at /api/overview, /api/workers, /api/browse and /api/config.</p></noscript>
<div id="app"></div>
</body>
</html>
`;
}
