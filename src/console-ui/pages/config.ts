/** Config: the master's effective configuration by section, secrets as the master masked them. */
import { getJson } from '../api.js';
import type { Page } from '../app.js';
import { h } from '../dom.js';
import { formatBytes, formatDuration } from '../format.js';
import { card } from '../widgets.js';

/** The mask the master puts in place of a secret value. */
const MASK = '***';

export const configPage: Page = {
  id: 'config',
  title: 'Config',
  auto: false,
  async load() {
    const { config } = await getJson<{ config: Record<string, unknown> }>('/api/config');
    const top: [string, unknown][] = [];
    const sections: [string, Record<string, unknown>][] = [];
    for (const [k, v] of Object.entries(config)) {
      if (v !== null && typeof v === 'object' && !Array.isArray(v))
        sections.push([k, v as Record<string, unknown>]);
      else top.push([k, v]);
    }
    const filter = h('input', {
      type: 'search',
      placeholder: 'Filter keys',
      'aria-label': 'Filter keys',
      class: 'filter',
      'data-k': 'filter',
    });
    const cards = [
      card('(top level)', rows('', top)),
      ...sections.map(([name, sec]) => card(`[${name}]`, rows(name, flatten(sec)))),
    ];
    filter.addEventListener('input', () => {
      const q = filter.value.trim().toLowerCase();
      for (const tr of document.querySelectorAll<HTMLElement>('tr[data-key]'))
        tr.hidden = q !== '' && !(tr.dataset.key ?? '').toLowerCase().includes(q);
    });
    return h(
      'div',
      { class: 'page config' },
      h(
        'p',
        { class: 'summary' },
        'The effective configuration of this master (defaults filled in). ',
        filter,
      ),
      h('div', { class: 'grid wide' }, cards),
    );
  },
};

function flatten(obj: Record<string, unknown>, prefix = ''): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v))
      out.push(...flatten(v as Record<string, unknown>, key));
    else out.push([key, v]);
  }
  return out;
}

function rows(section: string, entries: [string, unknown][]): HTMLElement {
  return h(
    'table',
    { class: 'kv' },
    h(
      'tbody',
      null,
      entries.map(([k, v]) => {
        const full = section === '' ? k : `${section}.${k}`;
        return h(
          'tr',
          { 'data-key': full },
          h('th', { class: 'mono' }, k),
          h(
            'td',
            { class: 'mono' },
            h(
              'span',
              { 'data-k': `cfg:${full}` },
              v === MASK ? h('span', { class: 'secret' }, '*** (secret)') : show(v),
            ),
            hint(k, v),
          ),
        );
      }),
    ),
  );
}

/** Keys holding milliseconds and bytes (after parsing), shown with a readable form beside. */
const DURATION_KEY = /(interval|timeout|_ttl|^ttl|lease_ttl|_ms)$/;
const SIZE_KEY = /(size|chunk_size|read_ahead|max_write|reserved)$/;

function hint(key: string, v: unknown): HTMLElement | null {
  if (typeof v !== 'number' || v === 0) return null;
  const leaf = key.split('.').pop() ?? key;
  if (DURATION_KEY.test(leaf)) return h('span', { class: 'hint' }, ` (${formatDuration(v)})`);
  if (SIZE_KEY.test(leaf) && v >= 1024) return h('span', { class: 'hint' }, ` (${formatBytes(v)})`);
  return null;
}

function show(v: unknown): string {
  if (v === undefined) return '(unset)';
  if (typeof v === 'string') return v === '' ? '""' : v;
  return JSON.stringify(v);
}
