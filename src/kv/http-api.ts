/**
 * The seed's HTTP API on the node's `address`:
 *   PUT    /api/v1/cache/:key   {"value": <any JSON>, "ttl"?: seconds | "10s"}
 *   GET    /api/v1/cache/:key   200 {"key","value"[,"ttl_ms"]} | 404
 *   DELETE /api/v1/cache/:key   200 {"key","deleted":true} | 404
 *   GET    /api/v1/health       200 while up, 503 while joining or leaving
 *   GET    /admin/cluster       nodes, states, ring ownership, key counts
 *   GET    /admin/metrics       Prometheus text (same as /metrics)
 *   GET    /admin/export        JSON backup (see export.ts);  POST /admin/import restores one
 *   GET    /admin/locate?key=k  the key's owners (home and alive)
 *   DELETE /admin/cluster/nodes/:id   forget a node that left for good
 * A key is everything after /api/v1/cache/, percent-decoded (so it may contain "/").
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { formatHostPort } from '../common/net.js';
import { sendJson } from '../common/ops-http.js';
import type { OpsHttpServer } from '../common/ops-http.js';
import type { KvConfig } from './config.js';
import type { KvEngine } from './engine.js';
import { valueFromJson, valueToJsonText } from './entry.js';
import { KvError } from './errors.js';
import { parseImport, runImport, writeExport } from './export.js';
import type { HealthChecker } from './health.js';
import { readBody, sendKvError } from './http-util.js';
import { checkKey, checkValueSize, parseTtl } from './limits.js';
import type { Membership } from './membership.js';
import { KvMetrics } from './metrics.js';
import { INTERNAL_PATHS } from './peers.js';
import type { PeerSet } from './peers.js';
import type { Rebalancer } from './rebalancer.js';
import { HashRing, relativeStdDev } from './ring.js';
import { STRATA_VERSION } from '../common/version.js';

export const CACHE_PREFIX = '/api/v1/cache/';
/** JSON escaping can grow a value up to 6x; bodies may be this many times max_value_bytes (+64 KiB). */
const BODY_TO_VALUE_RATIO = 2;
const BODY_SLACK_BYTES = 64 * 1024;

export interface HttpApiDeps {
  config: KvConfig;
  engine: KvEngine;
  membership: Membership;
  health: HealthChecker;
  rebalancer: Rebalancer;
  peers: PeerSet;
  metrics: KvMetrics;
  registry: Registry;
  log: Logger;
  startedAtMs: number;
}

export function registerHttpApi(server: OpsHttpServer, d: HttpApiDeps): void {
  const bodyLimit =
    d.config.limits.maxValueBytes * BODY_TO_VALUE_RATIO + d.config.limits.maxKeyBytes + BODY_SLACK_BYTES;

  const keyRoute =
    (method: 'GET' | 'PUT' | 'DELETE') => async (req: IncomingMessage, res: ServerResponse) => {
      const start = KvMetrics.now();
      const op = method === 'GET' ? 'get' : method === 'PUT' ? 'set' : 'del';
      try {
        const key = keyFromUrl(req.url ?? '');
        checkKey(key, d.config.limits);
        if (method === 'GET') await getKey(res, d, key);
        else if (method === 'PUT') await putKey(req, res, d, key, bodyLimit);
        else await deleteKey(res, d, key);
        d.metrics.request('http', op, start, true);
      } catch (err) {
        if (err instanceof KvError) d.metrics.error(err.code);
        else d.log.error({ err, url: req.url }, 'request failed');
        d.metrics.request('http', op, start, false);
        sendKvError(res, err);
      }
    };
  server.prefixRoute('GET', CACHE_PREFIX, keyRoute('GET'));
  server.prefixRoute('PUT', CACHE_PREFIX, keyRoute('PUT'));
  server.prefixRoute('DELETE', CACHE_PREFIX, keyRoute('DELETE'));
  for (const method of ['POST', 'PATCH', 'HEAD', 'OPTIONS']) {
    server.prefixRoute(method, CACHE_PREFIX, (_req, res) => {
      res.setHeader('allow', 'GET, PUT, DELETE');
      sendKvError(
        res,
        new KvError(
          'STRATA_KV_METHOD_NOT_ALLOWED',
          `${method} is not supported on ${CACHE_PREFIX}:key (allowed: GET, PUT, DELETE)`,
        ),
      );
    });
  }
  // The bare prefix (no key) is a client mistake worth a clear answer rather than "no route".
  for (const method of ['GET', 'PUT', 'DELETE']) {
    server.route(method, CACHE_PREFIX.slice(0, -1), (_req, res) => {
      sendKvError(res, new KvError('STRATA_KV_BAD_KEY', `missing key: use ${CACHE_PREFIX}<key>`));
    });
  }

  server.route('GET', '/api/v1/health', (_req, res) => {
    const state = d.membership.selfState;
    sendJson(res, state === 'up' ? 200 : 503, {
      status: state === 'up' ? 'healthy' : state,
      node_id: d.config.nodeId,
      state,
      address: formatHostPort(d.config.listen),
      version: STRATA_VERSION,
      uptime_s: Math.round((Date.now() - d.startedAtMs) / 1000),
      keys: d.engine.store.count,
      cluster: { nodes: d.membership.nodes().length, up: d.membership.aliveCount() },
    });
  });

  server.route('GET', '/admin/cluster', (_req, res) => sendJson(res, 200, clusterInfo(d)));

  server.route('GET', '/admin/metrics', async (_req, res) => {
    const body = await d.registry.metrics();
    res.writeHead(200, { 'content-type': d.registry.contentType });
    res.end(body);
  });

  server.route('GET', '/admin/locate', (req, res) => {
    try {
      const key = new URL(req.url ?? '', 'http://x').searchParams.get('key');
      if (key === null) throw new KvError('STRATA_KV_BAD_KEY', 'missing ?key=');
      checkKey(key, d.config.limits);
      const hash = HashRing.hashKey(key);
      sendJson(res, 200, {
        key,
        hash,
        home: d.engine.homeOwners(key, hash),
        alive: d.engine.liveOwners(key, hash),
        held_here: d.engine.store.peek(key) !== undefined,
      });
    } catch (err) {
      sendKvError(res, err);
    }
  });

  server.route('GET', '/admin/export', async (req, res) => {
    const scopeParam = new URL(req.url ?? '', 'http://x').searchParams.get('scope') ?? 'cluster';
    if (scopeParam !== 'cluster' && scopeParam !== 'node') {
      sendKvError(
        res,
        new KvError(
          'STRATA_KV_BAD_REQUEST',
          `scope: expected "cluster" or "node" (got ${JSON.stringify(scopeParam)})`,
        ),
      );
      return;
    }
    await writeExport(
      res,
      {
        membership: d.membership,
        peers: d.peers,
        rebalancer: d.rebalancer,
        log: d.log,
        timeoutMs: d.config.requestTimeoutMs,
      },
      scopeParam,
    );
  });

  server.route('POST', '/admin/import', async (req, res) => {
    try {
      const body = await readBody(
        req,
        d.config.limits.maxImportBytes,
        'STRATA_KV_BODY_TOO_LARGE',
        'import body (limits.max_import_bytes)',
      );
      const doc = parseJson(body);
      const entries = parseImport(doc, d.config.limits, d.config.defaultTtlMs);
      const imported = await runImport(d.engine, entries);
      d.log.info({ imported }, 'import done');
      sendJson(res, 200, { imported });
    } catch (err) {
      sendKvError(res, err);
    }
  });

  server.prefixRoute('DELETE', '/admin/cluster/nodes/', async (req, res) => {
    try {
      const id = decodeURIComponent(
        (req.url ?? '').split('?')[0]?.slice('/admin/cluster/nodes/'.length) ?? '',
      );
      const info = d.membership.node(id);
      if (info === undefined)
        throw new KvError('STRATA_KV_NOT_FOUND', `no node ${JSON.stringify(id)} in the cluster`);
      if (id === d.config.nodeId)
        throw new KvError('STRATA_KV_BAD_REQUEST', 'a node cannot forget itself; stop it instead');
      if (info.state === 'up')
        throw new KvError('STRATA_KV_BAD_REQUEST', `node ${id} is up; stop it before forgetting it`);
      d.membership.removeNode(id);
      d.peers.remove(id);
      // Tell the others too; a node that misses it keeps the entry as "down" (harmless).
      await Promise.all(
        d.membership.peers().map(async (n) => {
          await d.peers
            .client(n.id)
            ?.call(INTERNAL_PATHS.forget, { node_id: id })
            .catch(() => undefined);
        }),
      );
      sendJson(res, 200, { forgotten: id });
    } catch (err) {
      sendKvError(res, err);
    }
  });
}

async function getKey(res: ServerResponse, d: HttpApiDeps, key: string): Promise<void> {
  const r = await d.engine.execute({ op: 'get', key });
  const v = r.value;
  if (v === undefined || v === null)
    throw new KvError('STRATA_KV_NOT_FOUND', `key ${JSON.stringify(key)} not found`);
  const { text, base64 } = valueToJsonText(v.kind, v.bytes);
  let body = `{"key":${JSON.stringify(key)},"value":${text}`;
  if (base64) body += ',"encoding":"base64"';
  if (v.expiresAtMs !== 0) body += `,"ttl_ms":${Math.max(0, v.expiresAtMs - Date.now())}`;
  body += '}';
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function putKey(
  req: IncomingMessage,
  res: ServerResponse,
  d: HttpApiDeps,
  key: string,
  bodyLimit: number,
): Promise<void> {
  const body = await readBody(
    req,
    bodyLimit,
    'STRATA_KV_BODY_TOO_LARGE',
    `request body (limit derived from limits.max_value_bytes)`,
  );
  const doc = parseJson(body);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KvError(
      'STRATA_KV_BAD_REQUEST',
      'request body must be a JSON object such as {"value": "hello"}',
    );
  }
  const o = doc as Record<string, unknown>;
  if (!('value' in o))
    throw new KvError(
      'STRATA_KV_MISSING_VALUE',
      'request body has no "value" field (expected {"value": <any JSON>})',
    );
  const { kind, bytes } = valueFromJson(o.value);
  checkValueSize(bytes.length, d.config.limits);
  const ttlMs = o.ttl === undefined || o.ttl === null ? d.config.defaultTtlMs : parseTtl(o.ttl);
  const r = await d.engine.execute({
    op: 'set',
    key,
    kind,
    value: bytes,
    expiresAtMs: ttlMs > 0 ? Date.now() + ttlMs : 0,
    keepTtl: false,
    nx: false,
    xx: false,
  });
  sendJson(res, 200, { key, stored: r.ok === true, ...(ttlMs > 0 ? { ttl_ms: ttlMs } : {}) });
}

async function deleteKey(res: ServerResponse, d: HttpApiDeps, key: string): Promise<void> {
  const r = await d.engine.execute({ op: 'del', key });
  if (r.ok !== true) throw new KvError('STRATA_KV_NOT_FOUND', `key ${JSON.stringify(key)} not found`);
  sendJson(res, 200, { key, deleted: true });
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0)
    throw new KvError(
      'STRATA_KV_BAD_JSON',
      'request body is empty (expected JSON such as {"value": "hello"})',
    );
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new KvError('STRATA_KV_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** The key from the raw request URL (not the normalised one: "a/../b" is a valid key). */
export function keyFromUrl(rawUrl: string): string {
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const encoded = path.slice(CACHE_PREFIX.length);
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new KvError(
      'STRATA_KV_BAD_KEY',
      `key is not valid percent-encoded UTF-8: ${JSON.stringify(encoded)}`,
    );
  }
}

function clusterInfo(d: HttpApiDeps): Record<string, unknown> {
  const own = d.membership.ownership();
  const stats = d.health.stats;
  const nodes = d.membership.nodes().map((n) => {
    const self = n.id === d.config.nodeId;
    const keys = self ? d.engine.store.count : (stats.get(n.id)?.keys ?? null);
    return {
      id: n.id,
      address: formatHostPort(n.address),
      state: n.state,
      self,
      ownership: Number((own.shares.get(n.id) ?? 0).toFixed(4)),
      keys,
      since: new Date(n.sinceMs).toISOString(),
      last_error: n.lastError ?? null,
    };
  });
  const upKeys = nodes
    .filter((n) => n.state === 'up' && typeof n.keys === 'number')
    .map((n) => n.keys as number);
  return {
    node_id: d.config.nodeId,
    state: d.membership.selfState,
    epoch: d.membership.epoch,
    replicas: d.config.replicas,
    virtual_nodes: d.config.virtualNodes,
    hash_probes: d.config.hashProbes,
    nodes,
    distribution: {
      ownership_stddev_ratio: Number(own.relativeStdDev.toFixed(4)),
      keys_stddev_ratio: Number(relativeStdDev(upKeys).toFixed(4)),
    },
    handoff_pending: d.rebalancer.pending,
  };
}
