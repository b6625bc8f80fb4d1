/** Metrics: the last hour from the master's in-memory history (throughput, operations, hit ratios). */
import type { History } from '../api.js';
import { getJson } from '../api.js';
import type { Page } from '../app.js';
import { lineChart } from '../chart.js';
import type { Series } from '../chart.js';
import { h } from '../dom.js';
import { formatCount, formatOps, formatPercent, formatRate } from '../format.js';
import { card } from '../widgets.js';

/** Shortest x axis: a few points are not stretched over the whole width. */
const MIN_SPAN_MS = 5 * 60 * 1000;

/** Rounds a span up to 5, 10, 15, 30 or 60 minutes. */
function niceMinutes(ms: number): number {
  for (const m of [5, 10, 15, 30, 60]) if (ms <= m * 60_000) return m * 60_000;
  return 60 * 60_000;
}

export const metricsPage: Page = {
  id: 'metrics',
  title: 'Metrics',
  auto: true,
  async load() {
    const hist = await getJson<History>('/api/metrics/history');
    const times = hist.samples.map((s) => s.tMs);
    const now = Date.now();
    // The x axis covers the history there is (at least MIN_SPAN_MS), up to the whole window.
    const first = times[0] ?? now;
    const spanMs = Math.min(hist.capacity * hist.intervalMs, Math.max(MIN_SPAN_MS, niceMinutes(now - first)));
    const last = hist.samples[hist.samples.length - 1];
    const chart = (
      title: string,
      series: Series[],
      format: (v: number) => string,
      axis: { yMax?: number; yFloor?: number } = {},
    ): HTMLElement => {
      const box = h('div', { class: 'chart-box', 'data-chart': title });
      // Drawn once the box is in the page, at its real width.
      requestAnimationFrame(() => lineChart(box, { times, series, format, spanMs, nowMs: now, ...axis }));
      return card(title, box);
    };
    const pct = (v: number): string => formatPercent(v);
    return h(
      'div',
      { class: 'page metrics' },
      h(
        'p',
        { class: 'summary', 'data-k': 'range-summary' },
        hist.samples.length === 0
          ? `Collecting: the first point appears ${Math.round(hist.intervalMs / 1000)} s after the master starts.`
          : `${formatCount(hist.samples.length)} samples every ${Math.round(hist.intervalMs / 1000)} s` +
              (last === undefined
                ? ''
                : ` · workers answering: ${last.workersScraped} of ${last.workersAsked}`),
      ),
      h(
        'div',
        { class: 'charts' },
        chart(
          'Throughput',
          [
            { name: 'read', cls: 's1', values: hist.samples.map((s) => s.readBytesPerSec) },
            { name: 'write', cls: 's2', values: hist.samples.map((s) => s.writeBytesPerSec) },
            { name: 'replication', cls: 's3', values: hist.samples.map((s) => s.replicationBytesPerSec) },
          ],
          formatRate,
          { yFloor: 1024 },
        ),
        chart(
          'Operations per second',
          [
            { name: 'metadata ops', cls: 's1', values: hist.samples.map((s) => s.opsPerSec) },
            { name: 'errors', cls: 's4', values: hist.samples.map((s) => s.errorsPerSec) },
            { name: 'worker calls', cls: 's3', values: hist.samples.map((s) => s.workerCallsPerSec) },
          ],
          formatOps,
        ),
        chart(
          'Hit ratio',
          [
            { name: 'data (blocks in cache)', cls: 's1', values: hist.samples.map((s) => s.hitRatio) },
            { name: 'metadata cache', cls: 's2', values: hist.samples.map((s) => s.metaHitRatio) },
          ],
          pct,
          { yMax: 1 },
        ),
      ),
    );
  },
};
