/**
 * Reading a zod schema's structure (its wrappers, object shape, element type) for code that walks
 * the configuration schema: unknown-key warnings, environment overrides, Fluid's option names.
 * zod 4 keeps a schema's definition on `_zod.def`; only `type` and the wrapped schemas are read.
 */
import type { z } from 'zod';

export interface ZodDefLike {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  options?: z.ZodType[];
}

/** Wrappers peeled by `unwrapSchema` before it gives up (the schema nests a few at most). */
const MAX_WRAPPERS = 16;

export function zodDef(s: z.ZodType): ZodDefLike {
  return (s as unknown as { _zod: { def: ZodDefLike } })._zod.def;
}

/** The schema inside its defaults, optionals and transforms. */
export function unwrapSchema(s: z.ZodType): z.ZodType {
  let cur = s;
  for (let i = 0; i < MAX_WRAPPERS; i++) {
    const d = zodDef(cur);
    if ((d.type === 'prefault' || d.type === 'default' || d.type === 'optional') && d.innerType)
      cur = d.innerType;
    else if (d.type === 'pipe' && d.in) cur = d.in;
    else break;
  }
  return cur;
}
