/**
 * Browse: a directory a page at a time (BROWSE_PAGE entries, so a directory of any size loads
 * fast), with each file's cached share; a file with its blocks and where their copies are.
 */
import type { BrowseResult, FileStatus } from '../api.js';
import { getJson } from '../api.js';
import type { Ctx, Page } from '../app.js';
import { href } from '../app.js';
import type { Child } from '../dom.js';
import { h } from '../dom.js';
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatMode,
  formatPercent,
  formatTime,
  ratio,
} from '../format.js';
import { badge, card, empty, stat, table, usageBar } from '../widgets.js';

/** Entries per page. */
export const BROWSE_PAGE = 200;

/** Directories whose page cursors are remembered (a bound, not a cache policy). */
const MAX_REMEMBERED_DIRS = 100;
const cursors = new Map<string, Map<number, string>>();

export const browsePage: Page = {
  id: 'browse',
  title: 'Browse',
  auto: true,
  async load(ctx) {
    const path = normalize(ctx.params.get('path') ?? '/');
    const after = ctx.params.get('after') ?? '';
    const q = new URLSearchParams({ path, limit: String(BROWSE_PAGE) });
    if (after !== '') q.set('startAfter', after);
    const r = await getJson<BrowseResult>(`/api/browse?${q.toString()}`);
    const body =
      r.status.type === 'dir'
        ? directory(ctx, path, after, r)
        : r.status.type === 'file'
          ? file(r)
          : symlink(r.status);
    const node = h('div', { class: 'page browse' }, crumbs(ctx, path), body);
    performance.mark('strata:browse-rendered');
    return node;
  },
};

function normalize(p: string): string {
  const t = p.trim();
  if (t === '' || t === '/') return '/';
  return `/${t.replace(/^\/+|\/+$/g, '')}`;
}

function crumbs(ctx: Ctx, path: string): HTMLElement {
  const parts = path === '/' ? [] : path.slice(1).split('/');
  const go = h('input', {
    type: 'text',
    value: path,
    'aria-label': 'Path',
    class: 'path-input',
    'data-k': 'path-input',
  });
  const form = h('form', { class: 'path-form' }, go, h('button', { type: 'submit' }, 'Go'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ctx.go('/browse', { path: normalize(go.value) });
  });
  return h(
    'div',
    { class: 'crumbs-bar' },
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Path', 'data-k': 'crumbs' },
      h('a', { href: href('/browse', { path: '/' }) }, '/'),
      parts.map((name, i) => {
        const p = `/${parts.slice(0, i + 1).join('/')}`;
        return [
          i > 0 ? h('span', { class: 'sep' }, '/') : null,
          h('a', { href: href('/browse', { path: p }) }, name),
        ];
      }),
    ),
    form,
  );
}

function directory(ctx: Ctx, path: string, after: string, r: BrowseResult): HTMLElement {
  const entries = r.entries ?? [];
  const total = r.status.children;
  const n = Number(ctx.params.get('n') ?? '0');
  const offset = after === '' || !Number.isSafeInteger(n) || n < 0 ? 0 : n;
  // Cursors of the pages seen in this directory (offset → startAfter), so "Previous" works.
  let pages = cursors.get(path);
  if (pages === undefined) {
    if (cursors.size >= MAX_REMEMBERED_DIRS) cursors.clear();
    pages = new Map();
    cursors.set(path, pages);
  }
  pages.set(offset, after);
  const link = (cursor: string, at: number): string =>
    href('/browse', cursor === '' ? { path } : { path, after: cursor, n: String(at) });
  const prev = offset >= BROWSE_PAGE ? pages.get(offset - BROWSE_PAGE) : undefined;
  const range =
    entries.length === 0
      ? 'No entries'
      : `Entries ${formatCount(offset + 1)}–${formatCount(offset + entries.length)}`;
  const nav = (): HTMLElement =>
    h(
      'div',
      { class: 'pager' },
      h('span', null, h('span', { 'data-k': 'range' }, range)),
      total === undefined
        ? null
        : h('span', null, ' of ', h('span', { 'data-k': 'total' }, formatCount(total))),
      h(
        'span',
        { class: 'pager-buttons' },
        after === '' ? null : h('a', { class: 'button', href: link('', 0), 'data-k': 'first' }, 'First'),
        prev === undefined
          ? null
          : h(
              'a',
              { class: 'button', href: link(prev, offset - BROWSE_PAGE), 'data-k': 'prev' },
              '← Previous',
            ),
        r.nextStartAfter === undefined
          ? null
          : h(
              'a',
              { class: 'button', href: link(r.nextStartAfter, offset + entries.length), 'data-k': 'next' },
              'Next →',
            ),
      ),
    );
  return h(
    'div',
    null,
    nav(),
    entries.length === 0
      ? empty('This directory is empty.')
      : table<FileStatus>(
          [
            {
              label: 'Name',
              cell: (e) =>
                h(
                  'a',
                  { href: href('/browse', { path: e.path }), class: `name ${e.type}`, 'data-k': 'name' },
                  e.type === 'dir' ? `${e.name}/` : e.name,
                ),
            },
            {
              label: 'Size',
              class: 'num',
              cell: (e) =>
                e.type === 'dir'
                  ? `${formatCount(e.children ?? 0)} entries`
                  : h('span', { 'data-k': 'size' }, formatBytes(e.size)),
            },
            { label: 'Cached', cell: (e) => cached(e) },
            { label: 'Replicas', class: 'num', cell: (e) => (e.type === 'file' ? String(e.replicas) : '') },
            { label: 'Tier', cell: (e) => (e.type === 'file' ? e.storageType : '') },
            { label: 'Modified', cell: (e) => formatTime(e.mtimeMs) },
            {
              label: 'UFS',
              cell: (e) => (e.ufsPath === undefined ? '' : h('span', { class: 'mono ufs' }, e.ufsPath)),
            },
          ],
          entries,
          (e) => ({ 'data-entry': e.name }),
        ),
    entries.length > 20 ? nav() : null,
  );
}

function cached(e: FileStatus): HTMLElement | string {
  if (e.type !== 'file') return '';
  if (e.cachedBytes === undefined) return '—';
  const r = e.size === 0 ? 1 : ratio(e.cachedBytes, e.size);
  return h(
    'span',
    { class: 'cached' },
    usageBar({
      usedBytes: e.size === 0 ? 1 : e.cachedBytes,
      capacityBytes: e.size === 0 ? 1 : e.size,
      label: 'cached',
      kind: 'cached',
    }),
    h('span', { 'data-k': 'cached' }, formatPercent(r)),
  );
}

function file(r: BrowseResult): HTMLElement {
  const st = r.status;
  const blocks = r.blocks ?? [];
  const cachedBytes = st.cachedBytes;
  const cachedRatio = cachedBytes === undefined ? undefined : st.size === 0 ? 1 : ratio(cachedBytes, st.size);
  const kv = (k: string, v: Child, key?: string): HTMLElement[] => [
    h('dt', null, k),
    h('dd', { 'data-k': key }, v),
  ];
  return h(
    'div',
    null,
    card(
      st.name === '' ? '/' : st.name,
      h(
        'div',
        { class: 'stats' },
        stat('Size', formatBytes(st.size), 'file-size'),
        stat(
          'Cached',
          cachedRatio === undefined ? '—' : formatPercent(cachedRatio),
          'file-cached',
          cachedBytes === undefined ? undefined : `${formatBytes(cachedBytes)} held by workers`,
        ),
        stat('Blocks', formatCount(blocks.length), 'file-blocks'),
        stat('Replicas', String(st.replicas), 'file-replicas'),
      ),
      cachedRatio === undefined
        ? null
        : usageBar({ usedBytes: cachedRatio, capacityBytes: 1, label: 'cached', kind: 'cached' }),
      h(
        'dl',
        { class: 'details' },
        kv('Path', h('span', { class: 'mono' }, st.path)),
        kv(
          'UFS origin',
          st.ufsPath === undefined
            ? 'none: written to Strata only'
            : h('span', { class: 'mono' }, st.ufsPath),
          'ufs',
        ),
        kv('State', badge(st.state === 'complete' ? 'completed' : st.state)),
        kv('Block size', formatBytes(st.blockSize)),
        kv('Storage type', st.storageType),
        kv('TTL', st.ttlMs === 0 ? 'none' : `${formatDuration(st.ttlMs)}, then ${st.ttlAction}`),
        kv(
          'Mode',
          h('span', { class: 'mono' }, `${formatMode(st.mode, st.type)}  uid ${st.uid} gid ${st.gid}`),
        ),
        kv('Modified', formatTime(st.mtimeMs)),
      ),
    ),
    card(
      'Blocks',
      blocks.length === 0
        ? empty('This file has no blocks.')
        : table(
            [
              { label: '#', class: 'num', cell: (b) => String(blocks.indexOf(b)) },
              {
                label: 'Block id',
                class: 'num',
                cell: (b) => h('span', { class: 'mono', 'data-k': 'block-id' }, String(b.blockId)),
              },
              { label: 'Offset', class: 'num', cell: (b) => formatBytes(b.offset) },
              { label: 'Length', class: 'num', cell: (b) => formatBytes(b.length) },
              {
                label: 'Locations',
                cell: (b) =>
                  b.workers.length === 0
                    ? h('span', { class: 'muted', 'data-k': 'locations' }, 'not cached')
                    : h(
                        'ul',
                        { class: 'locations', 'data-k': 'locations' },
                        b.workers.map((w) =>
                          h('li', { class: 'mono', title: w.workerId }, `${w.address} (${w.storageType})`),
                        ),
                      ),
              },
            ],
            blocks,
            (b) => ({ 'data-block': String(b.blockId) }),
          ),
    ),
  );
}

function symlink(st: FileStatus): HTMLElement {
  return card(st.name, stat('Symbolic link to', h('span', { class: 'mono' }, st.target ?? '?'), 'target'));
}
