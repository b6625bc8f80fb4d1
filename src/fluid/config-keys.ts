/**
 * Fluid hands engine settings over as flat string maps (`CacheRuntime.spec.worker.options`,
 * `Dataset.spec.mounts[].options`, ThinRuntime FUSE options). This module finds which key of
 * `strata-cluster.toml` such an option names and turns its string into the type that key holds,
 * by reading the configuration schema itself, so a new config key works as a Fluid option with
 * no change here.
 */
import type { z } from 'zod';
import { clusterConfigSchema, parseEndpoints } from '../common/config/index.js';
import { unwrapSchema, zodDef } from '../common/config/zod-introspect.js';

/** What a configuration key holds, as far as converting an option string goes. */
export type KeyKind =
  | 'string' // stored as written
  | 'number'
  | 'boolean'
  | 'text' // a size, duration or data_dir: the schema parses the string itself
  | 'list' // an array of strings, written comma-joined
  | 'addrs' // [[client.master_addrs]], written "host:port,host:port"
  | 'section'; // a table: not settable as one option

function shapeOf(s: z.ZodType): Record<string, z.ZodType> | undefined {
  return zodDef(s).type === 'object'
    ? (s as unknown as { shape: Record<string, z.ZodType> }).shape
    : undefined;
}

function kindOf(s: z.ZodType): KeyKind {
  const d = zodDef(s);
  switch (d.type) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'section';
    case 'union':
      return 'text';
    case 'array': {
      const el = d.element === undefined ? undefined : unwrapSchema(d.element);
      return el !== undefined && zodDef(el).type === 'object' ? 'addrs' : 'list';
    }
    default:
      return 'string';
  }
}

/** The kind of a dotted key (`worker.dir_reserved`), or undefined when no such key exists. */
export function configKeyKind(path: readonly string[]): KeyKind | undefined {
  let cur: z.ZodType = clusterConfigSchema;
  for (const part of path) {
    const shape = shapeOf(unwrapSchema(cur));
    const next = shape?.[part];
    if (next === undefined) return undefined;
    cur = next;
  }
  return path.length === 0 ? 'section' : kindOf(unwrapSchema(cur));
}

/** Every settable dotted key of the configuration, for "did you mean" suggestions. */
export function allConfigKeys(): string[] {
  const out: string[] = [];
  const walk = (s: z.ZodType, prefix: string): void => {
    const shape = shapeOf(unwrapSchema(s));
    if (shape === undefined) {
      out.push(prefix);
      return;
    }
    for (const [k, v] of Object.entries(shape)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
  };
  walk(clusterConfigSchema, '');
  return out;
}

/** Which sections an unqualified option key is looked up in, per Fluid component. */
export type OptionScope = 'master' | 'worker' | 'client' | 'fuse';

const SCOPE_SECTIONS: Readonly<Record<OptionScope, readonly string[]>> = {
  master: ['master'],
  worker: ['worker'],
  // Fluid's CacheRuntime "client" is the FUSE mount; its options are FUSE or client settings.
  client: ['fuse', 'client'],
  fuse: ['fuse', 'client'],
};

/**
 * Resolves an option key to a configuration key path. Hyphens read as underscores
 * (`io-threads` = `io_threads`); a dotted key (`client.block_size`) is taken as written; a bare
 * key is looked up in the component's sections, then among the top-level keys (`cluster_id`).
 */
export function resolveOptionKey(
  scope: OptionScope,
  key: string,
): { path: string[]; kind: KeyKind } | undefined {
  const norm = key.trim().replaceAll('-', '_');
  if (norm === '') return undefined;
  if (norm.includes('.')) {
    const path = norm.split('.');
    const kind = configKeyKind(path);
    return kind === undefined ? undefined : { path, kind };
  }
  for (const section of SCOPE_SECTIONS[scope]) {
    const kind = configKeyKind([section, norm]);
    if (kind !== undefined) return { path: [section, norm], kind };
  }
  const top = configKeyKind([norm]);
  return top === undefined || top === 'section' ? undefined : { path: [norm], kind: top };
}

export type Coerced = { ok: true; value: unknown } | { ok: false; message: string };

const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

/** Converts an option string to the value its key holds. */
export function coerceOption(kind: KeyKind, text: string): Coerced {
  const v = text.trim();
  switch (kind) {
    case 'string':
      return { ok: true, value: text };
    case 'text':
      // Sizes and durations take a bare number as bytes or milliseconds; write it as one.
      return { ok: true, value: /^\d+$/.test(v) ? Number(v) : v };
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(v)
        ? { ok: true, value: Number(v) }
        : { ok: false, message: 'expected a number' };
    case 'boolean':
      if (TRUE_WORDS.has(v.toLowerCase())) return { ok: true, value: true };
      if (FALSE_WORDS.has(v.toLowerCase())) return { ok: true, value: false };
      return { ok: false, message: 'expected true or false' };
    case 'list':
      return {
        ok: true,
        value: v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
    case 'addrs': {
      const addrs = parseEndpoints(v);
      return addrs === undefined
        ? { ok: false, message: 'expected "host:port" entries joined by commas' }
        : { ok: true, value: addrs };
    }
    case 'section':
      return { ok: false, message: 'names a whole section; set one of its keys instead' };
  }
}
