/**
 * Mounts: the UFS mount table a page at a time — where each UFS appears, its URI, its options
 * (secret values arrive masked from the master and are shown as such), TTL, write type,
 * auto-cache and the per-mount overrides of the client defaults.
 */
import type { MountInfo, MountsPage } from '../api.js';
import { getJson } from '../api.js';
import { MOUNTS_PAGE } from '../limits.js';
import type { Page } from '../app.js';
import { href } from '../app.js';
import { h } from '../dom.js';
import { formatBytes, formatCount, formatDuration, formatTime } from '../format.js';
import { empty, offsetPager, offsetParam, table } from '../widgets.js';

/** How the master writes a masked option value. */
const MASKED = '***';

export const mountsPage: Page = {
  id: 'mounts',
  title: 'Mounts',
  auto: true,
  async load(ctx) {
    const offset = offsetParam(ctx.params, MOUNTS_PAGE);
    const q = new URLSearchParams({ offset: String(offset), limit: String(MOUNTS_PAGE) });
    const r = await getJson<MountsPage>(`/api/mounts?${q.toString()}`);
    // A function: the pager shows above and below the table (one element cannot be in two places).
    const pager = (): HTMLElement =>
      offsetPager({
        route: '/mounts',
        offset,
        shown: r.mounts.length,
        total: r.total,
        pageSize: MOUNTS_PAGE,
        noun: 'mounts',
      });
    return h(
      'div',
      { class: 'page mounts' },
      h(
        'p',
        { class: 'summary' },
        h('span', { 'data-k': 'mount-count' }, formatCount(r.total)),
        ` UFS mount${r.total === 1 ? '' : 's'}`,
      ),
      r.total === 0
        ? empty('No UFS is mounted. Mount one with: strata mount <uri> <path>')
        : [
            r.total > MOUNTS_PAGE || offset > 0 ? pager() : null,
            table<MountInfo>(
              [
                {
                  label: 'Path',
                  cell: (m) =>
                    h(
                      'div',
                      null,
                      h(
                        'a',
                        { href: href('/browse', { path: m.path }), class: 'name dir', 'data-k': 'path' },
                        m.path,
                      ),
                      h('div', { class: 'sub' }, `mount ${m.mountId} · ${formatTime(m.createdAtMs)}`),
                    ),
                },
                { label: 'UFS', cell: (m) => h('span', { class: 'mono ufs', 'data-k': 'uri' }, m.uri) },
                { label: 'Options', cell: (m) => options(m.options) },
                {
                  label: 'Write type',
                  cell: (m) =>
                    h(
                      'div',
                      null,
                      h('span', { 'data-k': 'write-type' }, m.writeType),
                      m.readOnly ? h('div', { class: 'sub', 'data-k': 'read-only' }, 'read-only UFS') : null,
                    ),
                },
                {
                  label: 'TTL',
                  cell: (m) =>
                    h(
                      'span',
                      { 'data-k': 'ttl' },
                      m.ttlMs === 0 ? 'none' : `${formatDuration(m.ttlMs)}, then ${m.ttlAction}`,
                    ),
                },
                {
                  label: 'Auto-cache',
                  cell: (m) =>
                    h(
                      'div',
                      null,
                      h('span', { 'data-k': 'auto-cache' }, m.autoCache ? 'yes' : 'no'),
                      m.readVerifyUfs
                        ? h('div', { class: 'sub', 'data-k': 'verify' }, 'verifies the UFS on open')
                        : null,
                    ),
                },
                {
                  label: 'Replicas',
                  class: 'num',
                  cell: (m) =>
                    h('span', { 'data-k': 'replicas' }, m.replicas === 0 ? 'default' : String(m.replicas)),
                },
                {
                  label: 'Block size',
                  cell: (m) =>
                    h(
                      'span',
                      { 'data-k': 'block' },
                      `${m.blockSize === 0 ? 'default' : formatBytes(m.blockSize)}${m.storageType === undefined ? '' : ` · ${m.storageType}`}`,
                    ),
                },
              ],
              r.mounts,
              (m) => ({ 'data-mount': m.path }),
            ),
            r.total > MOUNTS_PAGE || offset > 0 ? pager() : null,
          ],
    );
  },
};

/** key = value lines; a value the master masked reads "*** (secret)", as on the Config page. */
function options(o: Record<string, string>): HTMLElement | string {
  const keys = Object.keys(o).sort();
  if (keys.length === 0) return h('span', { class: 'muted', 'data-k': 'options' }, 'none');
  return h(
    'ul',
    { class: 'options', 'data-k': 'options' },
    keys.map((k) =>
      h(
        'li',
        { 'data-option': k },
        h('span', { class: 'mono' }, k),
        ' = ',
        o[k] === MASKED
          ? h(
              'span',
              { class: 'secret', 'data-k': 'option-value', title: 'masked by the master' },
              '*** (secret)',
            )
          : h('span', { class: 'mono', 'data-k': 'option-value' }, o[k] ?? ''),
      ),
    ),
  );
}
