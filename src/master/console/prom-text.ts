/**
 * A reader of the Prometheus text exposition format (version 0.0.4), enough for what the console
 * needs from a worker's `/metrics`: sample names, labels and values, and the declared families
 * (`# TYPE`) so a histogram's `_bucket`/`_sum`/`_count` are known even before it has samples.
 * Malformed lines are skipped, never thrown: a scrape is advisory and one bad line must not hide
 * the rest.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromExposition {
  samples: PromSample[];
  /** Family name → type from `# TYPE` lines. */
  types: Map<string, string>;
}

/** Longest line considered; longer ones are skipped (a label value gone wild). */
export const MAX_PROM_LINE_CHARS = 64 * 1024;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function parsePromText(text: string): PromExposition {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.length > MAX_PROM_LINE_CHARS) continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)/.exec(line);
      if (m !== null) types.set(m[1] as string, m[2] as string);
      continue;
    }
    const sample = parseSampleLine(line);
    if (sample !== undefined) samples.push(sample);
  }
  return { samples, types };
}

/** Every sample name a scrape may show: declared families with their histogram/summary suffixes, and sample names. */
export function exportedNames(e: PromExposition): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of e.types) {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  for (const s of e.samples) names.add(s.name);
  return names;
}

function parseSampleLine(line: string): PromSample | undefined {
  const nameMatch = NAME_RE.exec(line);
  if (nameMatch === null) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const key = NAME_RE.exec(line.slice(i));
      if (key === null) return undefined;
      i += key[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') return undefined;
      i += 2;
      let value = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) return undefined;
        if (c === '"') break;
        if (c === '\\') {
          const n = line[i + 1];
          value += n === 'n' ? '\n' : (n ?? '');
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      labels[key[0]] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (value === undefined) return undefined;
  return { name, labels, value };
}

function parseValue(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const v = Number(text);
  return Number.isNaN(v) ? undefined : v;
}

/** Sum of the samples named `name` whose labels match every entry of `where` (a value list = any of). */
export function sumSamples(
  samples: readonly PromSample[],
  name: string,
  where: Record<string, string | readonly string[]> = {},
): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    let ok = true;
    for (const [k, want] of Object.entries(where)) {
      const have = s.labels[k];
      if (typeof want === 'string' ? have !== want : have === undefined || !want.includes(have)) {
        ok = false;
        break;
      }
    }
    if (ok && Number.isFinite(s.value)) total += s.value;
  }
  return total;
}
