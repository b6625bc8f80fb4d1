/**
 * The web console on the master's web port: the page and its assets (./pages.ts), the API
 * additions (./api.ts; mounts and load jobs in ./ufs-api.ts) and the metrics history sampler
 * (./sampler.ts). `mountConsole` wires them
 * onto the master's ops HTTP server; the returned handle stops the sampler when the master stops.
 */
import type { Registry } from 'prom-client';
import type { ClusterConfig } from '../../common/config/index.js';
import type { Logger } from '../../common/logging.js';
import type { OpsHttpServer } from '../../common/ops-http.js';
import type { MasterInfo } from '../../protocol/types.js';
import type { MasterCore } from '../core.js';
import { RecentIncreases } from './alerts.js';
import { addConsoleApi } from './api.js';
import { ConsoleAssets } from './assets.js';
import { addConsolePages } from './pages.js';
import { ConsoleSampler } from './sampler.js';
import type { SamplerOptions } from './sampler.js';
import { AdminGuard } from './security.js';
import { addUfsApi } from './ufs-api.js';

export { apiRoute } from './api.js';
export { setHardeningHeaders, AdminGuard } from './security.js';
export { ConsoleSampler } from './sampler.js';
export { ConsoleAssets } from './assets.js';

export interface ConsoleDeps {
  http: OpsHttpServer;
  /** The core of the current term; throws "not leader" on a standby (HA masters). */
  core: () => MasterCore;
  /** The masters and their roles. */
  masters: () => MasterInfo[];
  config: ClusterConfig;
  registry: Registry;
  log: Logger;
  rpcAddress: () => string;
  /** Test overrides of the sampler (interval, scrape function). */
  sampler?: Partial<Omit<SamplerOptions, 'registry' | 'targets' | 'log'>>;
  assets?: ConsoleAssets;
}

export interface ConsoleHandle {
  readonly sampler: ConsoleSampler;
  /** Starts sampling (once the master serves). */
  start(): void;
  stop(): Promise<void>;
}

export function mountConsole(d: ConsoleDeps): ConsoleHandle {
  const log = d.log.child({ component: 'master.console' });
  // On a standby there is no core: the sampler has nothing to observe and no workers to ask.
  const current = (): MasterCore | undefined => {
    try {
      return d.core();
    } catch {
      return undefined;
    }
  };
  const missingBlocks = new RecentIncreases();
  const sampler = new ConsoleSampler({
    onRound: (tMs) => {
      const core = current();
      if (core !== undefined) missingBlocks.observe(core.blocks.stats().missing, tMs);
    },
    registry: d.registry,
    log,
    // Workers expected to answer: not lost, not fully drained, with a web port to ask.
    targets: () =>
      (current()?.registry.all() ?? [])
        .filter((w) => w.state !== 'lost' && w.state !== 'decommissioned' && w.address.webPort > 0)
        .map((w) => ({
          id: w.id,
          url: `http://${hostForUrl(w.address.hostname)}:${w.address.webPort}/metrics`,
        })),
    ...d.sampler,
  });
  const guard = new AdminGuard(d.config.master.admin_token);
  addConsolePages(d.http, d.assets ?? ConsoleAssets.load(), log);
  addConsoleApi(d.http, {
    core: d.core,
    masters: d.masters,
    config: d.config,
    sampler,
    guard,
    missingBlocks,
    log,
    rpcAddress: d.rpcAddress,
    webAddress: () => `${hostForUrl(d.config.master.hostname)}:${d.http.address().port}`,
  });
  addUfsApi(d.http, { core: d.core, guard, log });
  return {
    sampler,
    start: () => sampler.start(),
    stop: () => sampler.stop(),
  };
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
