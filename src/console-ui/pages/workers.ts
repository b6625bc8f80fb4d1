/** Workers: state, tiers with usage against their watermarks, heartbeats, blocks, decommission. */
import type { WorkerInfo } from '../api.js';
import { getJson } from '../api.js';
import { runAction } from '../admin.js';
import type { Ctx, Page } from '../app.js';
import { h } from '../dom.js';
import { formatAgo, formatBytes, formatCount, formatPercent, formatTime, ratio } from '../format.js';
import { badge, empty, table, usageBar } from '../widgets.js';

export const workersPage: Page = {
  id: 'workers',
  title: 'Workers',
  auto: true,
  async load(ctx) {
    const { workers } = await getJson<{ workers: WorkerInfo[] }>('/api/workers');
    const now = Date.now();
    const byState = new Map<string, number>();
    for (const w of workers) byState.set(w.state, (byState.get(w.state) ?? 0) + 1);
    const summary = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
    const sorted = [...workers].sort((a, b) => addr(a).localeCompare(addr(b), 'en', { numeric: true }));
    return h(
      'div',
      { class: 'page workers' },
      h(
        'p',
        { class: 'summary' },
        h('span', { 'data-k': 'worker-count' }, formatCount(workers.length)),
        ` worker${workers.length === 1 ? '' : 's'}${summary === '' ? '' : `: ${summary}`}`,
      ),
      workers.length === 0
        ? empty('No worker has registered with this master.')
        : table(
            [
              {
                label: 'Worker',
                cell: (w) =>
                  h(
                    'div',
                    null,
                    h('div', { class: 'mono', 'data-k': 'address' }, addr(w)),
                    h(
                      'div',
                      { class: 'sub mono', title: w.address.workerId },
                      w.address.workerId.slice(0, 8),
                      ` · v${w.version}`,
                    ),
                  ),
              },
              { label: 'State', cell: (w) => badge(w.state, { 'data-k': 'state' }) },
              { label: 'Tiers', cell: (w) => tiers(w), class: 'tiers-cell' },
              {
                label: 'Used',
                class: 'num',
                cell: (w) =>
                  h(
                    'div',
                    null,
                    h('span', { 'data-k': 'used' }, formatBytes(w.usedBytes)),
                    h(
                      'div',
                      { class: 'sub' },
                      'of ',
                      h('span', { 'data-k': 'capacity' }, formatBytes(w.capacityBytes)),
                      // A lost worker's figures are from its last heartbeat; the master has
                      // already dropped its block copies (Blocks 0), so say which is which.
                      w.state === 'lost' ? h('span', { 'data-k': 'stale' }, ' · last reported') : null,
                    ),
                  ),
              },
              {
                label: 'Blocks',
                class: 'num',
                cell: (w) => h('span', { 'data-k': 'blocks' }, formatCount(w.blocks)),
              },
              {
                label: 'Last heartbeat',
                cell: (w) =>
                  h(
                    'span',
                    {
                      'data-k': 'heartbeat',
                      'data-ms': w.lastHeartbeatMs,
                      title: formatTime(w.lastHeartbeatMs),
                    },
                    formatAgo(w.lastHeartbeatMs, now),
                  ),
              },
              { label: 'Actions', cell: (w) => actions(ctx, w) },
            ],
            sorted,
            (w) => ({ 'data-worker-id': w.address.workerId }),
          ),
    );
  },
};

function addr(w: WorkerInfo): string {
  return `${w.address.hostname}:${w.address.rpcPort}`;
}

function tiers(w: WorkerInfo): HTMLElement {
  return h(
    'div',
    { class: 'tiers' },
    w.tiers.map((t) =>
      h(
        'div',
        { class: 'tier', 'data-tier': t.storageType, title: t.dir },
        h('span', { class: 'tier-type' }, t.storageType),
        usageBar({
          usedBytes: t.usedBytes,
          capacityBytes: t.capacityBytes,
          high: t.highWatermark,
          label: `${t.storageType} used`,
        }),
        h(
          'span',
          { class: 'tier-figures' },
          h('span', { 'data-k': 'tier-used' }, formatBytes(t.usedBytes)),
          ' / ',
          h('span', { 'data-k': 'tier-capacity' }, formatBytes(t.capacityBytes)),
          ` · ${formatPercent(ratio(t.usedBytes, t.capacityBytes))}`,
        ),
      ),
    ),
  );
}

function actions(ctx: Ctx, w: WorkerInfo): HTMLElement | string {
  if (w.state === 'lost' || w.state === 'decommissioning' || w.state === 'decommissioned') return '—';
  const enabled = ctx.info.actionsEnabled;
  return h(
    'button',
    {
      type: 'button',
      class: 'danger small',
      'data-k': 'decommission',
      disabled: !enabled,
      title: enabled
        ? 'Stop placing blocks here and copy its blocks to other workers'
        : 'Read-only console: set master.admin_token on the master to enable actions',
      onclick: () => {
        void runAction(ctx, {
          title: `Decommission worker ${addr(w)}?`,
          detail:
            'New blocks stop going to this worker and every block it holds is copied to other workers. ' +
            'The console cannot undo this; the worker rejoins only after it is restarted with a new identity.',
          confirm: 'Decommission',
          path: '/api/workers/decommission',
          body: { worker: w.address.workerId },
          done: `Worker ${addr(w)} is decommissioning.`,
        });
      },
    },
    'Decommission',
  );
}
