/**
 * Directory listings of plain web servers. HTTP has no listing call, but the servers datasets
 * are published from do: nginx `autoindex` (HTML, or JSON with `autoindex_format json`), Apache
 * `mod_autoindex`, `python -m http.server`, most mirrors. An index page is read as its links:
 * every `<a href>` that names a direct child of the directory is an entry, a trailing slash
 * marks a directory. Everything else on the page (sort links, parent links, absolute links
 * elsewhere, fragments) is ignored. nginx's JSON index also gives sizes and times.
 */

/** One child named by an index page. `size`/`mtimeMs` only when the index says them (JSON). */
export interface IndexEntry {
  name: string;
  type: 'file' | 'dir';
  size?: number;
  mtimeMs?: number;
}

/** Largest index page read (about 100,000 entries of a typical autoindex page). */
export const MAX_INDEX_PAGE_BYTES = 16 * 1024 * 1024;

const HREF = /<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi;

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[e.toLowerCase()] ?? whole;
  });
}

/**
 * The child a link names, or undefined when it names anything else. `dirUrl` is the index's own
 * URL (ending in "/").
 */
function childOf(href: string, dirUrl: URL): IndexEntry | undefined {
  let target: URL;
  try {
    target = new URL(href, dirUrl);
  } catch {
    return undefined;
  }
  if (target.origin !== dirUrl.origin || target.search !== '') return undefined;
  if (!target.pathname.startsWith(dirUrl.pathname)) return undefined;
  let rest = target.pathname.slice(dirUrl.pathname.length);
  const isDir = rest.endsWith('/');
  if (isDir) rest = rest.slice(0, -1);
  if (rest === '' || rest.includes('/')) return undefined;
  let name: string;
  try {
    name = decodeURIComponent(rest);
  } catch {
    return undefined;
  }
  if (name === '.' || name === '..' || name.includes('/') || name.includes('\0')) return undefined;
  return { name, type: isDir ? 'dir' : 'file' };
}

/** The children an HTML index page links to, each once, sorted by name. */
export function parseHtmlIndex(html: string, dirUrl: URL): IndexEntry[] {
  const byName = new Map<string, IndexEntry>();
  for (const m of html.matchAll(HREF)) {
    const raw = m[1] ?? m[2] ?? m[3] ?? '';
    const e = childOf(decodeEntities(raw), dirUrl);
    if (e !== undefined && !byName.has(e.name)) byName.set(e.name, e);
  }
  return [...byName.values()].sort(byName_);
}

function byName_(a: IndexEntry, b: IndexEntry): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

interface NginxJsonEntry {
  name?: unknown;
  type?: unknown;
  size?: unknown;
  mtime?: unknown;
}

/**
 * nginx's `autoindex_format json`: `[{"name", "type": "file"|"directory"|"other", "mtime", "size"}]`.
 * Returns undefined when the body is not that shape (then it is not an index).
 */
export function parseJsonIndex(body: string): IndexEntry[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc)) return undefined;
  const out: IndexEntry[] = [];
  for (const item of doc as NginxJsonEntry[]) {
    if (typeof item !== 'object' || item === null || typeof item.name !== 'string') return undefined;
    const name = item.name;
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) continue;
    if (item.type === 'directory') out.push({ name, type: 'dir' });
    else if (item.type === 'file') {
      const mtime = typeof item.mtime === 'string' ? Date.parse(item.mtime) : NaN;
      out.push({
        name,
        type: 'file',
        ...(typeof item.size === 'number' && Number.isSafeInteger(item.size) && item.size >= 0
          ? { size: item.size }
          : {}),
        ...(Number.isFinite(mtime) ? { mtimeMs: mtime } : {}),
      });
    }
  }
  return out.sort(byName_);
}
