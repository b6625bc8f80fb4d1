/** Printing benchmark figures beside their references, with the ratio and the target. */

export interface Comparison {
  what: string;
  unit: string;
  ours: number;
  reference: number;
  referenceName: string;
  /** The ratio ours/reference we aim for; absent when the figure is reported without a target. */
  target?: number;
}

function fmt(v: number): string {
  if (v >= 1000) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function printComparisons(title: string, rows: readonly Comparison[]): void {
  const lines: string[][] = [['benchmark', 'strata', 'reference', 'ratio', 'target', '']];
  for (const r of rows) {
    const ratio = r.ours / r.reference;
    lines.push([
      r.what,
      `${fmt(r.ours)} ${r.unit}`,
      `${fmt(r.reference)} ${r.unit} (${r.referenceName})`,
      `${ratio.toFixed(2)}x`,
      r.target === undefined ? 'none' : `>= ${r.target}x`,
      r.target === undefined ? '' : ratio >= r.target ? 'met' : 'NOT MET',
    ]);
  }
  const widths = (lines[0] ?? []).map((_, i) => Math.max(...lines.map((l) => (l[i] ?? '').length)));
  console.log(`\n${title}`);
  for (const l of lines) console.log(l.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));
}

/** Best of several runs: benchmarks on a shared machine are noisy downwards, rarely upwards. */
export function best(values: readonly number[]): number {
  return Math.max(...values);
}
