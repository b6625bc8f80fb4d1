/**
 * Where an upload's time goes, from the processes' own histograms: the gateway's upload phases
 * and the master calls it made (as its client saw them: the worker calls have no client-side
 * histogram), and the same calls as the master and the
 * worker served them. Snapshots of `/metrics` are taken before and after a step; the report is
 * the mean time per call in that step (histogram sum / count of the difference).
 */

/** Histograms read: [process, metric, label that names the series]. */
const SOURCES = [
  ['gateway', 'strata_s3_upload_phase_seconds', 'phase'],
  ['gateway', 'strata_s3_get_phase_seconds', 'phase'],
  ['gateway', 'strata_s3_request_seconds', 'op'],
  ['gateway', 'strata_client_master_call_seconds', 'call'],
  ['master', 'strata_rpc_server_request_duration_seconds', 'call'],
  ['worker', 'strata_rpc_server_request_duration_seconds', 'call'],
] as const;

export type ProcessName = (typeof SOURCES)[number][0];

/** `process metric label` → { sum, count }; `process cpu` → { sum: CPU seconds (all threads), count: 0 }. */
export type Snapshot = Map<string, { sum: number; count: number }>;

/** The key of a process's CPU seconds (user + system, all threads: prom-client's process_cpu_seconds_total). */
export function cpuKey(proc: ProcessName): string {
  return `${proc} cpu`;
}

export async function snapshot(metricsUrls: Readonly<Record<ProcessName, string>>): Promise<Snapshot> {
  const out: Snapshot = new Map();
  const texts = new Map<ProcessName, string>();
  for (const [proc, url] of Object.entries(metricsUrls) as [ProcessName, string][]) {
    const res = await fetch(url);
    texts.set(proc, await res.text());
  }
  for (const [proc, text] of texts) {
    const cpu = /^process_cpu_seconds_total(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1];
    if (cpu !== undefined) out.set(cpuKey(proc), { sum: Number(cpu), count: 0 });
  }
  for (const [proc, metric, label] of SOURCES) {
    const text = texts.get(proc) ?? '';
    // e.g. strata_s3_upload_phase_seconds_sum{phase="close"} 1.25
    const re = new RegExp(`^${metric}_(sum|count)\\{([^}]*)\\} (\\S+)$`, 'gm');
    for (const m of text.matchAll(re)) {
      const value = new RegExp(`${label}="([^"]*)"`).exec(m[2] ?? '')?.[1];
      if (value === undefined) continue;
      const key = `${proc} ${metric} ${value}`;
      const e = out.get(key) ?? { sum: 0, count: 0 };
      if (m[1] === 'sum') e.sum += Number(m[3]);
      else e.count += Number(m[3]);
      out.set(key, e);
    }
  }
  return out;
}

/** Mean milliseconds per call between two snapshots, one line per series with calls in it. */
export function formatSplit(title: string, before: Snapshot, after: Snapshot): string {
  const lines = [`${title} (mean ms per call; calls)`];
  const short: Record<string, string> = {
    strata_s3_upload_phase_seconds: 'upload phase',
    strata_s3_get_phase_seconds: 'get phase',
    strata_s3_request_seconds: 'request',
    strata_client_master_call_seconds: 'rpc as called',
    strata_rpc_server_request_duration_seconds: 'rpc as served',
  };
  for (const [key, a] of after) {
    const b = before.get(key) ?? { sum: 0, count: 0 };
    const count = a.count - b.count;
    if (count <= 0) continue;
    const [proc, metric, value] = key.split(' ') as [string, string, string];
    const meanMs = ((a.sum - b.sum) / count) * 1000;
    lines.push(
      `  ${proc.padEnd(8)} ${(short[metric] ?? metric).padEnd(14)} ${value.padEnd(28)} ${meanMs.toFixed(2).padStart(9)} ms  ×${count}`,
    );
  }
  return lines.join('\n');
}
