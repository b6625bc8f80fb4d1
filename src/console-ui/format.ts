/**
 * How the console writes numbers, shared with the tests that compare the page with the API.
 * Pure functions without DOM: bytes in binary units, counts with thousands separators, ratios
 * as percentages, times relative to now.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 1536 → "1.50 KiB": three significant digits from KiB up, whole bytes below. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  if (v < 1024) return `${sign}${Math.round(v)} B`;
  let u = 0;
  while (v >= 1024 && u < BYTE_UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  let text = threeDigits(v);
  // 1023.9 KiB rounds to "1024": say "1.00 MiB" instead.
  if (Number(text) >= 1024 && u < BYTE_UNITS.length - 1) {
    u++;
    text = threeDigits(v / 1024);
  }
  return `${sign}${text} ${BYTE_UNITS[u]}`;
}

/** 9.999 → "10.0", 1.5 → "1.50", 123.4 → "123": decimals chosen after rounding. */
function threeDigits(v: number): string {
  for (const digits of [2, 1]) {
    const text = v.toFixed(digits);
    if (Number(text) < 10 ** (3 - digits)) return text;
  }
  return v.toFixed(0);
}

export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

/** 10000 → "10,000". */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—';
}

/** Operations per second: one decimal below 100. */
export function formatOps(n: number): string {
  if (!Number.isFinite(n)) return '—';
  return n < 100 ? n.toFixed(1) : formatCount(n);
}

/** 0.4567 → "45.7%"; null → "—". */
export function formatPercent(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—';
  return `${(r * 100).toFixed(1)}%`;
}

/** A ratio of two byte counts, 0 when the whole is 0. */
export function ratio(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

/** 93_000 → "1 min 33 s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/** How long ago `thenMs` was, relative to `nowMs`: "just now", "12 s ago", "3 min ago". */
export function formatAgo(thenMs: number, nowMs: number): string {
  const d = nowMs - thenMs;
  if (!Number.isFinite(d)) return '—';
  if (d < 1000) return 'just now';
  const s = Math.floor(d / 1000);
  if (s < 120) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min ago`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ago`;
  return `${Math.floor(hr / 24)} d ago`;
}

/** "2025-01-02 03:04:05" in local time (the operator's clock). */
export function formatTime(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '—';
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Permission bits as ls shows them: 0o755 + dir → "drwxr-xr-x". */
export function formatMode(mode: number, type: 'file' | 'dir' | 'symlink'): string {
  const t = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  let out = t;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (mode >> shift) & 7;
    out += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return out;
}
