/**
 * Schemas of the JSON Fluid writes into a runtime's ConfigMap: the pieces the ThinRuntime
 * `config.json` and the CacheRuntime `runtime.json` share (mounts, access modes), validated
 * with messages that say what is expected. Unknown fields are kept out of the way, not refused:
 * Fluid adds fields between releases.
 */
import { z } from 'zod';

/** Option maps are strings in Fluid's Go types; a hand-written file may hold numbers or booleans. */
export const optionMap = z
  .record(
    z.string(),
    z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string value' }).transform(String),
    { error: 'expected an object of string options' },
  )
  .optional()
  .transform((o) => o ?? {});

export const ACCESS_MODES = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'] as const;

export const accessModes = z
  .array(z.enum(ACCESS_MODES, { error: `expected one of ${ACCESS_MODES.join(', ')}` }), {
    error: 'expected a list of access modes',
  })
  .optional();

export const fluidMount = z.object({
  mountPoint: z
    .string({ error: 'expected a string such as "s3://bucket/dir"' })
    .min(1, { error: 'must not be empty' }),
  name: z.string({ error: 'expected a string' }).optional(),
  path: z.string({ error: 'expected an absolute path string' }).optional(),
  options: optionMap,
  /** CacheRuntime: option name → secret file path. (ThinRuntime folds these into `options`.) */
  encryptOptions: z
    .record(z.string(), z.string({ error: 'expected a secret file path' }), {
      error: 'expected an object of option name to secret file path',
    })
    .optional()
    .transform((o) => o ?? {}),
  readOnly: z.boolean({ error: 'expected true or false' }).optional(),
  shared: z.boolean({ error: 'expected true or false' }).optional(),
});

export type FluidMount = z.output<typeof fluidMount>;

/** Whether the dataset may be written: Fluid defaults access modes to ReadOnlyMany. */
export function isReadOnly(modes: readonly string[] | undefined): boolean {
  const list = modes === undefined || modes.length === 0 ? ['ReadOnlyMany'] : modes;
  return list.every((m) => m === 'ReadOnlyMany');
}

/**
 * Where a mount appears in the unified namespace, as Fluid computes it for the mount hook's
 * answer: its `path`, else `/<name>`.
 */
export function unifiedPath(m: Pick<FluidMount, 'path' | 'name'>): string | undefined {
  if (m.path !== undefined && m.path !== '') return m.path;
  if (m.name !== undefined && m.name !== '') return `/${m.name}`;
  return undefined;
}

/** Fluid's own schemes, which are not UFS mounts (`local://`, `pvc://`). */
export function isFluidNativeScheme(mountPoint: string): boolean {
  return mountPoint.startsWith('local://') || mountPoint.startsWith('pvc://');
}
