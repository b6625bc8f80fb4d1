/**
 * The metric names a PromQL expression reads, for checking dashboards and alert rules against
 * what the processes export. A small lexer, not a parser: it skips strings, label matchers
 * `{…}`, ranges `[…]`, numbers and durations, Grafana variables (`$x`, `${x}`), functions and
 * aggregations (an identifier followed by `(`), keywords, and the label lists after
 * by/without/on/ignoring/group_left/group_right. What is left are metric names.
 */

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'atan2',
  'inf',
  'nan',
  'start',
  'end',
]);
/** Aggregation operators: followed by `(` or by a by/without clause, never metrics. */
const AGGREGATORS = new Set([
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
  'limitk',
  'limit_ratio',
]);
const LABEL_LIST_AFTER = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

export function metricNames(expr: string): string[] {
  const names: string[] = [];
  let i = 0;
  let prevWord = '';
  const skipTo = (close: string): void => {
    // Skips a bracketed region with quoted strings inside.
    const open = expr[i];
    let depth = 0;
    while (i < expr.length) {
      const c = expr[i];
      if (c === '"' || c === "'" || c === '`') {
        skipString();
        continue;
      }
      if (c === open) depth++;
      else if (c === close) {
        depth--;
        if (depth === 0) {
          i++;
          return;
        }
      }
      i++;
    }
    throw new Error(`unbalanced ${open} in: ${expr}`);
  };
  const skipString = (): void => {
    const q = expr[i];
    i++;
    while (i < expr.length && expr[i] !== q) i += expr[i] === '\\' ? 2 : 1;
    if (i >= expr.length) throw new Error(`unterminated string in: ${expr}`);
    i++;
  };
  while (i < expr.length) {
    const c = expr[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') {
      skipString();
      continue;
    }
    if (c === '{') {
      skipTo('}');
      continue;
    }
    if (c === '[') {
      skipTo(']');
      continue;
    }
    if (c === '$') {
      i++;
      if (expr[i] === '{') skipTo('}');
      else while (i < expr.length && /[A-Za-z0-9_]/.test(expr[i] as string)) i++;
      continue;
    }
    if (c === '(' && LABEL_LIST_AFTER.has(prevWord)) {
      skipTo(')');
      prevWord = '';
      continue;
    }
    if (/[0-9.]/.test(c)) {
      // Numbers, durations (5m, 1h30m), scientific notation.
      while (i < expr.length && /[0-9a-zA-Z_.+]/.test(expr[i] as string)) {
        if ((expr[i] === '+' || expr[i] === '-') && !/[eE]/.test(expr[i - 1] as string)) break;
        i++;
      }
      prevWord = '';
      continue;
    }
    const m = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i));
    if (m !== null) {
      const word = m[0];
      i += word.length;
      let j = i;
      while (j < expr.length && /\s/.test(expr[j] as string)) j++;
      const isCall = expr[j] === '(';
      const lower = word.toLowerCase();
      if (KEYWORDS.has(lower)) prevWord = lower;
      else if (AGGREGATORS.has(lower)) prevWord = '';
      else {
        if (!isCall) names.push(word);
        prevWord = '';
      }
      continue;
    }
    prevWord = c === ')' ? prevWord : '';
    i++;
  }
  return names;
}

/** Names read by a Grafana templating query: `label_values(selector, label)`, `query_result(expr)` or an expression. */
export function templateQueryNames(query: string): string[] {
  const lv = /^\s*label_values\(\s*(.*?)\s*(?:,\s*[A-Za-z_][A-Za-z0-9_]*\s*)?\)\s*$/s.exec(query);
  if (lv !== null) {
    const inner = lv[1] ?? '';
    // label_values(label) alone names no metric.
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(inner) && !query.includes(',') ? [] : metricNames(inner);
  }
  const qr = /^\s*query_result\((.*)\)\s*$/s.exec(query);
  if (qr !== null) return metricNames(qr[1] ?? '');
  if (/^\s*(label_names|metrics)\(/.test(query)) return [];
  return metricNames(query);
}
