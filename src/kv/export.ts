/**
 * Backup and restore (the seed's `GET /admin/export` and `POST /admin/import`).
 *
 * Export streams one JSON document:
 *   {"format":"strata-kv-export","version":1,"node":…,"scope":…,"exported_at":…,
 *    "entries":[{"key":…,"value":…,"ttl_ms":…},…],"complete":true,"unreachable":[]}
 * With scope "cluster" (default) every up node contributes the keys it is primary for, so each
 * key appears once; scope "node" lists this node's copy of everything it holds. Values keep their
 * JSON type; string bytes that are not UTF-8 are base64 with `"encoding":"base64"`. `ttl_ms` is
 * the time left. `complete` is false (and `unreachable` names the nodes) when a node could not
 * be read.
 *
 * Import takes that document, a plain object `{"key": value, …}`, or an array of
 * `{"key","value","ttl"?}`; every entry is validated first (nothing is written when one is bad),
 * then written through the normal write path, so keys land on their owners with fresh versions.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../common/logging.js';
import type { KvLimits } from './config.js';
import type { KvEngine } from './engine.js';
import { KIND_JSON, KIND_STRING, valueFromJson, valueToJsonText } from './entry.js';
import type { ValueKind } from './entry.js';
import { KvError } from './errors.js';
import { checkKey, checkValueSize, parseTtl } from './limits.js';
import type { Membership } from './membership.js';
import { INTERNAL_PATHS } from './peers.js';
import type { PeerSet } from './peers.js';
import type { Rebalancer } from './rebalancer.js';
import { tupleToRecord } from './wire.js';
import type { RecordTuple } from './wire.js';

export const EXPORT_FORMAT = 'strata-kv-export';
export const EXPORT_VERSION = 1;
/** Writes in flight during an import. */
const IMPORT_CONCURRENCY = 64;
/** Entry problems listed in a rejected import. */
const MAX_LISTED_PROBLEMS = 100;

export interface ExportDeps {
  membership: Membership;
  peers: PeerSet;
  rebalancer: Rebalancer;
  log: Logger;
  timeoutMs: number;
}

/** Streams an export to `res`. */
export async function writeExport(
  res: ServerResponse,
  deps: ExportDeps,
  scope: 'cluster' | 'node',
): Promise<void> {
  const m = deps.membership;
  res.writeHead(200, {
    'content-type': 'application/json; charset=utf-8',
    'content-disposition': `attachment; filename="strata-kv-${m.selfId}.json"`,
  });
  const head = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    node: m.selfId,
    scope,
    exported_at: new Date().toISOString(),
  };
  res.write(`${JSON.stringify(head).slice(0, -1)},"entries":[`);
  let first = true;
  let count = 0;
  const write = async (tuples: RecordTuple[]): Promise<void> => {
    const now = Date.now();
    const parts: string[] = [];
    for (const t of tuples) {
      const rec = tupleToRecord(t);
      if (rec.kind !== KIND_STRING && rec.kind !== KIND_JSON) continue;
      if (rec.expiresAtMs !== 0 && rec.expiresAtMs <= now) continue;
      const { text, base64 } = valueToJsonText(rec.kind, rec.value);
      let line = `{"key":${JSON.stringify(rec.key)},"value":${text}`;
      if (base64) line += ',"encoding":"base64"';
      if (rec.expiresAtMs !== 0) line += `,"ttl_ms":${rec.expiresAtMs - now}`;
      parts.push(`${first ? '\n' : ',\n'}${line}}`);
      first = false;
      count++;
    }
    if (parts.length > 0 && !res.write(parts.join(''))) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    }
  };
  const unreachable: string[] = [];
  await deps.rebalancer.serveDump(scope === 'node' ? 'node' : 'primary', write);
  if (scope === 'cluster') {
    for (const n of m.peers()) {
      if (n.state !== 'up') continue;
      const client = deps.peers.client(n.id);
      if (client === undefined) continue;
      try {
        await client.stream(
          INTERNAL_PATHS.dump,
          { scope: 'primary' },
          (frame) => write(Array.isArray(frame) ? (frame as RecordTuple[]) : []),
          deps.timeoutMs,
        );
      } catch (err) {
        deps.log.warn({ peer: n.id, err: (err as Error).message }, 'export: node could not be read');
        unreachable.push(n.id);
      }
    }
  }
  res.end(
    `\n],"count":${count},"complete":${unreachable.length === 0},"unreachable":${JSON.stringify(unreachable)}}\n`,
  );
}

interface ImportEntry {
  key: string;
  kind: ValueKind;
  bytes: Buffer;
  ttlMs: number;
}

export interface ImportProblem {
  index: number;
  key?: string;
  message: string;
}

/** Validates an import document; throws a 400 listing up to 100 problems when any entry is bad. */
export function parseImport(doc: unknown, limits: KvLimits, defaultTtlMs: number): ImportEntry[] {
  let raw: unknown[];
  if (Array.isArray(doc)) raw = doc;
  else if (typeof doc === 'object' && doc !== null) {
    const d = doc as Record<string, unknown>;
    if (Array.isArray(d.entries)) raw = d.entries;
    else if (d.format !== undefined)
      throw new KvError('STRATA_KV_BAD_REQUEST', 'import: "entries" must be an array');
    else raw = Object.entries(d).map(([key, value]) => ({ key, value }));
  } else {
    throw new KvError(
      'STRATA_KV_BAD_REQUEST',
      'import: expected an export document {"entries":[…]}, an object {"key": value, …} or an array of {"key","value"}',
    );
  }
  const problems: ImportProblem[] = [];
  const out: ImportEntry[] = [];
  raw.forEach((item, index) => {
    try {
      out.push(parseEntry(item, limits, defaultTtlMs));
    } catch (err) {
      const key = typeof item === 'object' && item !== null ? (item as { key?: unknown }).key : undefined;
      problems.push({ index, ...(typeof key === 'string' ? { key } : {}), message: (err as Error).message });
    }
  });
  if (problems.length > 0) {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS);
    const lines = listed.map(
      (p) => `entries[${p.index}]${p.key === undefined ? '' : ` (${JSON.stringify(p.key)})`}: ${p.message}`,
    );
    throw new KvError(
      'STRATA_KV_BAD_REQUEST',
      `import: ${problems.length} of ${raw.length} entries are invalid; nothing was imported:\n${lines.join('\n')}`,
      { details: { problems: listed } },
    );
  }
  return out;
}

function parseEntry(item: unknown, limits: KvLimits, defaultTtlMs: number): ImportEntry {
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    throw new Error('expected an object {"key","value"}');
  const e = item as Record<string, unknown>;
  if (typeof e.key !== 'string') throw new Error('"key" must be a string');
  checkKey(e.key, limits);
  if (!('value' in e)) throw new Error('missing "value"');
  let kind: ValueKind;
  let bytes: Buffer;
  if (e.encoding === 'base64') {
    if (typeof e.value !== 'string') throw new Error('a base64 value must be a string');
    kind = KIND_STRING;
    bytes = Buffer.from(e.value, 'base64');
  } else if (e.encoding !== undefined) {
    throw new Error(`unknown encoding ${JSON.stringify(e.encoding)} (expected "base64")`);
  } else {
    ({ kind, bytes } = valueFromJson(e.value));
  }
  checkValueSize(bytes.length, limits);
  let ttlMs = defaultTtlMs;
  if (e.ttl_ms !== undefined) {
    if (typeof e.ttl_ms !== 'number' || !Number.isInteger(e.ttl_ms) || e.ttl_ms <= 0)
      throw new Error('"ttl_ms" must be a positive integer');
    ttlMs = e.ttl_ms;
  } else if (e.ttl !== undefined) {
    ttlMs = parseTtl(e.ttl);
  }
  return { key: e.key, kind, bytes, ttlMs };
}

/** Writes validated entries through the cluster write path; returns how many were written. */
export async function runImport(engine: KvEngine, entries: readonly ImportEntry[]): Promise<number> {
  let next = 0;
  let written = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const e = entries[next++] as ImportEntry;
      await engine.execute({
        op: 'set',
        key: e.key,
        kind: e.kind,
        value: e.bytes,
        expiresAtMs: e.ttlMs > 0 ? Date.now() + e.ttlMs : 0,
        keepTtl: false,
        nx: false,
        xx: false,
      });
      written++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(IMPORT_CONCURRENCY, entries.length) }, worker));
  return written;
}
