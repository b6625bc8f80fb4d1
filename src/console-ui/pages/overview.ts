/** Overview: cluster identity and masters, alerts, capacity by tier, namespace counts, hit ratios. */
import type { Alert, History, MasterInfo, Overview } from '../api.js';
import { getJson } from '../api.js';
import type { Page } from '../app.js';
import { h } from '../dom.js';
import { formatBytes, formatCount, formatDuration, formatPercent, ratio } from '../format.js';
import { badge, card, stat, usageBar } from '../widgets.js';

/** The window of the data hit ratio figure (the same as the master's alert). */
const HIT_WINDOW_MS = 10 * 60 * 1000;

const WORKER_STATES = ['live', 'blacklisted', 'lost', 'decommissioning', 'decommissioned'] as const;

export const overviewPage: Page = {
  id: 'overview',
  title: 'Overview',
  auto: true,
  async load() {
    const [o, alerts, masters, history] = await Promise.all([
      getJson<Overview>('/api/overview'),
      getJson<{ alerts: Alert[] }>('/api/alerts'),
      getJson<{ masters: MasterInfo[] }>('/api/masters'),
      getJson<History>(`/api/metrics/history?sinceMs=${Date.now() - HIT_WINDOW_MS}`),
    ]);
    const leader = masters.masters.find((m) => m.role === 'leader');
    return h(
      'div',
      { class: 'page overview' },
      alertsCard(alerts.alerts),
      h(
        'div',
        { class: 'grid' },
        card(
          'Cluster',
          stat('Cluster id', o.clusterId, 'cluster-id'),
          stat('Leader', leader?.address ?? 'none', 'leader'),
          stat('Version', o.version, 'version'),
          stat('Up for', formatDuration(o.uptimeMs), 'uptime'),
          h(
            'ul',
            { class: 'masters', 'data-k': 'masters' },
            masters.masters.map((m) =>
              h(
                'li',
                { 'data-master': m.address },
                h('span', { class: 'mono' }, m.address),
                ' ',
                badge(m.role),
              ),
            ),
          ),
        ),
        card(
          'Workers',
          h(
            'div',
            { class: 'stats' },
            WORKER_STATES.map((s) =>
              stat(
                `${s[0]?.toUpperCase() ?? ''}${s.slice(1)}`,
                formatCount(o.workers[s] ?? 0),
                `workers-${s}`,
              ),
            ),
          ),
        ),
        card(
          'Namespace',
          h(
            'div',
            { class: 'stats' },
            stat('Files', formatCount(o.namespace.files), 'files'),
            stat('Directories', formatCount(o.namespace.dirs), 'dirs'),
            stat('Blocks', formatCount(o.namespace.blocks), 'blocks'),
            stat('Cached blocks', formatCount(o.cachedBlocks), 'cached-blocks'),
            stat('Block copies', formatCount(o.replicas), 'replicas'),
            stat('Open for writing', formatCount(o.leasesOpen), 'leases'),
          ),
        ),
        card('Cache hit ratio', ...hitRatios(o, history)),
      ),
      capacityCard(o),
    );
  },
};

function alertsCard(alerts: Alert[]): HTMLElement {
  if (alerts.length === 0)
    return h(
      'section',
      { class: 'alerts none', 'data-k': 'alerts' },
      h('span', { class: 'ok-dot' }),
      'No alerts',
    );
  return h(
    'section',
    { class: 'alerts', 'data-k': 'alerts' },
    h('h2', null, `Alerts (${alerts.length})`),
    h(
      'ul',
      null,
      alerts.map((a) =>
        h(
          'li',
          { class: `alert ${a.severity}`, 'data-alert': a.id },
          badge(a.severity),
          h('b', null, a.title),
          h('span', { class: 'alert-detail' }, a.detail),
        ),
      ),
    ),
  );
}

function capacityCard(o: Overview): HTMLElement {
  const row = (label: string, key: string, used: number, cap: number, avail: number): HTMLElement =>
    h(
      'div',
      { class: 'cap-row', 'data-tier': key },
      h('div', { class: 'cap-label' }, label),
      usageBar({ usedBytes: used, capacityBytes: cap, label: `${label} used` }),
      h(
        'div',
        { class: 'cap-figures' },
        h('span', { 'data-k': `used-${key}` }, formatBytes(used)),
        ' of ',
        h('span', { 'data-k': `capacity-${key}` }, formatBytes(cap)),
        ` (${formatPercent(ratio(used, cap))}) · `,
        h('span', { 'data-k': `available-${key}` }, formatBytes(avail)),
        ' available',
      ),
    );
  return card(
    'Capacity',
    row('All tiers', 'total', o.usedBytes, o.capacityBytes, o.availableBytes),
    o.tiers.map((t) => row(t.storageType, t.storageType, t.usedBytes, t.capacityBytes, t.availableBytes)),
    o.tiers.length === 0 ? h('p', { class: 'empty' }, 'No worker reports any tier.') : null,
  );
}

function hitRatios(o: Overview, history: History): HTMLElement[] {
  let hits = 0;
  let reads = 0;
  for (const s of history.samples) {
    if (s.hitRatio === null) continue;
    hits += s.hitRatio * s.blockReadsPerSec;
    reads += s.blockReadsPerSec;
  }
  const c = o.cache;
  const lookups = c.inodeHits + c.inodeMisses + c.dentryHits + c.dentryMisses;
  const metaRatio = lookups === 0 ? null : (c.inodeHits + c.dentryHits) / lookups;
  return [
    h(
      'div',
      { class: 'stats' },
      stat(
        'Data (last 10 min)',
        reads === 0 ? '—' : formatPercent(hits / reads),
        'hit-ratio',
        reads === 0 ? 'no reads of UFS-backed files' : 'block reads found in the cache',
      ),
      stat('Metadata cache', formatPercent(metaRatio), 'meta-hit-ratio', 'since the master started'),
    ),
  ];
}
