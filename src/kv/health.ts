/**
 * Peer health checks: every `health_check_interval` each peer's /internal/cluster/health is asked,
 * with `health_check_timeout`, and once more right after this node's own state changes. An answer sets the peer's state (up, joining, leaving); silence
 * counts towards `failure_threshold`; a refused connection marks it down at once. The request
 * carries this node's id and address, so a node started with a larger `cluster_nodes` announces
 * itself to the others; the reply carries the peer's known nodes (learned the same way) and its
 * flush floor, so both spread without a separate protocol.
 */
import type { Logger } from '../common/logging.js';
import { formatHostPort, parseHostPort } from '../common/net.js';
import type { HostPort } from '../common/net.js';
import { PeerUnreachableError } from './errors.js';
import { NODE_STATES } from './membership.js';
import type { Membership, NodeState } from './membership.js';
import { INTERNAL_PATHS } from './peers.js';
import type { PeerSet } from './peers.js';

/** What a node says about itself in a health reply. */
export interface HealthReply {
  node_id: string;
  state: NodeState;
  address: string;
  epoch: number;
  flush_version: number;
  keys: number;
  bytes: number;
  nodes: Record<string, string>;
  /** The node's own state version (see Membership.selfStateVersion). */
  state_version: number;
}

export interface PeerStats {
  keys: number;
  bytes: number;
  atMs: number;
}

export interface HealthCheckerOptions {
  membership: Membership;
  peers: PeerSet;
  selfAddress: HostPort;
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  flushVersion: () => number;
  onFlushVersion: (version: number) => void;
}

export class HealthChecker {
  readonly #o: HealthCheckerOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  readonly #stats = new Map<string, PeerStats>();

  constructor(opts: HealthCheckerOptions) {
    this.#o = opts;
  }

  /** Key and byte counts peers reported in their last health reply. */
  get stats(): ReadonlyMap<string, PeerStats> {
    return this.#stats;
  }

  start(): void {
    this.#timer = setInterval(() => {
      // Skip a tick rather than pile up rounds behind a slow peer.
      this.#round ??= this.probeAll().finally(() => {
        this.#round = undefined;
      });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  async probeAll(): Promise<void> {
    await Promise.all(this.#o.membership.peers().map((n) => this.probe(n.id)));
  }

  async probe(id: string): Promise<void> {
    const m = this.#o.membership;
    const info = m.node(id);
    if (info === undefined) return;
    const client = this.#o.peers.ensure(id, info.address);
    // The probe tells the peer who we are and our state, so a node that just came up is known
    // as up by every peer within one round trip, not one health-check interval later.
    const query = `?from=${encodeURIComponent(m.selfId)}&addr=${encodeURIComponent(formatHostPort(this.#o.selfAddress))}&state=${m.selfState}&v=${m.selfStateVersion}`;
    let reply: HealthReply;
    const sentAtMs = Date.now();
    try {
      const { body } = await client.getJson(`${INTERNAL_PATHS.health}${query}`, this.#o.timeoutMs);
      reply = parseHealthReply(body);
    } catch (err) {
      const refused = err instanceof PeerUnreachableError && err.refused;
      m.recordFailure(id, (err as Error).message, refused);
      return;
    }
    if (reply.node_id !== id) {
      m.recordFailure(
        id,
        `${formatHostPort(info.address)} answers as node "${reply.node_id}", not "${id}"`,
        false,
      );
      return;
    }
    this.#stats.set(id, { keys: reply.keys, bytes: reply.bytes, atMs: Date.now() });
    for (const [peerId, addr] of Object.entries(reply.nodes)) {
      if (peerId === m.selfId || m.node(peerId) !== undefined) continue;
      const hp = parseHostPort(addr, '');
      if (hp === undefined || hp.host === '') continue;
      if (m.addNode(peerId, hp)) this.#o.peers.ensure(peerId, hp);
    }
    if (reply.flush_version > this.#o.flushVersion()) this.#o.onFlushVersion(reply.flush_version);
    m.recordReply(id, reply.state, reply.state_version, 'health check answered', sentAtMs);
  }
}

export function parseHealthReply(body: unknown): HealthReply {
  if (typeof body !== 'object' || body === null) throw new Error('health reply is not an object');
  const b = body as Record<string, unknown>;
  const state = b.state;
  if (
    typeof b.node_id !== 'string' ||
    typeof state !== 'string' ||
    !(NODE_STATES as readonly string[]).includes(state)
  ) {
    throw new Error('health reply lacks node_id or state');
  }
  const nodes: Record<string, string> = {};
  if (typeof b.nodes === 'object' && b.nodes !== null) {
    for (const [k, v] of Object.entries(b.nodes as Record<string, unknown>))
      if (typeof v === 'string') nodes[k] = v;
  }
  return {
    node_id: b.node_id,
    state: state as NodeState,
    address: typeof b.address === 'string' ? b.address : '',
    epoch: typeof b.epoch === 'number' ? b.epoch : 0,
    flush_version: typeof b.flush_version === 'number' ? b.flush_version : 0,
    keys: typeof b.keys === 'number' ? b.keys : 0,
    bytes: typeof b.bytes === 'number' ? b.bytes : 0,
    nodes,
    state_version: typeof b.state_version === 'number' ? b.state_version : 0,
  };
}
