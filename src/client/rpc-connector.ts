/**
 * The production connector: one cluster RPC client (src/rpc) per channel. The master channel
 * lists every master address (the RPC client fails over and follows "not leader"); a worker
 * channel has one address and no retries (the block reader and writer move to another replica).
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logging.js';
import { RpcClient } from '../rpc/index.js';
import type { ChannelOptions, RpcChannel, RpcConnector } from './transport.js';

export interface RpcConnectorOptions {
  log?: Logger;
  /** Registry for the RPC layer's own metrics (calls, latency, connections). */
  registry?: Registry;
}

export function defaultConnector(opts: RpcConnectorOptions = {}): RpcConnector {
  return {
    connect(c: ChannelOptions): RpcChannel {
      return new RpcClient({
        addresses: c.addresses,
        deadlineMs: c.callTimeoutMs,
        connectTimeoutMs: c.connectTimeoutMs,
        retryMax: c.retryMax,
        ...(c.keepaliveIntervalMs === undefined ? {} : { keepaliveIntervalMs: c.keepaliveIntervalMs }),
        ...(c.keepaliveTimeoutMs === undefined ? {} : { keepaliveTimeoutMs: c.keepaliveTimeoutMs }),
        ...(opts.log === undefined ? {} : { log: opts.log }),
        ...(opts.registry === undefined ? {} : { registry: opts.registry }),
      });
    },
  };
}
