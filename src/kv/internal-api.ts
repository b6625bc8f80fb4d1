/**
 * Node-to-node routes (msgpack bodies; not for clients):
 *   POST /internal/kv/ops         {ops:[…]} → {results:[{r}|{e,m}]}  forwarded operations
 *   POST /internal/kv/replicate   {from, records:[…]} → {applied}    replica copies and handoffs
 *   POST /internal/kv/pull        {target} → frames                  a joining node's records
 *   POST /internal/kv/dump        {scope} → frames                   export
 *   POST /internal/kv/flush       {version}                          FLUSHALL
 *   GET  /internal/cluster/health?from=&addr=   JSON (the seed's peer connectivity check)
 *   POST /internal/cluster/leave  {node_id}                          a node is shutting down
 *   POST /internal/cluster/forget {node_id}                          an operator removed a node
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../common/logging.js';
import { formatHostPort, parseHostPort } from '../common/net.js';
import { sendJson } from '../common/ops-http.js';
import type { OpsHttpServer } from '../common/ops-http.js';
import { StrataError } from '../common/errors.js';
import type { KvConfig } from './config.js';
import type { KvEngine } from './engine.js';
import { KvError } from './errors.js';
import type { HealthReply } from './health.js';
import { FrameWriter, readBody, sendPacked, statusOf } from './http-util.js';
import { NODE_STATES } from './membership.js';
import type { Membership, NodeState } from './membership.js';
import { INTERNAL_PATHS } from './peers.js';
import type { PeerSet } from './peers.js';
import type { Rebalancer } from './rebalancer.js';
import { BATCH_BYTES, decodeOp, tupleToRecord, unpack } from './wire.js';
import type { OpResult, WireOutcome } from './wire.js';

/** Framing of up to MAX_OPS_PER_REQUEST items on top of their keys and values. */
const INTERNAL_BODY_SLACK_BYTES = 512 * 1024;
/** Operations accepted in one forwarded batch. */
const MAX_OPS_PER_REQUEST = 4096;

export interface InternalApiDeps {
  config: KvConfig;
  engine: KvEngine;
  membership: Membership;
  rebalancer: Rebalancer;
  peers: PeerSet;
  log: Logger;
}

export function registerInternalApi(server: OpsHttpServer, d: InternalApiDeps): void {
  // Senders close a batch at BATCH_BYTES, so a body is at most that plus one maximal item.
  const bodyLimit =
    BATCH_BYTES + d.config.limits.maxValueBytes + d.config.limits.maxKeyBytes + INTERNAL_BODY_SLACK_BYTES;

  const packed =
    (handler: (body: Record<string, unknown>, res: ServerResponse) => Promise<void> | void) =>
    async (req: IncomingMessage, res: ServerResponse) => {
      try {
        const raw = unpack(await readBody(req, bodyLimit));
        if (typeof raw !== 'object' || raw === null)
          throw new KvError('STRATA_KV_BAD_REQUEST', 'body must be a msgpack map');
        await handler(raw as Record<string, unknown>, res);
      } catch (err) {
        if (!(err instanceof StrataError)) d.log.error({ err, url: req.url }, 'internal request failed');
        if (res.headersSent) res.destroy();
        else
          sendPacked(res, statusOf(err), {
            e: err instanceof StrataError ? err.code : 'STRATA_INTERNAL',
            m: (err as Error).message,
          });
      }
    };

  // A leaving node takes no new keys: whatever it accepted now might leave with it. Senders
  // treat this answer like an unreachable peer and go to the key's next node.
  const notLeaving = (): void => {
    if (d.membership.selfState === 'leaving') {
      throw new KvError('STRATA_KV_UNAVAILABLE', `node ${d.config.nodeId} is leaving the cluster`);
    }
  };

  server.route(
    'POST',
    INTERNAL_PATHS.ops,
    packed(async (body, res) => {
      notLeaving();
      const ops = body.ops;
      if (!Array.isArray(ops) || ops.length > MAX_OPS_PER_REQUEST) {
        throw new KvError('STRATA_KV_BAD_REQUEST', `ops must be an array of at most ${MAX_OPS_PER_REQUEST}`);
      }
      // Started in order (so two writes of one key in a batch apply in order), awaited together.
      const pending = ops.map((o): Promise<WireOutcome> => {
        try {
          return Promise.resolve(d.engine.executeLocal(decodeOp(o))).then(
            (r: OpResult) => ({ r }),
            (err: unknown) => outcomeOf(err),
          );
        } catch (err) {
          return Promise.resolve(outcomeOf(err));
        }
      });
      sendPacked(res, 200, { results: await Promise.all(pending) });
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.replicate,
    packed((body, res) => {
      notLeaving();
      if (!Array.isArray(body.records))
        throw new KvError('STRATA_KV_BAD_REQUEST', 'records must be an array');
      const records = body.records.map(tupleToRecord);
      sendPacked(res, 200, { applied: d.engine.applyReplicated(records) });
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.pull,
    packed(async (body, res) => {
      if (typeof body.target !== 'string')
        throw new KvError('STRATA_KV_BAD_REQUEST', 'target must be a node id');
      const out = new FrameWriter(res);
      const sent = await d.rebalancer.servePull(body.target, (t) => out.write(t));
      out.end();
      d.log.info({ peer: body.target, records: sent }, 'served pull');
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.dump,
    packed(async (body, res) => {
      const scope = body.scope === 'node' ? 'node' : 'primary';
      const out = new FrameWriter(res);
      await d.rebalancer.serveDump(scope, (t) => out.write(t));
      out.end();
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.flush,
    packed((body, res) => {
      if (typeof body.version !== 'number' || !Number.isSafeInteger(body.version)) {
        throw new KvError('STRATA_KV_BAD_REQUEST', 'version must be an integer');
      }
      d.engine.applyFlush(body.version);
      sendPacked(res, 200, { ok: true });
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.leave,
    packed((body, res) => {
      if (typeof body.node_id !== 'string' || typeof body.state_version !== 'number') {
        throw new KvError('STRATA_KV_BAD_REQUEST', 'node_id must be a string and state_version a number');
      }
      d.membership.recordReply(body.node_id, 'leaving', body.state_version, 'node announced shutdown');
      sendPacked(res, 200, { ok: true });
    }),
  );

  server.route(
    'POST',
    INTERNAL_PATHS.forget,
    packed((body, res) => {
      if (typeof body.node_id !== 'string')
        throw new KvError('STRATA_KV_BAD_REQUEST', 'node_id must be a string');
      if (body.node_id !== d.config.nodeId && !d.membership.isAlive(body.node_id)) {
        d.membership.removeNode(body.node_id);
        d.peers.remove(body.node_id);
      }
      sendPacked(res, 200, { ok: true });
    }),
  );

  server.route('GET', INTERNAL_PATHS.health, (req, res) => {
    const q = new URL(req.url ?? '', 'http://x').searchParams;
    const from = q.get('from');
    const addr = q.get('addr');
    // A node we have not heard of announces itself: add it to the ring (it starts as down and
    // is probed like the others).
    if (from !== null && addr !== null && from !== d.config.nodeId && d.membership.node(from) === undefined) {
      const hp = parseHostPort(addr, '');
      if (hp !== undefined && hp.host !== '' && hp.port > 0) {
        if (d.membership.addNode(from, hp)) d.peers.ensure(from, hp);
      }
    }
    // The prober's own state: a node that says it is up (it answered its probe to us, so it is
    // reachable) is taken as up now rather than at our next probe of it.
    const state = q.get('state');
    const version = Number(q.get('v'));
    if (
      from !== null &&
      from !== d.config.nodeId &&
      state !== null &&
      (NODE_STATES as readonly string[]).includes(state) &&
      Number.isSafeInteger(version)
    ) {
      d.membership.recordReply(from, state as NodeState, version, 'its health check arrived');
    }
    const reply: HealthReply = {
      node_id: d.config.nodeId,
      state: d.membership.selfState,
      address: formatHostPort(d.config.clusterNodes.get(d.config.nodeId) ?? d.config.listen),
      epoch: d.membership.epoch,
      flush_version: d.engine.store.floorVersion,
      state_version: d.membership.selfStateVersion,
      keys: d.engine.store.count,
      bytes: d.engine.store.bytes,
      nodes: Object.fromEntries(d.membership.nodes().map((n) => [n.id, formatHostPort(n.address)])),
    };
    sendJson(res, 200, reply);
  });
}

function outcomeOf(err: unknown): WireOutcome {
  if (err instanceof StrataError) return { e: err.code, m: err.message };
  return { e: 'STRATA_INTERNAL', m: (err as Error).message };
}
