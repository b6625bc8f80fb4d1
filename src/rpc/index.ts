/** The cluster RPC's public face: call definitions, server, client, errors, deduplication. */
export {
  unary,
  readStream,
  writeStream,
  withPayload,
  type CallKind,
  type CallDef,
  type UnaryCall,
  type ReadStreamCall,
  type WriteStreamCall,
  type DefineOptions,
  type RemoteAddress,
  type CallContext,
  type ReplyWithPayload,
  type UnaryHandler,
  type StreamSink,
  type ReadStreamHandler,
  type WriteStreamHandler,
  type StreamInput,
  type CallGate,
  type CallOptions,
  type UnaryResult,
  type ReadCall,
  type WriteCall,
} from './api.js';
export { RpcServer, type RpcServerOptions } from './server.js';
export { RpcClient, newRequestId, type RpcClientOptions } from './client.js';
export {
  ConnectionError,
  ProtocolError,
  NotLeaderError,
  CancelledError,
  UnavailableError,
  errorFromWire,
  type ProtocolViolation,
} from './errors.js';
export { FrameTooLargeError } from './frame-writer.js';
export {
  RetryCache,
  MemoryRetryCacheStore,
  DEFAULT_RETRY_CACHE_TTL_MS,
  DEFAULT_RETRY_CACHE_MAX_ENTRIES,
  type RetryCacheStore,
  type RetryCacheOptions,
  type RetryCacheStats,
  type RetryOutcome,
  type MemoryRetryCacheStoreOptions,
} from './retry-cache.js';
export * as rpcLimits from './limits.js';
export { masterClientOptions, retryCacheOptions } from './config.js';
