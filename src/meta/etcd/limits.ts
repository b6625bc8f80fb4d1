/**
 * Limits of the etcd engine. etcd refuses a transaction with more than `--max-txn-ops` compares
 * or more than that many operations (128 by default in 3.4), and any request larger than
 * `--max-request-bytes` (1.5 MiB by default); the engine keeps every request inside both and
 * splits what does not fit (big-txn.ts).
 */

/** etcd 3.4's default `--max-txn-ops` (config `etcd.max_txn_ops` when the cluster differs). */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;
/** etcd 3.4's default `--max-request-bytes` (config `etcd.max_request_bytes`). */
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024;
/** Bytes of every request kept for protobuf framing and fields not counted exactly. */
export const ETCD_REQUEST_OVERHEAD_BYTES = 64 * 1024;
/** Bytes counted per operation and per compare on top of its key and value. */
export const ETCD_OP_OVERHEAD_BYTES = 32;
/** Smallest `max_txn_ops` the engine works with (it needs room for its own compares). */
export const ETCD_MIN_TXN_OPS = 16;
/** Entries fetched per Range request of a scan (bounds one response's size). */
export const ETCD_SCAN_PAGE_ENTRIES = 1000;
/** Runs of one transaction before it fails with STRATA_META_CONFLICT. */
export const ETCD_MAX_ATTEMPTS = 1000;
/** Entries the engine remembers (key → value and revision) to run transactions without fetching. */
export const ETCD_DEFAULT_CACHE_ENTRIES = 200_000;
/** Deadline of one etcd request (a request to an unreachable member must not hang). */
export const ETCD_REQUEST_TIMEOUT_MS = 5_000;
/** Attempts of a read request on recoverable errors (reads are safe to repeat). */
export const ETCD_READ_ATTEMPTS = 4;
/** Pause before repeating a failed read, doubled each time. */
export const ETCD_READ_RETRY_DELAY_MS = 50;
/** Bytes of one redo-log chunk of a big transaction (one put). */
export const ETCD_REDO_CHUNK_BYTES = 1024 * 1024;
/** Apply batches of a big transaction in flight at once. */
export const ETCD_APPLY_CONCURRENCY = 8;
/** TTL of the engine's session lease (redo chunks of an unfinished big transaction die with it). */
export const ETCD_SESSION_TTL_S = 10;
/** A big transaction still pending after this long is rolled forward by whoever finds it. */
export const ETCD_INTENT_HELP_AFTER_MS = 30_000;
/** First and longest pause while waiting for another process's big transaction to finish. */
export const ETCD_INTENT_POLL_MIN_MS = 20;
export const ETCD_INTENT_POLL_MAX_MS = 500;
/** Largest response the gRPC client accepts (a scan page of big values). */
export const ETCD_MAX_RECEIVE_BYTES = 256 * 1024 * 1024;
