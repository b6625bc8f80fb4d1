/** Small pieces the pages share: usage bars, state badges, stat tiles, tables that fold into cards on phones. */
import type { Child } from './dom.js';
import { h } from './dom.js';
import { href } from './app.js';
import { formatBytes, formatCount, formatPercent, ratio } from './format.js';

export interface UsageBarOptions {
  usedBytes: number;
  capacityBytes: number;
  /** Draws the high watermark as a tick and colours the bar past it. */
  high?: number;
  label?: string;
  /** "cached": a full bar is good news (drawn green), not a full disk. */
  kind?: 'usage' | 'cached';
}

/** A horizontal bar of used / capacity, with the high watermark marked. */
export function usageBar(o: UsageBarOptions): HTMLElement {
  const r = Math.min(1, ratio(o.usedBytes, o.capacityBytes));
  const level =
    o.kind === 'cached' ? 'cached' : o.high !== undefined && r > o.high ? 'over' : r > 0.9 ? 'warn' : 'ok';
  const fill = h('span', { class: `bar-fill ${level}` });
  fill.style.width = `${(r * 100).toFixed(2)}%`;
  const bar = h(
    'span',
    {
      class: 'bar',
      role: 'meter',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.round(r * 100),
      'aria-label': o.label ?? 'used',
      title: `${formatBytes(o.usedBytes)} of ${formatBytes(o.capacityBytes)} used (${formatPercent(r)})`,
    },
    fill,
  );
  if (o.high !== undefined) {
    const tick = h('span', { class: 'bar-high', title: `high watermark ${formatPercent(o.high)}` });
    tick.style.left = `${(o.high * 100).toFixed(2)}%`;
    bar.appendChild(tick);
  }
  return bar;
}

const STATE_CLASS: Readonly<Record<string, string>> = {
  live: 'good',
  blacklisted: 'warn',
  lost: 'bad',
  decommissioning: 'info',
  decommissioned: 'muted',
  leader: 'good',
  standby: 'muted',
  running: 'info',
  scanning: 'info',
  succeeded: 'good',
  completed: 'good',
  failed: 'bad',
  cancelled: 'muted',
  critical: 'bad',
  warning: 'warn',
  info: 'info',
};

export function badge(text: string, attrs: Record<string, string> = {}): HTMLElement {
  return h('span', { class: `badge ${STATE_CLASS[text] ?? 'muted'}`, ...attrs }, text);
}

/** A labelled figure: `key` names it for tests and scripts (data-k). */
export function stat(label: string, value: Child, key?: string, sub?: Child): HTMLElement {
  return h(
    'div',
    { class: 'stat' },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value', 'data-k': key }, value),
    sub === undefined ? null : h('div', { class: 'stat-sub' }, sub),
  );
}

export function card(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'card' }, h('h2', null, title), ...children);
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child;
  class?: string;
}

/** A table whose rows become labelled cards at phone width (CSS reads data-label). */
export function table<T>(
  cols: Column<T>[],
  rows: T[],
  rowAttrs?: (row: T) => Record<string, string>,
): HTMLElement {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'fold' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          cols.map((c) => h('th', { class: c.class }, c.label)),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((r) =>
          h(
            'tr',
            rowAttrs?.(r) ?? null,
            cols.map((c) => h('td', { class: c.class, 'data-label': c.label }, c.cell(r))),
          ),
        ),
      ),
    ),
  );
}

export function empty(text: string): HTMLElement {
  return h('p', { class: 'empty' }, text);
}

/** Where a page of an offset-paged list starts (`?offset=` in the route), checked. */
export function offsetParam(params: URLSearchParams, pageSize: number): number {
  const n = Number(params.get('offset') ?? '0');
  return Number.isSafeInteger(n) && n > 0 ? Math.floor(n / pageSize) * pageSize : 0;
}

/**
 * "Rows 101–200 of 1,234" with First / Previous / Next links, for lists the API serves a page at
 * a time by offset (mounts, jobs): the page never holds more than `pageSize` rows.
 */
export function offsetPager(o: {
  route: string;
  offset: number;
  shown: number;
  total: number;
  pageSize: number;
  noun: string;
}): HTMLElement {
  const link = (offset: number): string => href(o.route, offset === 0 ? {} : { offset: String(offset) });
  const range =
    o.shown === 0
      ? `No ${o.noun}`
      : `${o.noun[0]?.toUpperCase() ?? ''}${o.noun.slice(1)} ${formatCount(o.offset + 1)}–${formatCount(o.offset + o.shown)}`;
  const prev = Math.max(0, o.offset - o.pageSize);
  const next = o.offset + o.shown;
  return h(
    'div',
    { class: 'pager' },
    h('span', null, h('span', { 'data-k': 'range' }, range)),
    h('span', null, ' of ', h('span', { 'data-k': 'total' }, formatCount(o.total))),
    h(
      'span',
      { class: 'pager-buttons' },
      o.offset === 0 ? null : h('a', { class: 'button', href: link(0), 'data-k': 'first' }, 'First'),
      o.offset === 0 ? null : h('a', { class: 'button', href: link(prev), 'data-k': 'prev' }, '← Previous'),
      next >= o.total ? null : h('a', { class: 'button', href: link(next), 'data-k': 'next' }, 'Next →'),
    ),
  );
}

/** "3 / 10" with a bar, for a job's files or bytes done against the total found so far. */
export function progress(done: string, total: string, r: number, key: string): HTMLElement {
  const share = Math.min(1, Math.max(0, Number.isFinite(r) ? r : 0));
  const fill = h('span', { class: 'bar-fill cached' });
  fill.style.width = `${(share * 100).toFixed(2)}%`;
  const bar = h(
    'span',
    {
      class: 'bar',
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.round(share * 100),
      'aria-label': `${key} done`,
      title: `${done} of ${total} (${formatPercent(share)})`,
    },
    fill,
  );
  return h(
    'div',
    { class: 'progress', 'data-k': key },
    bar,
    h(
      'span',
      { class: 'progress-figures' },
      h('span', { 'data-k': `${key}-done` }, done),
      ' / ',
      h('span', { 'data-k': `${key}-total` }, total),
    ),
  );
}
