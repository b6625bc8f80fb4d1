/**
 * The set of peer connections: one PeerClient per peer plus two batchers each, one for forwarded
 * operations and one for replicated writes, so concurrent requests to a peer share round trips.
 */
import type { HostPort } from '../common/net.js';
import { formatHostPort } from '../common/net.js';
import { Batcher } from './batcher.js';
import type { WriteRecord } from './entry.js';
import { KvError, isKvErrorCode } from './errors.js';
import { StrataError } from '../common/errors.js';
import { PeerClient } from './peer-client.js';
import { BATCH_BYTES, decodeOutcome, recordToTuple } from './wire.js';
import type { KvOp, OpResult, RecordTuple } from './wire.js';

/** Operations per forwarded or replicated batch. */
const OPS_PER_BATCH = 1024;
/**
 * One batch in flight per peer and kind: batches then apply in the order they were sent (a GET
 * forwarded after a SET of the same key sees it), and under load the next batch simply grows
 * while the current one travels (group commit).
 */
const BATCHES_IN_FLIGHT = 1;
/** Fixed per-item cost on the wire besides key and value (msgpack framing, fields). */
const ITEM_OVERHEAD_BYTES = 48;
/** Requests waiting per peer before new ones are refused as overload. */
const MAX_QUEUED_PER_PEER = 50_000;

export const INTERNAL_PATHS = {
  ops: '/internal/kv/ops',
  replicate: '/internal/kv/replicate',
  pull: '/internal/kv/pull',
  dump: '/internal/kv/dump',
  flush: '/internal/kv/flush',
  health: '/internal/cluster/health',
  leave: '/internal/cluster/leave',
  forget: '/internal/cluster/forget',
} as const;

interface Peer {
  client: PeerClient;
  ops: Batcher<KvOp, OpResult | StrataError>;
  replicate: Batcher<RecordTuple, true>;
}

export class PeerSet {
  readonly #selfId: string;
  readonly #timeoutMs: number;
  readonly #peers = new Map<string, Peer>();

  constructor(selfId: string, timeoutMs: number) {
    this.#selfId = selfId;
    this.#timeoutMs = timeoutMs;
  }

  /** Creates (or re-creates after an address change) the connection to a peer. */
  ensure(id: string, address: HostPort): PeerClient {
    const existing = this.#peers.get(id);
    if (existing !== undefined && formatHostPort(existing.client.address) === formatHostPort(address))
      return existing.client;
    if (existing !== undefined) void existing.client.close();
    const client = new PeerClient(id, address, { timeoutMs: this.#timeoutMs });
    const peer: Peer = {
      client,
      ops: new Batcher<KvOp, OpResult | StrataError>({
        name: `forward to ${id}`,
        maxBatch: OPS_PER_BATCH,
        maxBatchBytes: BATCH_BYTES,
        weigh: (op) => ITEM_OVERHEAD_BYTES + op.key.length + (op.op === 'set' ? op.value.length : 0),
        maxInFlight: BATCHES_IN_FLIGHT,
        maxQueued: MAX_QUEUED_PER_PEER,
        send: async (ops) => {
          const reply = (await client.call(INTERNAL_PATHS.ops, { ops })) as { results?: unknown };
          if (!Array.isArray(reply.results) || reply.results.length !== ops.length) {
            throw new KvError('STRATA_KV_UNAVAILABLE', `peer ${id}: malformed ops reply`);
          }
          // Per-item errors travel as values so one bad key does not fail its batch-mates.
          return reply.results.map((o): OpResult | StrataError => {
            const out = decodeOutcome(o);
            if ('e' in out)
              return isKvErrorCode(out.e) ? new KvError(out.e, out.m) : new StrataError(out.e, out.m);
            return out.r;
          });
        },
      }),
      replicate: new Batcher<RecordTuple, true>({
        name: `replicate to ${id}`,
        maxBatch: OPS_PER_BATCH,
        maxBatchBytes: BATCH_BYTES,
        weigh: (t) => ITEM_OVERHEAD_BYTES + t[0].length + t[2].length,
        maxInFlight: BATCHES_IN_FLIGHT,
        maxQueued: MAX_QUEUED_PER_PEER,
        send: async (records) => {
          await client.call(INTERNAL_PATHS.replicate, { from: this.#selfId, records });
          return records.map(() => true as const);
        },
      }),
    };
    this.#peers.set(id, peer);
    return client;
  }

  client(id: string): PeerClient | undefined {
    return this.#peers.get(id)?.client;
  }

  /** Runs an operation on a peer (as that key's coordinator). */
  async op(id: string, op: KvOp): Promise<OpResult> {
    const peer = this.#need(id);
    const r = await peer.ops.submit(op);
    if (r instanceof StrataError) throw r;
    return r;
  }

  /** Copies one write to a peer; resolves when the peer has applied (or rejected as stale) it. */
  async replicate(id: string, record: WriteRecord): Promise<void> {
    await this.#need(id).replicate.submit(recordToTuple(record));
  }

  remove(id: string): void {
    const p = this.#peers.get(id);
    if (p === undefined) return;
    this.#peers.delete(id);
    void p.client.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.#peers.values()];
    this.#peers.clear();
    await Promise.all(all.map((p) => p.client.close()));
  }

  #need(id: string): Peer {
    const p = this.#peers.get(id);
    if (p === undefined) throw new KvError('STRATA_KV_UNAVAILABLE', `no connection to node ${id}`);
    return p;
  }
}
