/**
 * Field builders for the configuration schema. Each builder carries its default and an error
 * message that says what is allowed, so a bad value is reported as
 * `master.rpc_port: expected a port number 0-65535 (got 70000)`.
 */
import { z } from 'zod';
import { DURATION_HELP, SIZE_HELP, parseDuration, parseSize } from '../units.js';

export function str(def: string) {
  return z.string({ error: 'expected a string' }).prefault(def);
}

export function optStr() {
  return z.string({ error: 'expected a string' }).optional();
}

export function bool(def: boolean) {
  return z.boolean({ error: 'expected true or false' }).prefault(def);
}

export function int(def: number, min: number, max: number, what = 'an integer') {
  const msg = `expected ${what} from ${min} to ${max}`;
  return z
    .number({ error: msg })
    .int({ error: msg })
    .min(min, { error: msg })
    .max(max, { error: msg })
    .prefault(def);
}

export function port(def: number) {
  return int(def, 0, 65535, 'a port number');
}

export function ratio(def: number) {
  const msg = 'expected a fraction greater than 0 and at most 1';
  return z.number({ error: msg }).gt(0, { error: msg }).max(1, { error: msg }).prefault(def);
}

/** A size in bytes after parsing ("128MB" → 134217728). `min`/`max` bound the parsed value. */
export function size(def: string | number, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z
    .union([z.string(), z.number()], { error: `expected ${SIZE_HELP}` })
    .prefault(def)
    .transform((v, ctx) => {
      const n = parseSize(v);
      if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected ${SIZE_HELP}`, input: v });
        return z.NEVER;
      }
      if (n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected a size from ${min} to ${max} bytes`, input: v });
        return z.NEVER;
      }
      return n;
    });
}

/** A duration in milliseconds after parsing ("3s" → 3000). */
export function duration(def: string | number, minMs = 0) {
  return z
    .union([z.string(), z.number()], { error: `expected ${DURATION_HELP}` })
    .prefault(def)
    .transform((v, ctx) => {
      const n = parseDuration(v);
      if (n === undefined) {
        ctx.addIssue({ code: 'custom', message: `expected ${DURATION_HELP}`, input: v });
        return z.NEVER;
      }
      if (n < minMs) {
        ctx.addIssue({ code: 'custom', message: `expected at least ${minMs} ms`, input: v });
        return z.NEVER;
      }
      return n;
    });
}

/** A case-insensitive choice; the parsed value is the canonical spelling from `values`. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  const allowed = values.join(', ');
  return z
    .string({ error: `expected one of ${allowed}` })
    .prefault(def)
    .transform((v, ctx): T[number] => {
      const hit = values.find((x) => x.toLowerCase() === v.toLowerCase());
      if (hit === undefined) {
        ctx.addIssue({ code: 'custom', message: `unknown value (expected one of ${allowed})`, input: v });
        return z.NEVER;
      }
      return hit;
    });
}
