/**
 * The RPC options that come from the cluster configuration, so every role builds its clients and
 * retry cache the same way from `[client]` and `[master]`.
 */
import type { ClusterConfig } from '../common/config/index.js';
import type { RemoteAddress } from './api.js';

/** `[[client.master_addrs]]` and the `[client]` RPC keys, as RpcClient options for the masters. */
export function masterClientOptions(config: ClusterConfig): {
  addresses: RemoteAddress[];
  deadlineMs: number;
  connectTimeoutMs: number;
  retryMax: number;
} {
  return {
    addresses: config.client.master_addrs.map((a) => ({ host: a.hostname, port: a.port })),
    deadlineMs: config.client.rpc_timeout,
    connectTimeoutMs: config.client.conn_timeout,
    retryMax: config.client.rpc_retry_max,
  };
}

/** `master.retry_cache_ttl` as RetryCache options. */
export function retryCacheOptions(config: ClusterConfig): { ttlMs: number } {
  return { ttlMs: config.master.retry_cache_ttl };
}
