/**
 * Line charts as SVG, drawn at the container's pixel width (so text is never stretched) and
 * redrawn on every refresh. A null value breaks the line: "no data then" is not drawn as zero.
 */
import { h, s } from './dom.js';

export interface Series {
  name: string;
  /** CSS class of the line and its legend swatch (s1, s2, s3). */
  cls: string;
  values: (number | null)[];
}

export interface ChartOptions {
  times: number[];
  series: Series[];
  format: (v: number) => string;
  /** Fixed top of the y axis (1 for ratios); otherwise from the data. */
  yMax?: number;
  /** Smallest top of a data-driven y axis (1 KiB/s for byte rates: "0.5 B/s" is noise). */
  yFloor?: number;
  /** Span of the x axis in ms, ending now (the history window). */
  spanMs: number;
  nowMs: number;
  height?: number;
}

const PAD = { left: 64, right: 12, top: 10, bottom: 24 };

export function lineChart(container: HTMLElement, o: ChartOptions): void {
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const height = o.height ?? 180;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  let max = o.yMax ?? 0;
  if (o.yMax === undefined) {
    for (const sr of o.series) for (const v of sr.values) if (v !== null && v > max) max = v;
    max = niceCeil(Math.max(max, o.yFloor ?? 0));
  }
  const t0 = o.nowMs - o.spanMs;
  const x = (t: number): number => PAD.left + ((t - t0) / o.spanMs) * plotW;
  const y = (v: number): number => PAD.top + plotH - (max === 0 ? 0 : (v / max) * plotH);

  const svg = s('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': o.series.map((sr) => sr.name).join(', '),
  });
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    const yy = y(v);
    svg.appendChild(s('line', { x1: PAD.left, x2: width - PAD.right, y1: yy, y2: yy, class: 'gridline' }));
    svg.appendChild(
      s('text', { x: PAD.left - 6, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, o.format(v)),
    );
  }
  const minutes = Math.round(o.spanMs / 60_000);
  for (const frac of [0, 0.5, 1]) {
    const ago = minutes * (1 - frac);
    const label = frac === 1 ? 'now' : `−${Number.isInteger(ago) ? ago : ago.toFixed(1)} min`;
    const anchor = frac === 0 ? 'start' : frac === 1 ? 'end' : 'middle';
    svg.appendChild(
      s('text', { x: PAD.left + plotW * frac, y: height - 6, class: 'axis', 'text-anchor': anchor }, label),
    );
  }
  for (const sr of o.series) {
    let d = '';
    let pen = false;
    sr.values.forEach((v, i) => {
      const t = o.times[i];
      if (v === null || t === undefined || t < t0) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(Math.min(v, max)).toFixed(1)}`;
      pen = true;
    });
    if (d !== '') svg.appendChild(s('path', { d, class: `line ${sr.cls}` }));
  }
  const legend = h(
    'div',
    { class: 'legend' },
    o.series.map((sr) => {
      const last = [...sr.values].reverse().find((v) => v !== null);
      return h(
        'span',
        { class: 'legend-item' },
        h('span', { class: `swatch ${sr.cls}` }),
        `${sr.name} `,
        h('b', { 'data-k': `last-${sr.cls}` }, last === undefined || last === null ? '—' : o.format(last)),
      );
    }),
  );
  container.replaceChildren(legend, svg);
}

/** 1, 2, 5 × 10^n at or above v (at least 1). */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
