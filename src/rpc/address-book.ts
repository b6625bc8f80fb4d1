/**
 * The addresses of one logical service (e.g. every master) and the connection to each, opened
 * lazily. Keeps the address that last worked as the current one, rotates on failure, jumps to a
 * leader hint, and avoids an address that failed to connect for a while (exponential backoff with
 * jitter) so calls do not hammer a server that is down.
 */
import type { StrataError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { formatHostPort } from '../common/net.js';
import type { RemoteAddress } from './api.js';
import { ClientConnection } from './client-connection.js';
import { ConnectionError } from './errors.js';
import type { ClientMetrics } from './metrics.js';

/** Leader hints may add addresses not in the configured list; at most this many. */
const MAX_LEARNED_ADDRESSES = 16;

export interface ConnectionSettings {
  maxFrameBytes: number;
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
}

interface Slot {
  readonly address: RemoteAddress;
  readonly name: string;
  conn: ClientConnection | undefined;
  connecting: Promise<ClientConnection> | undefined;
  failures: number;
  retryAt: number;
  lastError: StrataError | undefined;
}

/** Exponential backoff with full jitter: uniform in [0, min(max, base·2^attempt)). */
export function backoffDelayMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
}

export class AddressBook {
  readonly #slots: Slot[];
  readonly #configured: number;
  readonly #settings: ConnectionSettings;
  readonly #metrics: ClientMetrics;
  readonly #log: Logger;
  #current = 0;
  #closedError: StrataError | undefined;

  constructor(
    addresses: readonly RemoteAddress[],
    settings: ConnectionSettings,
    metrics: ClientMetrics,
    log: Logger,
  ) {
    this.#slots = addresses.map((a) => newSlot(a));
    this.#configured = this.#slots.length;
    this.#settings = settings;
    this.#metrics = metrics;
    this.#log = log;
  }

  get size(): number {
    return this.#slots.length;
  }

  nameOf(idx: number): string {
    return this.#slots[idx]?.name ?? '?';
  }

  /** The address to use now: the current one unless it is backing off, else the next that is not. */
  pick(): number {
    const now = Date.now();
    const n = this.#slots.length;
    let earliest = this.#current;
    for (let i = 0; i < n; i++) {
      const idx = (this.#current + i) % n;
      const slot = this.#slots[idx] as Slot;
      if (slot.conn !== undefined || slot.retryAt <= now) {
        this.#current = idx;
        return idx;
      }
      if (slot.retryAt < (this.#slots[earliest] as Slot).retryAt) earliest = idx;
    }
    return earliest;
  }

  /** The open connection to an address, if there is one. */
  ready(idx: number): ClientConnection | undefined {
    const conn = this.#slots[idx]?.conn;
    return conn !== undefined && !conn.closed ? conn : undefined;
  }

  /** Opens (or joins the opening of) the connection to an address, waiting out its backoff. */
  connect(idx: number, deadlineAt: number): Promise<ClientConnection> {
    const slot = this.#slots[idx] as Slot;
    if (this.#closedError !== undefined) return Promise.reject(this.#closedError);
    const open = this.ready(idx);
    if (open !== undefined) return Promise.resolve(open);
    slot.connecting ??= this.#open(slot, deadlineAt).finally(() => {
      slot.connecting = undefined;
    });
    return slot.connecting;
  }

  async #open(slot: Slot, deadlineAt: number): Promise<ClientConnection> {
    const wait = slot.retryAt - Date.now();
    if (wait > 0) {
      if (Date.now() + wait >= deadlineAt) {
        throw slot.lastError ?? new ConnectionError(`${slot.name} is unreachable`);
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const closedMeanwhile = this.#closedError;
    if (closedMeanwhile !== undefined) throw closedMeanwhile;
    const settings = this.#settings;
    const timeoutMs = Math.max(1, Math.min(settings.connectTimeoutMs, deadlineAt - Date.now()));
    try {
      const conn = await ClientConnection.open({
        address: slot.address,
        maxFrameBytes: settings.maxFrameBytes,
        connectTimeoutMs: timeoutMs,
        keepaliveIntervalMs: settings.keepaliveIntervalMs,
        keepaliveTimeoutMs: settings.keepaliveTimeoutMs,
        log: this.#log,
        onClosed: (c) => {
          if (slot.conn === c) slot.conn = undefined;
        },
      });
      this.#metrics.connected(true);
      const closed = this.#closedError;
      if (closed !== undefined) {
        conn.close(closed);
        throw closed;
      }
      slot.failures = 0;
      slot.retryAt = 0;
      slot.lastError = undefined;
      slot.conn = conn;
      this.#log.debug({ address: slot.name }, 'rpc connected');
      return conn;
    } catch (err) {
      this.#metrics.connected(false);
      const e = err as StrataError;
      slot.failures++;
      slot.lastError = e;
      const exp = Math.min(
        settings.reconnectMaxDelayMs,
        settings.reconnectBaseDelayMs * 2 ** Math.min(slot.failures - 1, 30),
      );
      slot.retryAt = Date.now() + exp / 2 + (Math.random() * exp) / 2;
      this.#log.debug({ address: slot.name, failures: slot.failures, err: e.message }, 'rpc connect failed');
      throw e;
    }
  }

  /** A call failed on `idx` because of the connection or the server: move on to the next address. */
  failed(idx: number): void {
    if (this.#current === idx && this.#slots.length > 1) this.#current = (idx + 1) % this.#slots.length;
  }

  /** Makes the hinted leader the current address (learning it when it is not in the list). */
  redirect(address: RemoteAddress): number {
    const name = formatHostPort(address);
    let idx = this.#slots.findIndex((s) => s.name === name);
    if (idx < 0) {
      // Indexes stay stable (calls in flight hold them): a learned address without a connection
      // is replaced in place once the limit is reached.
      const reuse =
        this.#slots.length - this.#configured >= MAX_LEARNED_ADDRESSES
          ? this.#slots.findIndex(
              (s, i) => i >= this.#configured && s.conn === undefined && s.connecting === undefined,
            )
          : -1;
      if (reuse >= 0) {
        this.#slots[reuse] = newSlot(address);
        idx = reuse;
      } else {
        this.#slots.push(newSlot(address));
        idx = this.#slots.length - 1;
      }
    }
    this.#current = idx;
    return idx;
  }

  closeAll(err: StrataError): void {
    this.#closedError = err;
    for (const slot of this.#slots) {
      slot.conn?.close(err);
      slot.conn = undefined;
    }
  }
}

function newSlot(address: RemoteAddress): Slot {
  return {
    address: { host: address.host, port: address.port },
    name: formatHostPort(address),
    conn: undefined,
    connecting: undefined,
    failures: 0,
    retryAt: 0,
    lastError: undefined,
  };
}
