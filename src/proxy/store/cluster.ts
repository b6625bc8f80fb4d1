/**
 * L2 `cluster` — NOT AVAILABLE IN THIS BUILD. It needs the Strata client library, which does
 * not exist yet; configuration validation refuses `enable_l2_cache: true` with
 * `l2_backend: cluster` and says so, and `createClusterStore` throws the same error.
 *
 * How it is meant to plug in, so the client library can be written against it:
 *   - it implements ProxyStore like the other engines (types.ts); the HTTP layer does not change;
 *   - an entry is a file in the Strata namespace under a proxy root, e.g.
 *     `/.proxy/<cluster-id>/<sha256(key)[0:2]>/<sha256(key)>`, holding the msgpack metadata
 *     block followed by the body (slices are small entries already, so sliced objects spread
 *     over workers naturally and several proxies share them);
 *   - `put` streams through the client's block writer (write type `cache`: Strata only, no UFS);
 *     `readAt` reads back what the writer flushed; `commit` is the client's atomic close/rename;
 *   - `get` is a metadata lookup plus a positional block reader; per-block checksums of the
 *     worker replace the per-frame CRCs of the disk engines;
 *   - `deleteFamily` lists the key's family directory; eviction is the cluster's TTL and
 *     watermarks, not S3-FIFO here;
 *   - failures map to the same contract: any error is a miss or a skipped write (tiered.ts).
 */
import { NotAvailableError } from '../errors.js';
import type { ProxyStore } from './types.js';

export interface ClusterStoreOptions {
  /** Namespace directory the proxy keeps its entries under. */
  root: string;
  /** Masters to reach (the client library's `client.master_addrs`). */
  masterAddrs: string[];
}

export const CLUSTER_NOT_AVAILABLE =
  'l2_backend "cluster" is not available in this build: it needs the Strata client library, which is not built yet; use file or raw_disk';

export function createClusterStore(_opts: ClusterStoreOptions): ProxyStore {
  throw new NotAvailableError(CLUSTER_NOT_AVAILABLE);
}
