/**
 * The RPC server: a TCP listener, the handlers registered per call, and a graceful close that
 * lets in-flight calls finish within a bound.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { StrataError } from '../common/errors.js';
import { silentLogger } from '../common/logging.js';
import type { Logger } from '../common/logging.js';
import type {
  CallGate,
  ReadStreamCall,
  ReadStreamHandler,
  RemoteAddress,
  UnaryCall,
  UnaryHandler,
  WriteStreamCall,
  WriteStreamHandler,
} from './api.js';
import { UnavailableError } from './errors.js';
import {
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CALLS_PER_CONNECTION,
  DEFAULT_MAX_CONNECTIONS,
} from './limits.js';
import { ServerMetrics } from './metrics.js';
import { ServerConnection } from './server-connection.js';
import type { Registered, ServerCore } from './server-connection.js';
import type { AnyCallDef } from './server-call.js';
import { checkSizeOptions } from './options.js';

export interface RpcServerOptions {
  log?: Logger;
  /** Metrics go here (the process's registry); a private one when absent. */
  registry?: Registry;
  /** Decides whether a call may be served now (e.g. only the leader serves); throw to refuse. */
  gate?: CallGate;
  maxFrameBytes?: number;
  streamWindowBytes?: number;
  streamChunkBytes?: number;
  maxConnections?: number;
  maxCallsPerConnection?: number;
  idleTimeoutMs?: number;
}

/** How long close() lets aborted calls answer before closing their connections. */
const ABORT_SETTLE_MS = 1_000;
/** How long close() waits for sockets to finish closing after the calls are done. */
const SOCKET_CLOSE_WAIT_MS = 2_000;

export class RpcServer {
  readonly #handlers = new Map<number, Registered>();
  readonly #connections = new Set<ServerConnection>();
  readonly #core: ServerCore;
  readonly #maxConnections: number;
  #server: Server | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];

  constructor(opts: RpcServerOptions = {}) {
    const sizes = checkSizeOptions('RpcServer', opts);
    this.#maxConnections = positive('maxConnections', opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    const maxCalls = positive(
      'maxCallsPerConnection',
      opts.maxCallsPerConnection ?? DEFAULT_MAX_CALLS_PER_CONNECTION,
    );
    const idleTimeoutMs = positive('idleTimeoutMs', opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    const log = (opts.log ?? silentLogger()).child({ component: 'rpc.server' });
    const metrics = new ServerMetrics(opts.registry);
    this.#core = {
      log,
      metrics,
      gate: opts.gate,
      maxFrameBytes: sizes.maxFrameBytes,
      streamWindowBytes: sizes.streamWindowBytes,
      streamChunkBytes: sizes.streamChunkBytes,
      maxCallsPerConnection: maxCalls,
      idleTimeoutMs,
      isClosing: () => this.#closing,
      lookup: (code) => this.#handlers.get(code),
      activityEnded: () => this.#checkIdle(),
      connectionClosed: (conn) => {
        this.#connections.delete(conn);
        this.#checkIdle();
      },
    };
  }

  /** Registers the handler of a call. A code can be registered once. */
  handle<Req, Res>(def: UnaryCall<Req, Res>, handler: UnaryHandler<Req, Res>): this;
  handle<Req, Res>(def: ReadStreamCall<Req, Res>, handler: ReadStreamHandler<Req, Res>): this;
  handle<Req, Res>(def: WriteStreamCall<Req, Res>, handler: WriteStreamHandler<Req, Res>): this;
  handle(
    def: AnyCallDef,
    handler:
      | UnaryHandler<unknown, unknown>
      | ReadStreamHandler<unknown, unknown>
      | WriteStreamHandler<unknown, unknown>,
  ): this {
    const existing = this.#handlers.get(def.code);
    if (existing !== undefined) {
      throw new StrataError(
        'STRATA_DUPLICATE_CALL',
        `call code ${def.code} (${def.name}) is already handled by ${existing.def.name}`,
      );
    }
    // The schema check before every handler call is what makes these casts sound.
    this.#handlers.set(def.code, { kind: def.kind, def, handler } as Registered);
    return this;
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  async listen(host: string, port: number): Promise<RemoteAddress> {
    if (this.#server !== undefined) throw new StrataError('STRATA_USAGE', 'RpcServer.listen called twice');
    const server = createServer({ noDelay: true, keepAlive: true }, (socket) => this.#accept(socket));
    server.maxConnections = this.#maxConnections;
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new StrataError('STRATA_LISTEN', `cannot listen for RPC on ${host}:${port}: ${code}`, {
        cause: err,
      });
    });
    server.on('error', (err) => this.#core.log.error({ err }, 'rpc listener error'));
    const addr = this.address();
    this.#core.log.info({ host: addr.host, port: addr.port }, 'rpc server listening');
    return addr;
  }

  address(): RemoteAddress {
    const a = this.#server?.address();
    if (a === null || a === undefined || typeof a === 'string') {
      throw new StrataError('STRATA_USAGE', 'RpcServer.address: the server is not listening');
    }
    return { host: a.address, port: a.port };
  }

  /** Calls in flight across all connections. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.#connections) n += c.inFlight;
    return n;
  }

  /**
   * Stops accepting connections and calls, waits up to `graceMs` for in-flight calls to finish,
   * aborts what is left (their handlers see the signal), then closes every connection.
   */
  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.#closed ??= this.#close(graceMs);
    return this.#closed;
  }

  async #close(graceMs: number): Promise<void> {
    this.#closing = true;
    const server = this.#server;
    const listenerClosed =
      server === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => server.close(() => resolve()));
    await this.#waitIdle(graceMs);
    const reason = new UnavailableError('the server closed while the call was in flight');
    const left = this.inFlight;
    if (left > 0) {
      this.#core.log.warn({ calls: left, graceMs }, 'rpc close: aborting calls still in flight');
      for (const conn of this.#connections) conn.abortCalls(reason);
      // Aborted handlers usually answer at once; give them a moment to.
      await this.#waitIdle(ABORT_SETTLE_MS);
    }
    for (const conn of this.#connections) conn.shutdown(reason);
    const timer = setTimeout(() => {
      for (const conn of this.#connections) conn.destroy(reason, 'server closed');
    }, SOCKET_CLOSE_WAIT_MS);
    await listenerClosed;
    clearTimeout(timer);
    this.#core.log.info('rpc server closed');
  }

  #waitIdle(graceMs: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, graceMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#idleWaiters.push(done);
    });
  }

  #checkIdle(): void {
    if (!this.#closing || this.#idleWaiters.length === 0 || this.inFlight > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#connections.add(new ServerConnection(this.#core, socket));
  }
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new StrataError('STRATA_USAGE', `RpcServer: ${name} must be a positive integer (got ${value})`);
  }
  return value;
}
