/**
 * Prometheus metrics of the RPC server and client, registered on the registry the process passes
 * in. Metrics are looked up before they are created, so several servers or clients may share one
 * registry (their samples add up). Label children are cached: a hot call path does no label hashing.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { LATENCY_BUCKETS_S } from '../common/metrics.js';

type AnyMetric = Counter | Gauge | Histogram;

function getOrCreate<T extends AnyMetric>(registry: Registry, name: string, create: () => T): T {
  const existing = registry.getSingleMetric(name);
  return existing === undefined ? create() : (existing as T);
}

interface CallChildren {
  duration: Histogram.Internal<string>;
  byStatus: Map<string, Counter.Internal>;
}

export class ServerMetrics {
  readonly #requests: Counter<'call' | 'status'>;
  readonly #duration: Histogram<'call'>;
  readonly #received: Counter;
  readonly #sent: Counter;
  readonly #connections: Gauge;
  readonly #inFlight: Gauge;
  readonly #protocolErrors: Counter<'reason'>;
  readonly #children = new Map<string, CallChildren>();

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.#requests = getOrCreate(
      registry,
      'strata_rpc_server_requests_total',
      () =>
        new Counter({
          name: 'strata_rpc_server_requests_total',
          help: 'RPC calls served, by call and status (ok or the error code)',
          labelNames: ['call', 'status'],
          registers,
        }),
    );
    this.#duration = getOrCreate(
      registry,
      'strata_rpc_server_request_duration_seconds',
      () =>
        new Histogram({
          name: 'strata_rpc_server_request_duration_seconds',
          help: 'Time from a request arriving to its response being queued, by call',
          labelNames: ['call'],
          buckets: LATENCY_BUCKETS_S,
          registers,
        }),
    );
    this.#received = getOrCreate(
      registry,
      'strata_rpc_server_received_bytes_total',
      () =>
        new Counter({
          name: 'strata_rpc_server_received_bytes_total',
          help: 'Bytes read from RPC connections',
          registers,
        }),
    );
    this.#sent = getOrCreate(
      registry,
      'strata_rpc_server_sent_bytes_total',
      () =>
        new Counter({
          name: 'strata_rpc_server_sent_bytes_total',
          help: 'Bytes written to RPC connections',
          registers,
        }),
    );
    this.#connections = getOrCreate(
      registry,
      'strata_rpc_server_connections',
      () =>
        new Gauge({
          name: 'strata_rpc_server_connections',
          help: 'Open RPC connections',
          registers,
        }),
    );
    this.#inFlight = getOrCreate(
      registry,
      'strata_rpc_server_calls_in_flight',
      () =>
        new Gauge({
          name: 'strata_rpc_server_calls_in_flight',
          help: 'RPC calls being handled',
          registers,
        }),
    );
    this.#protocolErrors = getOrCreate(
      registry,
      'strata_rpc_server_protocol_errors_total',
      () =>
        new Counter({
          name: 'strata_rpc_server_protocol_errors_total',
          help: 'Connections closed for breaking the protocol, by reason',
          labelNames: ['reason'],
          registers,
        }),
    );
  }

  callStarted(): void {
    this.#inFlight.inc();
  }

  callDone(call: string, status: string, seconds: number): void {
    this.#inFlight.dec();
    let children = this.#children.get(call);
    if (children === undefined) {
      children = { duration: this.#duration.labels(call), byStatus: new Map() };
      this.#children.set(call, children);
    }
    children.duration.observe(seconds);
    let counter = children.byStatus.get(status);
    if (counter === undefined) {
      counter = this.#requests.labels(call, status);
      children.byStatus.set(status, counter);
    }
    counter.inc();
  }

  received(bytes: number): void {
    this.#received.inc(bytes);
  }

  sent(bytes: number): void {
    this.#sent.inc(bytes);
  }

  connectionOpened(): void {
    this.#connections.inc();
  }

  connectionClosed(): void {
    this.#connections.dec();
  }

  protocolError(reason: string): void {
    this.#protocolErrors.labels(reason).inc();
  }
}

export class ClientMetrics {
  readonly #requests: Counter<'call' | 'status'>;
  readonly #duration: Histogram<'call'>;
  readonly #retries: Counter<'call' | 'reason'>;
  readonly #connects: Counter<'result'>;
  readonly #children = new Map<string, CallChildren>();

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.#requests = getOrCreate(
      registry,
      'strata_rpc_client_requests_total',
      () =>
        new Counter({
          name: 'strata_rpc_client_requests_total',
          help: 'RPC calls made, by call and final status (ok or the error code)',
          labelNames: ['call', 'status'],
          registers,
        }),
    );
    this.#duration = getOrCreate(
      registry,
      'strata_rpc_client_request_duration_seconds',
      () =>
        new Histogram({
          name: 'strata_rpc_client_request_duration_seconds',
          help: 'Time of a unary call including retries, by call',
          labelNames: ['call'],
          buckets: LATENCY_BUCKETS_S,
          registers,
        }),
    );
    this.#retries = getOrCreate(
      registry,
      'strata_rpc_client_retries_total',
      () =>
        new Counter({
          name: 'strata_rpc_client_retries_total',
          help: 'Unary call attempts retried, by call and the error code that caused the retry',
          labelNames: ['call', 'reason'],
          registers,
        }),
    );
    this.#connects = getOrCreate(
      registry,
      'strata_rpc_client_connects_total',
      () =>
        new Counter({
          name: 'strata_rpc_client_connects_total',
          help: 'Connection attempts, by result (ok or failed)',
          labelNames: ['result'],
          registers,
        }),
    );
  }

  callDone(call: string, status: string, seconds: number): void {
    let children = this.#children.get(call);
    if (children === undefined) {
      children = { duration: this.#duration.labels(call), byStatus: new Map() };
      this.#children.set(call, children);
    }
    children.duration.observe(seconds);
    let counter = children.byStatus.get(status);
    if (counter === undefined) {
      counter = this.#requests.labels(call, status);
      children.byStatus.set(status, counter);
    }
    counter.inc();
  }

  retried(call: string, reason: string): void {
    this.#retries.labels(call, reason).inc();
  }

  connected(ok: boolean): void {
    this.#connects.labels(ok ? 'ok' : 'failed').inc();
  }
}
