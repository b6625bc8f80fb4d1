/** An in-process master core with a fake clock, and calls through its RPC handlers (no wire). */
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { parseConfigText } from '../../src/common/config/index.js';
import { silentLogger } from '../../src/common/logging.js';
import { MasterCore } from '../../src/master/core.js';
import type { MasterCoreOptions } from '../../src/master/core.js';
import type { MetaStore } from '../../src/meta/index.js';
import type { TierUsage } from '../../src/protocol/types.js';
import type { CallContext, UnaryCall } from '../../src/rpc/api.js';
import { openStore } from './ns-helpers.js';

export interface TestCore {
  core: MasterCore;
  store: MetaStore;
  clock: { now: number };
  call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, payload?: Buffer<ArrayBufferLike>): Promise<Res>;
  callRaw<Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    payload?: Buffer<ArrayBufferLike>,
  ): Promise<{ body: Res; payload: Buffer }>;
}

export const TEST_TOML = `
cluster_id = "test"
[master]
heartbeat_interval = 100
worker_blacklist_interval = 300
worker_lost_interval = 1000
file_lease_timeout = 60000
worker_policy = "robin"
[client]
block_size = "1MB"
`;

export async function openCore(
  t: Pick<TestContext, 'after'>,
  opts: {
    toml?: string;
    store?: MetaStore;
    clock?: { now: number };
    extra?: Partial<MasterCoreOptions>;
  } = {},
): Promise<TestCore> {
  const store = opts.store ?? (await openStore(t, 'lmdb'));
  const clock = opts.clock ?? { now: 1_700_000_000_000 };
  const config = parseConfigText(opts.toml ?? TEST_TOML, 'test', { env: {} }).config;
  const core = await MasterCore.open({
    config,
    store,
    log: silentLogger(),
    clock: () => clock.now,
    ...opts.extra,
  });
  t.after(() => core.stop());
  const bindings = new Map(core.bindings().map((b) => [b.def.code, b]));
  const callRaw = async <Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    payload: Buffer<ArrayBufferLike> = Buffer.alloc(0),
  ) => {
    const b = bindings.get(def.code);
    if (b === undefined) throw new Error(`no handler for ${def.name}`);
    const parsed = def.request.parse(req);
    const ctx: CallContext = {
      requestId: randomUUID(),
      deadlineAt: Date.now() + 30_000,
      signal: new AbortController().signal,
      remote: { host: '127.0.0.1', port: 1 },
      payload,
      log: silentLogger(),
    };
    const out = (await (b.handler as (r: unknown, c: CallContext) => Promise<unknown>)(parsed, ctx)) as
      Res | { body: Res; payload: Buffer };
    if (
      out !== null &&
      typeof out === 'object' &&
      'payload' in out &&
      'body' in out &&
      Buffer.isBuffer(out.payload)
    )
      return { body: def.response.parse(out.body), payload: out.payload };
    return { body: def.response.parse(out), payload: Buffer.alloc(0) };
  };
  return {
    core,
    store,
    clock,
    callRaw,
    call: async (def, req, payload) => (await callRaw(def, req, payload)).body,
  };
}

export function tiers(availableBytes: number, storageType: TierUsage['storageType'] = 'DISK'): TierUsage[] {
  return [
    {
      storageType,
      dir: `/data/${storageType.toLowerCase()}`,
      capacityBytes: 10 * availableBytes,
      usedBytes: 9 * availableBytes,
      availableBytes,
      blocks: 0,
      highWatermark: 0.9,
      lowWatermark: 0.7,
    },
  ];
}

export function address(id: string, port: number) {
  return { workerId: id, hostname: '127.0.0.1', rpcPort: port, webPort: 0, hostId: `machine-${id}` };
}
