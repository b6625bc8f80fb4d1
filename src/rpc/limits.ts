/**
 * Every limit and default of the cluster RPC, named once. Options of the server and the client
 * override them; docs/rpc.md explains each.
 */

const KiB = 1024;
const MiB = 1024 * KiB;

/** Largest frame (header + payload) either side accepts or sends. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * MiB;
/** Smallest frame limit an option may set: a request header must always fit. */
export const MIN_MAX_FRAME_BYTES = 64 * KiB;
/** Bytes one stream may have in flight before the receiver grants more credit. */
export const DEFAULT_STREAM_WINDOW_BYTES = 4 * MiB;
/** Largest data chunk sent on a stream; bigger writes are split. Must not exceed the window. */
export const DEFAULT_STREAM_CHUNK_BYTES = 1 * MiB;
/** Smallest stream window an option may set. */
export const MIN_STREAM_WINDOW_BYTES = 64 * KiB;

/** A request id is a UUID in practice; anything longer is a protocol error. */
export const MAX_REQUEST_ID_CHARS = 128;
/** Deadlines beyond this (a day) are clamped: no call should be able to pin server state forever. */
export const MAX_CALL_DEADLINE_MS = 24 * 60 * 60 * 1000;

/** Default deadline of a unary call, retries included (config `client.rpc_timeout`). */
export const DEFAULT_CALL_DEADLINE_MS = 30_000;
/** Default deadline of a read or write stream: streams move blocks of up to gigabytes. */
export const DEFAULT_STREAM_DEADLINE_MS = 10 * 60 * 1000;
/** Default deadline of opening one TCP connection (config `client.conn_timeout`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default number of retries of a unary call across addresses (config `client.rpc_retry_max`). */
export const DEFAULT_RETRY_MAX = 10;
/** First retry delay; doubles per attempt with full jitter up to the maximum. */
export const DEFAULT_RETRY_BASE_DELAY_MS = 20;
export const DEFAULT_RETRY_MAX_DELAY_MS = 1_000;
/** After a failed connect an address is avoided for this long, doubling per failure up to the maximum. */
export const DEFAULT_RECONNECT_BASE_DELAY_MS = 100;
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 5_000;
/** A client pings an idle connection this often... */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
/** ...and gives it up when nothing at all arrives for this long after a ping. */
export const DEFAULT_KEEPALIVE_TIMEOUT_MS = 10_000;

/** Calls one connection may have in flight on a server; more are refused with STRATA_OVERLOADED. */
export const DEFAULT_MAX_CALLS_PER_CONNECTION = 4096;
/** Connections a server accepts at once; more are refused by the listener. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** A server closes a connection with no calls and no traffic for this long (clients ping sooner). */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60 * 1000;
/** Default bound of `RpcServer.close()` for in-flight calls to finish. */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;
/**
 * Bytes queued in one socket's write buffer above which a server stops reading new requests from
 * that connection and stream senders wait: a peer that does not read cannot grow our memory.
 */
export const SOCKET_WRITE_HIGH_WATER_BYTES = 8 * MiB;

/** Frames smaller than this are copied together into one write; larger payloads go out as they are. */
export const COALESCE_MAX_BYTES = 16 * KiB;
/** Client receive buffer: reads land in slabs of this size (see FrameDecoder). */
export const READ_SLAB_BYTES = 1 * MiB;
/** Big frame bodies on the client are cut from slabs of this size (see FrameDecoder #carve). */
export const BODY_SLAB_BYTES = 4 * MiB;
/** A new slab is started when less than this is left in the current one. */
export const MIN_READ_BYTES = 64 * KiB;
