/**
 * The KV node's YAML configuration: the seed's keys (`node_id`, `address`, `cluster_nodes`,
 * `cache_size`, `virtual_nodes`) plus memory, replication, TTL, RESP and limits. Every problem is
 * collected and reported at once with its key, the value written and what is allowed (a
 * ConfigError: exit code 2 from the CLI); unknown keys are warnings with a suggestion.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { bool, duration, int, oneOf, size } from '../common/config/fields.js';
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';
import { LOG_LEVELS } from '../common/logging.js';
import type { LogLevel } from '../common/logging.js';
import { formatHostPort, parseHostPort } from '../common/net.js';
import type { HostPort } from '../common/net.js';
import { closest } from '../common/suggest.js';
import { ENTRY_OVERHEAD_BYTES } from './entry.js';
import { MAX_RING_NODES } from './ring.js';

export const DEFAULT_KV_CONFIG_PATH = 'config/node1.yaml';

const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NODE_ID_HELP = 'a node id: 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
const LISTEN_HELP = 'an address to listen on: "host:port" or ":port" (port 1-65535)';
const PEER_HELP = 'a reachable address "host:port" (port 1-65535)';

function listenAddress() {
  return z.string({ error: `expected ${LISTEN_HELP}` }).refine((s) => validPort(parseHostPort(s)), {
    error: `expected ${LISTEN_HELP}`,
  });
}

function peerAddress() {
  return z
    .string({ error: `expected ${PEER_HELP}` })
    .refine((s) => validPort(parseHostPort(s, '')) && parseHostPort(s, '')?.host !== '', {
      error: `expected ${PEER_HELP}`,
    });
}

function validPort(hp: HostPort | undefined): boolean {
  return hp !== undefined && hp.port >= 1 && hp.port <= 65535;
}

const limitsObject = z.object({
  /** Longest key in UTF-8 bytes. */
  max_key_bytes: int(1024, 1, 65536, 'a byte count'),
  /** Largest stored value (JSON text, or the RESP bulk string). */
  max_value_bytes: size('1MB', 1, 512 * 1024 * 1024),
  /** Largest body POST /admin/import accepts. */
  max_import_bytes: size('256MB', 1024, 4 * 1024 * 1024 * 1024),
  /** Most RESP client connections at once; more are refused with an error. */
  max_connections: int(10_000, 1, 1_000_000, 'a connection count'),
  /** Most elements in one RESP command (MSET/MGET arguments). */
  resp_max_array_length: int(65_536, 2, 1_048_576, 'an element count'),
  /** Longest inline (telnet-style) RESP command line. */
  resp_max_inline_bytes: size('64KB', 64, 16 * 1024 * 1024),
});
const limitsSchema = limitsObject.prefault({});

export const kvConfigSchema = z.object({
  node_id: z
    .string({ error: `expected ${NODE_ID_HELP}` })
    .regex(NODE_ID_RE, { error: `expected ${NODE_ID_HELP}` }),
  address: listenAddress(),
  cluster_nodes: z
    .record(z.string(), peerAddress(), { error: 'expected a mapping of node id to "host:port"' })
    .optional(),
  /** Most entries this node holds (the seed's `cache_size`). */
  cache_size: int(10_000, 1, 1_000_000_000, 'an entry count'),
  virtual_nodes: int(150, 1, 4096, 'a count of ring tokens per node'),
  /** Ring probes per key (multi-probe consistent hashing); 1 is the classic ring. */
  hash_probes: int(5, 1, 32, 'a probe count'),
  replicas: int(1, 1, 16, 'a replica count'),
  max_memory: size('256MB', 1024 * 1024),
  /** TTL of writes that give none; 0 keeps them until evicted. */
  default_ttl: duration(0),
  resp_address: listenAddress().optional(),
  health_check_interval: duration('1s', 50),
  health_check_timeout: duration('500ms', 10),
  /** Failed health checks in a row before a peer is marked down. */
  failure_threshold: int(2, 1, 100, 'a count'),
  /** Deadline of one forwarded or replicated request to a peer. */
  request_timeout: duration('2s', 10),
  ttl_sweep_interval: duration('500ms', 10),
  tombstone_ttl: duration('10m', 1000),
  max_tombstones: int(100_000, 100, 100_000_000, 'a count'),
  /** After a membership change, a miss on a key's owner also asks the other candidates this long. */
  settle_window: duration('5s'),
  /** On SIGTERM hand this node's keys to their next owners before exiting. */
  handoff_on_shutdown: bool(true),
  shutdown_grace: duration('10s', 100),
  log_level: oneOf(LOG_LEVELS, 'INFO'),
  limits: limitsSchema,
});

type ParsedKv = z.output<typeof kvConfigSchema>;

export interface KvLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxImportBytes: number;
  maxConnections: number;
  respMaxArrayLength: number;
  respMaxInlineBytes: number;
}

/** The validated configuration with addresses parsed and units resolved (ms, bytes). */
export interface KvConfig {
  nodeId: string;
  listen: HostPort;
  /** Every node of the cluster, this one included, with the address peers reach it at. */
  clusterNodes: ReadonlyMap<string, HostPort>;
  cacheSize: number;
  virtualNodes: number;
  hashProbes: number;
  replicas: number;
  maxMemoryBytes: number;
  defaultTtlMs: number;
  resp: HostPort | undefined;
  healthCheckIntervalMs: number;
  healthCheckTimeoutMs: number;
  failureThreshold: number;
  requestTimeoutMs: number;
  ttlSweepIntervalMs: number;
  tombstoneTtlMs: number;
  maxTombstones: number;
  settleWindowMs: number;
  handoffOnShutdown: boolean;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  limits: KvLimits;
}

export interface LoadedKvConfig {
  config: KvConfig;
  source: string;
  warnings: string[];
}

export function loadKvConfig(path: string, cwd = process.cwd()): LoadedKvConfig {
  const full = resolve(cwd, path);
  let text: string;
  try {
    text = readFileSync(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new ConfigError([{ key: '(file)', message: `cannot read ${full}: ${why}` }], full);
  }
  return parseKvConfigText(text, full);
}

export function parseKvConfigText(text: string, source: string): LoadedKvConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        key: e.linePos === undefined ? '(yaml)' : `(line ${e.linePos[0].line}, column ${e.linePos[0].col})`,
        message: `YAML syntax error: ${(e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '')}`,
      })),
      source,
    );
  }
  const raw: unknown = doc.toJS();
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(
      [
        {
          key: '(root)',
          message: 'expected a mapping of settings such as node_id, address, cluster_nodes',
          value: raw,
        },
      ],
      source,
    );
  }
  // Unknown keys are errors, not warnings: a misspelt `max_memroy` silently running with the
  // default is worse than refusing to start.
  const problems = unknownKeyProblems(raw as Record<string, unknown>);
  const result = kvConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push({
        key: issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.'),
        message: issue.message,
        value: 'input' in issue ? issue.input : undefined,
      });
    }
    // Cross-key checks whose keys are individually valid still run, so one pass lists everything.
    problems.push(
      ...crossKeyProblems(raw as Record<string, unknown>, new Set(problems.map((p) => p.key.split('.')[0]))),
    );
    throw new ConfigError(problems, source);
  }
  const finished = finish(result.data);
  problems.push(...finished.problems);
  if (problems.length > 0) throw new ConfigError(problems, source);
  return { config: finished.config, source, warnings: finished.warnings };
}

function finish(p: ParsedKv): { config: KvConfig; problems: ConfigProblem[]; warnings: string[] } {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const listen = parseHostPort(p.address) as HostPort;
  const nodes = new Map<string, HostPort>();
  if (p.cluster_nodes === undefined) {
    // A node alone: peers (none) would reach it on its own port.
    nodes.set(p.node_id, {
      host: listen.host === '0.0.0.0' || listen.host === '' ? '127.0.0.1' : listen.host,
      port: listen.port,
    });
  } else {
    const seen = new Map<string, string>();
    for (const [id, addr] of Object.entries(p.cluster_nodes)) {
      if (!NODE_ID_RE.test(id)) {
        problems.push({
          key: `cluster_nodes.${id}`,
          message: `bad node id (expected ${NODE_ID_HELP})`,
          value: id,
        });
        continue;
      }
      const hp = parseHostPort(addr, '') as HostPort;
      const canonical = formatHostPort(hp).toLowerCase();
      const dup = seen.get(canonical);
      if (dup !== undefined) {
        problems.push({
          key: `cluster_nodes.${id}`,
          message: `same address as cluster_nodes.${dup} (every node needs its own address)`,
          value: addr,
        });
      }
      seen.set(canonical, id);
      nodes.set(id, hp);
    }
    if (!nodes.has(p.node_id) && problems.length === 0) {
      problems.push({
        key: 'cluster_nodes',
        message: `must list this node's node_id "${p.node_id}" (listed: ${[...nodes.keys()].join(', ') || 'none'})`,
        value: p.cluster_nodes,
      });
    }
    if (nodes.size > MAX_RING_NODES) {
      problems.push({
        key: 'cluster_nodes',
        message: `at most ${MAX_RING_NODES} nodes are supported`,
        value: nodes.size,
      });
    }
  }
  const self = nodes.get(p.node_id);
  if (self !== undefined && self.port !== listen.port) {
    warnings.push(
      `cluster_nodes.${p.node_id} (${formatHostPort(self)}) and address (${p.address}) name different ports: peers reach this node at ${formatHostPort(self)}`,
    );
  }
  if (p.replicas > nodes.size) {
    problems.push({
      key: 'replicas',
      message: `must be at most the number of cluster_nodes (${nodes.size})`,
      value: p.replicas,
    });
  }
  const resp = p.resp_address === undefined ? undefined : (parseHostPort(p.resp_address) as HostPort);
  if (resp !== undefined && resp.port === listen.port) {
    problems.push({
      key: 'resp_address',
      message: `must use a port other than address (${p.address}): both listen on this node`,
      value: p.resp_address,
    });
  }
  const biggestEntry = p.limits.max_key_bytes + p.limits.max_value_bytes + ENTRY_OVERHEAD_BYTES;
  if (biggestEntry > p.max_memory) {
    problems.push({
      key: 'limits.max_value_bytes',
      message: `a largest entry (key + value + ${ENTRY_OVERHEAD_BYTES} bytes) must fit in max_memory (${p.max_memory} bytes)`,
      value: p.limits.max_value_bytes,
    });
  }
  if (p.health_check_timeout > p.request_timeout) {
    warnings.push('health_check_timeout is longer than request_timeout: a slow peer is noticed late');
  }
  const config: KvConfig = {
    nodeId: p.node_id,
    listen,
    clusterNodes: nodes,
    cacheSize: p.cache_size,
    virtualNodes: p.virtual_nodes,
    hashProbes: p.hash_probes,
    replicas: p.replicas,
    maxMemoryBytes: p.max_memory,
    defaultTtlMs: p.default_ttl,
    resp,
    healthCheckIntervalMs: p.health_check_interval,
    healthCheckTimeoutMs: p.health_check_timeout,
    failureThreshold: p.failure_threshold,
    requestTimeoutMs: p.request_timeout,
    ttlSweepIntervalMs: p.ttl_sweep_interval,
    tombstoneTtlMs: p.tombstone_ttl,
    maxTombstones: p.max_tombstones,
    settleWindowMs: p.settle_window,
    handoffOnShutdown: p.handoff_on_shutdown,
    shutdownGraceMs: p.shutdown_grace,
    logLevel: p.log_level,
    limits: {
      maxKeyBytes: p.limits.max_key_bytes,
      maxValueBytes: p.limits.max_value_bytes,
      maxImportBytes: p.limits.max_import_bytes,
      maxConnections: p.limits.max_connections,
      respMaxArrayLength: p.limits.resp_max_array_length,
      respMaxInlineBytes: p.limits.resp_max_inline_bytes,
    },
  };
  return { config, problems, warnings };
}

function unknownKeyProblems(raw: Record<string, unknown>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const unknown = (key: string, known: string[], prefix: string): void => {
    const hint = closest(key, known);
    out.push({
      key: `${prefix}${key}`,
      message: `unknown key${hint === undefined ? '' : ` (did you mean ${prefix}${hint}?)`}; known keys: ${known.join(', ')}`,
    });
  };
  const top = Object.keys(kvConfigSchema.shape);
  for (const [k, v] of Object.entries(raw)) {
    if (!top.includes(k)) unknown(k, top, '');
    else if (k === 'limits' && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const inner = Object.keys(limitsObject.shape);
      for (const lk of Object.keys(v)) if (!inner.includes(lk)) unknown(lk, inner, 'limits.');
    }
  }
  return out;
}

/** Checks between keys, on the raw values, for when some other key failed validation. */
function crossKeyProblems(raw: Record<string, unknown>, failed: Set<string | undefined>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const nodes = raw.cluster_nodes;
  if (failed.has('cluster_nodes') || typeof nodes !== 'object' || nodes === null || Array.isArray(nodes))
    return out;
  const ids = Object.keys(nodes);
  if (!failed.has('node_id') && typeof raw.node_id === 'string' && !ids.includes(raw.node_id)) {
    out.push({
      key: 'cluster_nodes',
      message: `must list this node's node_id "${raw.node_id}" (listed: ${ids.join(', ') || 'none'})`,
      value: nodes,
    });
  }
  if (!failed.has('replicas') && typeof raw.replicas === 'number' && raw.replicas > ids.length) {
    out.push({
      key: 'replicas',
      message: `must be at most the number of cluster_nodes (${ids.length})`,
      value: raw.replicas,
    });
  }
  return out;
}

/** The effective configuration in file form (sizes in bytes, durations in ms), for --check. */
export function describeKvConfig(c: KvConfig): Record<string, unknown> {
  return {
    node_id: c.nodeId,
    address: formatHostPort(c.listen),
    cluster_nodes: Object.fromEntries([...c.clusterNodes].map(([id, hp]) => [id, formatHostPort(hp)])),
    cache_size: c.cacheSize,
    virtual_nodes: c.virtualNodes,
    hash_probes: c.hashProbes,
    replicas: c.replicas,
    max_memory: c.maxMemoryBytes,
    default_ttl: c.defaultTtlMs,
    resp_address: c.resp === undefined ? null : formatHostPort(c.resp),
    health_check_interval: c.healthCheckIntervalMs,
    health_check_timeout: c.healthCheckTimeoutMs,
    failure_threshold: c.failureThreshold,
    request_timeout: c.requestTimeoutMs,
    ttl_sweep_interval: c.ttlSweepIntervalMs,
    tombstone_ttl: c.tombstoneTtlMs,
    max_tombstones: c.maxTombstones,
    settle_window: c.settleWindowMs,
    handoff_on_shutdown: c.handoffOnShutdown,
    shutdown_grace: c.shutdownGraceMs,
    log_level: c.logLevel,
    limits: {
      max_key_bytes: c.limits.maxKeyBytes,
      max_value_bytes: c.limits.maxValueBytes,
      max_import_bytes: c.limits.maxImportBytes,
      max_connections: c.limits.maxConnections,
      resp_max_array_length: c.limits.respMaxArrayLength,
      resp_max_inline_bytes: c.limits.respMaxInlineBytes,
    },
  };
}
