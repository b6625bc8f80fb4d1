/**
 * Metadata calls to the master set. The channel (the cluster RPC client) fails over across
 * `client.master_addrs`, follows "not leader" and retries mutating calls with one request id;
 * this layer normalises errors to POSIX where they have a POSIX
 * meaning, and turns "nobody answered" into one clear STRATA_UNAVAILABLE naming the addresses.
 */
import { FsError } from '../common/errors.js';
import type { CallOptions, UnaryCall } from '../rpc/api.js';
import { isUnreachable, mastersUnavailable, normaliseError } from './errors.js';
import type { ClientMetrics } from './metrics.js';
import type { RpcChannel } from './transport.js';

export class MasterClient {
  readonly #channel: RpcChannel;
  readonly #addresses: readonly { host: string; port: number }[];
  readonly #metrics: ClientMetrics | undefined;

  constructor(
    channel: RpcChannel,
    addresses: readonly { host: string; port: number }[],
    metrics?: ClientMetrics,
  ) {
    this.#channel = channel;
    this.#addresses = addresses;
    this.#metrics = metrics;
  }

  async call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, opts?: CallOptions): Promise<Res> {
    return (await this.callWithPayload(def, req, opts)).body;
  }

  async callWithPayload<Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    opts?: CallOptions,
  ): Promise<{ body: Res; payload: Buffer }> {
    const started = performance.now();
    try {
      const r = await this.#channel.callWithPayload(def, req, opts);
      this.#metrics?.masterCall(def.name, 'ok', performance.now() - started);
      return r;
    } catch (err) {
      this.#metrics?.masterCall(def.name, 'error', performance.now() - started);
      // An FsError is the master's answer (the RPC layer reports a lost master as STRATA_*
      // codes): ECONNREFUSED there means something the master dialled, such as a UFS being
      // mounted, did not answer, not that the master is gone.
      if (isUnreachable(err) && !(err instanceof FsError)) throw mastersUnavailable(this.#addresses, err);
      throw normaliseError(err);
    }
  }

  close(): Promise<void> {
    return this.#channel.close();
  }
}
