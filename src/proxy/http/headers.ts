/**
 * Header handling shared by the request and response paths: hop-by-hop fields (RFC 9110 §7.6.1)
 * are never forwarded or stored, duplicates are kept (Set-Cookie), and the record form that
 * http-cache-semantics wants is derived on demand.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderPairs } from '../store/types.js';

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Field names the Connection header lists are hop-by-hop too. */
function connectionListed(connection: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  if (connection === undefined) return out;
  for (const v of Array.isArray(connection) ? connection : [connection])
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name !== '') out.add(name);
    }
  return out;
}

/** Raw header list (name, value, name, value...) to pairs without hop-by-hop fields. */
export function endToEndPairs(raw: readonly string[]): HeaderPairs {
  let connection: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2)
    if ((raw[i] as string).toLowerCase() === 'connection') (connection ??= []).push(raw[i + 1] as string);
  const listed = connectionListed(connection);
  const out: HeaderPairs = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out.push([name, raw[i + 1] as string]);
  }
  return out;
}

/** undici's response headers (record of string | string[]) to pairs without hop-by-hop fields. */
export function pairsFromRecord(headers: Record<string, string | string[] | undefined>): HeaderPairs {
  const listed = connectionListed(headers.connection);
  const out: HeaderPairs = [];
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (v === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    if (Array.isArray(v)) for (const one of v) out.push([name, one]);
    else out.push([name, v]);
  }
  return out;
}

/** First value of a field, or all values joined by ", " (RFC 9110 §5.3). */
export function getHeader(pairs: HeaderPairs, name: string): string | undefined {
  let out: string | undefined;
  for (const [k, v] of pairs) {
    if (k !== name) continue;
    out = out === undefined ? v : `${out}, ${v}`;
  }
  return out;
}

/** Pairs to the lower-case record http-cache-semantics reads (values joined). */
export function pairsToRecord(pairs: HeaderPairs): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  return out;
}

/** Node's request headers to a record of joined strings (lower-case names). */
export function requestRecord(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

/** Flattens pairs for `writeHead(status, [k, v, k, v...])`, which keeps duplicates. */
export function flatten(pairs: HeaderPairs): string[] {
  const out: string[] = [];
  for (const [k, v] of pairs) out.push(k, v);
  return out;
}

export function withoutNames(pairs: HeaderPairs, names: ReadonlySet<string>): HeaderPairs {
  return pairs.filter(([k]) => !names.has(k));
}

const COMPRESSIBLE =
  /^(text\/|application\/(json|javascript|xml|x-javascript|ld\+json|manifest\+json|wasm)|image\/svg\+xml)/i;

/** Whether a body is worth compressing on disk: textual and not already content-encoded. */
export function isCompressible(pairs: HeaderPairs): boolean {
  const enc = getHeader(pairs, 'content-encoding');
  if (enc !== undefined && enc.trim().toLowerCase() !== 'identity') return false;
  const type = getHeader(pairs, 'content-type');
  return type !== undefined && COMPRESSIBLE.test(type.trim());
}
