/**
 * The CacheRuntime configuration Fluid mounts into every component pod: `runtime.json` (current
 * Fluid) or the `config.json` an older development branch wrote (`topology.*.podConfigs`,
 * `worker.tieredStore[]`). Both are read into one shape, `RuntimeSpec`, so the derivation of each
 * role's configuration never looks at which one arrived.
 */
import { z } from 'zod';
import { ConfigError } from '../common/errors.js';
import { accessModes, fluidMount, optionMap } from './fluid-json.js';
import type { FluidMount } from './fluid-json.js';
import { zodProblems } from './inputs.js';

export interface TierLevelSpec {
  mountPaths: string[];
  /** As Fluid wrote it (MEM, SSD, HDD…); validated when deriving. */
  mediumType: string | undefined;
  quotas: string[];
  high: string | undefined;
  low: string | undefined;
  /** JSON path of the level, for messages. */
  where: string;
}

export interface ComponentSpec {
  name: string | undefined;
  options: Record<string, string>;
  replicas: number | undefined;
  serviceName: string | undefined;
  tiers: TierLevelSpec[];
  /** Legacy shape: explicit master pod addresses (`podName`, `podIP`, rpc port). */
  pods: { podName: string | undefined; podIP: string | undefined; rpcPort: number | undefined }[];
}

export interface RuntimeSpec {
  shape: 'runtime.json' | 'legacy config.json';
  mounts: FluidMount[];
  accessModes: string[] | undefined;
  targetPath: string | undefined;
  master: ComponentSpec | undefined;
  worker: ComponentSpec | undefined;
  client: ComponentSpec | undefined;
}

const replicas = z
  .number({ error: 'expected a whole number of replicas' })
  .int({ error: 'expected a whole number of replicas' })
  .min(0, { error: 'expected 0 or more replicas' })
  .optional();

const ratioText = z
  .union([z.string(), z.number()], { error: 'expected a fraction such as "0.8"' })
  .transform(String)
  .optional();

const tierLevel = z.object({
  mountPaths: z.array(z.string({ error: 'expected a path string' }), { error: 'expected a list of paths' }),
  mediumType: z.string({ error: 'expected MEM, SSD or HDD' }).optional(),
  quotas: z
    .array(z.union([z.string(), z.number()]).transform(String), { error: 'expected a list of quotas' })
    .optional()
    .transform((q) => q ?? []),
  high: ratioText,
  low: ratioText,
});

const component = z
  .object({
    enabled: z.boolean({ error: 'expected true or false' }).optional(),
    name: z.string({ error: 'expected a string' }).optional(),
    options: optionMap,
    replicas,
    service: z.object({ name: z.string({ error: 'expected a string' }).optional() }).optional(),
    tieredStoreLevels: z.array(tierLevel, { error: 'expected a list of tiered store levels' }).optional(),
  })
  .optional();

const runtimeJsonSchema = z.object(
  {
    mounts: z.array(fluidMount, { error: 'expected a list of mounts' }).optional(),
    accessModes,
    targetPath: z.string({ error: 'expected an absolute path string' }).optional(),
    master: component,
    worker: component,
    client: component,
  },
  { error: 'expected a JSON object' },
);

const podConfig = z.object({
  podName: z.string({ error: 'expected a string' }).optional(),
  podIP: z.string({ error: 'expected a string' }).optional(),
  hostIp: z.string({ error: 'expected a string' }).optional(),
  ports: z.record(z.string(), z.number({ error: 'expected a port number' })).optional(),
});

const legacyComponent = z
  .object({
    podConfigs: z.array(podConfig, { error: 'expected a list of pods' }).optional(),
    options: optionMap,
    serviceName: z.string({ error: 'expected a string' }).optional(),
    replicas,
  })
  .optional();

const legacySchema = z.object(
  {
    mounts: z.array(fluidMount, { error: 'expected a list of mounts' }).optional(),
    accessModes,
    targetPath: z.string({ error: 'expected an absolute path string' }).optional(),
    topology: z.object(
      { master: legacyComponent, worker: legacyComponent, client: legacyComponent },
      { error: 'expected an object with master, worker and client' },
    ),
    worker: z
      .object({
        tieredStore: z
          .array(
            z.object({
              cacheDir: z.string({ error: 'expected a path string' }),
              cacheCapacity: z.union([z.string(), z.number()]).transform(String).optional(),
              mediumType: z.string({ error: 'expected MEM, SSD or HDD' }).optional(),
              low: ratioText,
              high: ratioText,
            }),
            { error: 'expected a list of cache directories' },
          )
          .optional(),
      })
      .optional(),
  },
  { error: 'expected a JSON object' },
);

/** The legacy shape is recognised by its `topology` object. */
export function isLegacyShape(json: unknown): boolean {
  return typeof json === 'object' && json !== null && 'topology' in json;
}

export function parseRuntimeSpec(json: unknown, source: string): RuntimeSpec {
  if (isLegacyShape(json)) return parseLegacy(json, source);
  const r = runtimeJsonSchema.safeParse(json, { reportInput: true });
  if (!r.success) throw new ConfigError(zodProblems(r.error), source);
  const d = r.data;
  const comp = (c: z.output<typeof component>, key: string): ComponentSpec | undefined => {
    // A disabled component is absent in current Fluid; `enabled: false` is honoured all the same.
    if (c === undefined || c.enabled === false) return undefined;
    return {
      name: c.name,
      options: c.options,
      replicas: c.replicas,
      serviceName: c.service?.name === '' ? undefined : c.service?.name,
      tiers: (c.tieredStoreLevels ?? []).map((l, i) => ({
        mountPaths: l.mountPaths,
        mediumType: l.mediumType,
        quotas: l.quotas,
        high: l.high,
        low: l.low,
        where: `${key}.tieredStoreLevels[${i}]`,
      })),
      pods: [],
    };
  };
  return {
    shape: 'runtime.json',
    mounts: d.mounts ?? [],
    accessModes: d.accessModes,
    targetPath: d.targetPath,
    master: comp(d.master, 'master'),
    worker: comp(d.worker, 'worker'),
    client: comp(d.client, 'client'),
  };
}

function parseLegacy(json: unknown, source: string): RuntimeSpec {
  const r = legacySchema.safeParse(json, { reportInput: true });
  if (!r.success) throw new ConfigError(zodProblems(r.error), source);
  const d = r.data;
  const comp = (c: z.output<typeof legacyComponent>): ComponentSpec | undefined => {
    if (c === undefined) return undefined;
    return {
      name: undefined,
      options: c.options,
      replicas: c.replicas,
      serviceName: c.serviceName,
      tiers: [],
      pods: (c.podConfigs ?? []).map((p) => ({ podName: p.podName, podIP: p.podIP, rpcPort: p.ports?.rpc })),
    };
  };
  const worker = comp(d.topology.worker);
  if (worker !== undefined) {
    worker.tiers = (d.worker?.tieredStore ?? []).map((t, i) => ({
      mountPaths: [t.cacheDir],
      mediumType: t.mediumType,
      quotas: t.cacheCapacity === undefined ? [] : [t.cacheCapacity],
      high: t.high,
      low: t.low,
      where: `worker.tieredStore[${i}]`,
    }));
  }
  return {
    shape: 'legacy config.json',
    mounts: d.mounts ?? [],
    accessModes: d.accessModes,
    targetPath: d.targetPath,
    master: comp(d.topology.master),
    worker,
    client: comp(d.topology.client),
  };
}
