/**
 * The seam between the client library and the wire. The client speaks the protocol in
 * src/protocol through an `RpcChannel` (one per master set, one per worker address) made by an
 * `RpcConnector`. The production connector wraps the cluster RPC client (src/rpc); tests can put
 * an in-process fake with fault injection behind the same interface.
 */
import type {
  CallOptions,
  ReadCall,
  ReadStreamCall,
  UnaryCall,
  UnaryResult,
  WriteCall,
  WriteStreamCall,
} from '../rpc/api.js';

/**
 * A connection (or pool of connections) to one service: a master set with failover, or one
 * worker. The cluster RPC client (`RpcClient` in src/rpc) has exactly this shape.
 */
export interface RpcChannel {
  call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, opts?: CallOptions): Promise<Res>;
  callWithPayload<Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    opts?: CallOptions,
  ): Promise<UnaryResult<Res>>;
  read<Req, Res>(def: ReadStreamCall<Req, Res>, req: Req, opts?: CallOptions): ReadCall<Res>;
  write<Req, Res>(def: WriteStreamCall<Req, Res>, req: Req, opts?: CallOptions): WriteCall<Res>;
  close(): Promise<void>;
}

export interface ChannelOptions {
  /** Addresses tried in order; more than one means failover (masters). */
  addresses: readonly { host: string; port: number }[];
  /** Default deadline of a call. */
  callTimeoutMs: number;
  connectTimeoutMs: number;
  /** Attempts of a retryable call across the addresses before giving up. */
  retryMax: number;
  /** Label for logs and errors, e.g. "master" or "worker 10.0.0.5:8997". */
  label: string;
  /**
   * Ping an idle-looking connection after this long, and drop it when no answer comes within
   * the timeout (a frozen server keeps its connections open); absent: the RPC defaults.
   */
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
}

export interface RpcConnector {
  connect(opts: ChannelOptions): RpcChannel;
}
