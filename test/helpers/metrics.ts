/** A metric's value in Prometheus text (first sample matching name and label fragment). */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith('{') || rest.startsWith(' '))) continue;
    if (labels !== '' && !rest.includes(labels)) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) return v;
  }
  return undefined;
}

/** One sample of a process's /metrics on `webPort` (0 when absent: counters not yet touched). */
export async function scrapeMetric(webPort: number, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${webPort}/metrics`)).text();
  return metricValue(text, name, labels) ?? 0;
}
