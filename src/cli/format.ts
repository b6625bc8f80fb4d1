/**
 * How client commands print things: permission strings, owners, sizes (exact or `-h`), times,
 * and aligned columns.
 */
import { readFileSync } from 'node:fs';
import type { FileStatus } from '../protocol/types.js';
import { formatBytes } from '../common/units.js';

/** `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`, with setuid/setgid/sticky as s/S, t/T. */
export function modeString(type: FileStatus['type'], mode: number): string {
  const kind = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  const bits = ['r', 'w', 'x'];
  let out = kind;
  for (let who = 2; who >= 0; who--) {
    for (let b = 2; b >= 0; b--) {
      const on = (mode & (1 << (who * 3 + b))) !== 0;
      out += on ? (bits[2 - b] as string) : '-';
    }
  }
  const chars = out.split('');
  const special = (idx: number, bit: number, lower: string, upper: string): void => {
    if ((mode & bit) !== 0) chars[idx] = chars[idx] === 'x' ? lower : upper;
  };
  special(3, 0o4000, 's', 'S');
  special(6, 0o2000, 's', 'S');
  special(9, 0o1000, 't', 'T');
  return chars.join('');
}

export function sizeText(bytes: number, human: boolean): string {
  return human ? formatBytes(bytes) : String(bytes);
}

/** "2025-03-04 10:11" in local time, like `ls -l --time-style=long-iso`. */
export function timeText(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Prints rows with columns padded to the widest cell; `right` columns are right-aligned. */
export function table(
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number> = new Set(),
): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    r
      .map((c, i) => {
        if (i === r.length - 1 && !right.has(i)) return c;
        const w = widths[i] ?? 0;
        return right.has(i) ? c.padStart(w) : c.padEnd(w);
      })
      .join('  '),
  );
}

// ---- user and group names (from /etc/passwd and /etc/group, like ls does via NSS files) ----

interface NameMaps {
  byId: Map<number, string>;
  byName: Map<string, number>;
}

const cache = new Map<string, NameMaps>();

function load(file: string): NameMaps {
  const hit = cache.get(file);
  if (hit !== undefined) return hit;
  const maps: NameMaps = { byId: new Map(), byName: new Map() };
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      const name = f[0];
      const id = Number(f[2]);
      if (name === undefined || name === '' || name.startsWith('#') || !Number.isInteger(id)) continue;
      if (!maps.byId.has(id)) maps.byId.set(id, name);
      maps.byName.set(name, id);
    }
  } catch {
    // No such file (a minimal container): numeric ids only.
  }
  cache.set(file, maps);
  return maps;
}

export function userName(uid: number): string {
  return load('/etc/passwd').byId.get(uid) ?? String(uid);
}

export function groupName(gid: number): string {
  return load('/etc/group').byId.get(gid) ?? String(gid);
}

/** A user name or number → uid; undefined when unknown. */
export function parseUser(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  return load('/etc/passwd').byName.get(text);
}

export function parseGroup(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text);
  return load('/etc/group').byName.get(text);
}
