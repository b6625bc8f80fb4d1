/**
 * This node's view of the cluster: every known node with its state, the ring over all of them,
 * and which are alive (state "up"). Routing uses the ring with the alive mask, so a down node's
 * keys fall to the next nodes in each key's preference list and come back when it returns.
 *
 * States: "joining" (started, pulling its keys; not routed to), "up", "leaving" (handing its keys
 * off before exit; not routed to), "down" (failed health checks or refused a connection; peers
 * start as down until a health check answers). Every change of the alive set or of the ring is
 * announced to listeners with the view before and after, which is what rebalancing works from.
 */
import type { Logger } from '../common/logging.js';
import { formatHostPort } from '../common/net.js';
import type { HostPort } from '../common/net.js';
import { HashRing, relativeStdDev } from './ring.js';

export type NodeState = 'joining' | 'up' | 'leaving' | 'down';
export const NODE_STATES: readonly NodeState[] = ['joining', 'up', 'leaving', 'down'];

export interface NodeInfo {
  id: string;
  address: HostPort;
  state: NodeState;
  /** When the state last changed (wall ms). */
  sinceMs: number;
  /** Failed health checks in a row. */
  failures: number;
  lastError: string | undefined;
  /** When a request to it last failed (wall ms); replies to requests sent before are stale. */
  lastFailureMs: number;
  /**
   * The highest state version the node itself reported. A node's state changes carry increasing
   * versions (see `selfStateVersion`), so a reply that was in flight while it announced "leaving"
   * cannot flip it back to "up".
   */
  stateVersion: number;
}

/** A view of the cluster: the ring and which of its nodes are alive. */
export interface View {
  ring: HashRing;
  alive: Uint8Array;
}

export interface ViewChange {
  before: View;
  after: View;
  reason: string;
}

export interface MembershipOptions {
  selfId: string;
  nodes: ReadonlyMap<string, HostPort>;
  virtualNodes: number;
  probes: number;
  replicas: number;
  failureThreshold: number;
  log: Logger;
  now?: () => number;
}

export class Membership {
  readonly selfId: string;
  readonly replicas: number;
  readonly #nodes = new Map<string, NodeInfo>();
  readonly #virtualNodes: number;
  readonly #probes: number;
  readonly #failureThreshold: number;
  readonly #log: Logger;
  readonly #now: () => number;
  #view: View;
  #selfIndex: number;
  #lastChangeMs: number;
  #epoch = 0;
  /**
   * Version of this node's own state: starts at the start time in µs, so a restarted process
   * outranks its previous incarnation, and grows by one on every change of its own state.
   */
  #selfStateVersion: number;
  readonly #listeners: ((change: ViewChange) => void)[] = [];

  constructor(opts: MembershipOptions) {
    this.selfId = opts.selfId;
    this.replicas = opts.replicas;
    this.#virtualNodes = opts.virtualNodes;
    this.#probes = opts.probes;
    this.#failureThreshold = opts.failureThreshold;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    const t = this.#now();
    for (const [id, address] of opts.nodes) {
      this.#nodes.set(id, {
        id,
        address,
        state: id === opts.selfId ? 'joining' : 'down',
        sinceMs: t,
        failures: 0,
        lastError: undefined,
        lastFailureMs: 0,
        stateVersion: 0,
      });
    }
    this.#view = this.#buildView(this.#buildRing());
    this.#selfIndex = this.#view.ring.indexOf(this.selfId) ?? -1;
    this.#lastChangeMs = t;
    this.#selfStateVersion = t * 1000;
  }

  get view(): View {
    return this.#view;
  }

  get ring(): HashRing {
    return this.#view.ring;
  }

  get alive(): Uint8Array {
    return this.#view.alive;
  }

  get selfIndex(): number {
    return this.#selfIndex;
  }

  get selfState(): NodeState {
    return (this.#nodes.get(this.selfId) as NodeInfo).state;
  }

  get selfStateVersion(): number {
    return this.#selfStateVersion;
  }

  /** Increments on every view change; peers compare it in health replies. */
  get epoch(): number {
    return this.#epoch;
  }

  get lastChangeMs(): number {
    return this.#lastChangeMs;
  }

  onChange(listener: (change: ViewChange) => void): void {
    this.#listeners.push(listener);
  }

  node(id: string): NodeInfo | undefined {
    return this.#nodes.get(id);
  }

  nodes(): NodeInfo[] {
    return [...this.#nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  peers(): NodeInfo[] {
    return this.nodes().filter((n) => n.id !== this.selfId);
  }

  isAlive(id: string): boolean {
    return this.#nodes.get(id)?.state === 'up';
  }

  aliveCount(): number {
    let n = 0;
    for (const info of this.#nodes.values()) if (info.state === 'up') n++;
    return n;
  }

  /** Sets a node's state (this node's own included); announces a view change when routing changes. */
  setState(id: string, state: NodeState, reason: string): void {
    const info = this.#nodes.get(id);
    if (info === undefined || info.state === state) return;
    const wasAlive = info.state === 'up';
    if (id === this.selfId) this.#selfStateVersion++;
    this.#log.info({ node: id, from: info.state, to: state, reason }, 'node state changed');
    info.state = state;
    info.sinceMs = this.#now();
    if (state === 'up') {
      info.failures = 0;
      info.lastError = undefined;
    }
    if (wasAlive !== (state === 'up')) this.#changed(this.#view.ring, `${id} ${state}: ${reason}`);
  }

  /**
   * A peer reported its state (health reply, its own probe, an announcement) with its state
   * version. Older versions than already seen are ignored, and so is a reply to a request sent
   * (`sentAtMs`) before a later failure to reach that peer.
   */
  recordReply(id: string, state: NodeState, version: number, reason: string, sentAtMs?: number): void {
    const info = this.#nodes.get(id);
    if (info === undefined || id === this.selfId) return;
    if (version < info.stateVersion) return;
    if (sentAtMs !== undefined && info.lastFailureMs > sentAtMs) return;
    info.stateVersion = version;
    info.failures = 0;
    info.lastError = undefined;
    this.setState(id, state, reason);
  }

  /**
   * A health check or request failed. A refused connection marks the peer down at once (nothing
   * listens there); other failures count towards `failure_threshold`.
   */
  recordFailure(id: string, message: string, refused: boolean): void {
    const info = this.#nodes.get(id);
    if (info === undefined || id === this.selfId) return;
    info.failures++;
    info.lastError = message;
    info.lastFailureMs = this.#now();
    if (info.state !== 'down' && (refused || info.failures >= this.#failureThreshold)) {
      this.setState(id, 'down', message);
    }
  }

  /** Adds a node learned at run time (a new node announcing itself); true when it was new. */
  addNode(id: string, address: HostPort, state: NodeState = 'down'): boolean {
    const known = this.#nodes.get(id);
    if (known !== undefined) {
      if (formatHostPort(known.address) !== formatHostPort(address)) {
        this.#log.warn(
          { node: id, was: formatHostPort(known.address), now: formatHostPort(address) },
          'node address changed',
        );
        known.address = address;
      }
      return false;
    }
    this.#log.info({ node: id, address: formatHostPort(address) }, 'node joined the ring');
    this.#nodes.set(id, {
      id,
      address,
      state,
      sinceMs: this.#now(),
      failures: 0,
      lastError: undefined,
      lastFailureMs: 0,
      stateVersion: 0,
    });
    this.#changed(this.#buildRing(), `${id} added`);
    return true;
  }

  /** Forgets a node that left for good (an operator's decision); its keys stay with their new owners. */
  removeNode(id: string): boolean {
    if (id === this.selfId || !this.#nodes.has(id)) return false;
    this.#nodes.delete(id);
    this.#changed(this.#buildRing(), `${id} removed`);
    return true;
  }

  /** The alive mask of the current ring with `id` also counted alive (for serving its pull). */
  aliveWith(id: string): Uint8Array {
    const copy = Uint8Array.from(this.#view.alive);
    const idx = this.#view.ring.indexOf(id);
    if (idx !== undefined) copy[idx] = 1;
    return copy;
  }

  /** Each node's share of the key space and the spread of those shares (stddev / mean). */
  ownership(): { shares: Map<string, number>; relativeStdDev: number } {
    const shares = this.#view.ring.ownershipShares();
    return { shares, relativeStdDev: relativeStdDev([...shares.values()]) };
  }

  #buildRing(): HashRing {
    return new HashRing([...this.#nodes.keys()], { virtualNodes: this.#virtualNodes, probes: this.#probes });
  }

  #buildView(ring: HashRing): View {
    const alive = new Uint8Array(ring.size);
    ring.nodeIds.forEach((id, i) => {
      alive[i] = this.#nodes.get(id)?.state === 'up' ? 1 : 0;
    });
    return { ring, alive };
  }

  #changed(ring: HashRing, reason: string): void {
    const before = this.#view;
    this.#view = this.#buildView(ring);
    this.#selfIndex = ring.indexOf(this.selfId) ?? -1;
    this.#epoch++;
    this.#lastChangeMs = this.#now();
    const change: ViewChange = { before, after: this.#view, reason };
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (err) {
        this.#log.error({ err }, 'view change listener failed');
      }
    }
  }
}
