/**
 * The gateway's settings from `[s3_gateway]`: the address, region, users (one key pair, or a
 * credentials file of several), virtual-host domain and size limits. Every problem is one line
 * naming the key and what is allowed.
 */
import { readFileSync } from 'node:fs';
import type { ClusterConfig } from '../../common/config/index.js';
import { StrataError } from '../../common/errors.js';
import { parseHostPort } from '../../common/net.js';

export interface GatewaySettings {
  host: string;
  port: number;
  webPort: number;
  region: string;
  domain: string;
  credentials: Map<string, string>;
  anonymousRead: boolean;
  maxObjectBytes: number;
  maxPartBytes: number;
  keepAliveAfterMs: number;
}

function bad(message: string): StrataError {
  return new StrataError('STRATA_BAD_CONFIG', message);
}

/**
 * Reads a credentials file: one user per line, `ACCESS_KEY SECRET_KEY` (or `ACCESS_KEY:SECRET_KEY`);
 * blank lines and lines starting with '#' are ignored.
 */
export function parseCredentialsFile(text: string, source: string): Map<string, string> {
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = /^(\S+?)(?:\s+|:)(\S+)$/.exec(t);
    if (m === null) {
      throw bad(`${source}:${i + 1}: expected "ACCESS_KEY SECRET_KEY" (or "ACCESS_KEY:SECRET_KEY")`);
    }
    const [, ak = '', sk = ''] = m;
    if (out.has(ak)) throw bad(`${source}:${i + 1}: access key ${ak} is listed twice`);
    out.set(ak, sk);
  });
  return out;
}

export function gatewaySettings(config: ClusterConfig): GatewaySettings {
  const s = config.s3_gateway;
  const hp = parseHostPort(s.listen);
  if (hp === undefined) {
    throw bad(
      `s3_gateway.listen: expected "host:port" such as "0.0.0.0:9900" (got ${JSON.stringify(s.listen)})`,
    );
  }
  const credentials = new Map<string, string>();
  if ((s.access_key === undefined) !== (s.secret_key === undefined)) {
    throw bad('s3_gateway: access_key and secret_key must be set together');
  }
  if (s.access_key !== undefined && s.secret_key !== undefined) credentials.set(s.access_key, s.secret_key);
  if (s.credentials_file !== undefined) {
    let text: string;
    try {
      text = readFileSync(s.credentials_file, 'utf8');
    } catch (err) {
      throw bad(`s3_gateway.credentials_file: cannot read ${s.credentials_file}: ${(err as Error).message}`);
    }
    for (const [ak, sk] of parseCredentialsFile(text, s.credentials_file)) credentials.set(ak, sk);
  }
  if (credentials.size === 0 && !s.anonymous_read) {
    throw bad(
      's3_gateway: no users: set access_key and secret_key, or credentials_file (or anonymous_read = true for a read-only gateway)',
    );
  }
  return {
    host: hp.host,
    port: hp.port,
    webPort: s.web_port,
    region: s.region,
    domain: s.domain.replace(/^\./, '').toLowerCase(),
    credentials,
    anonymousRead: s.anonymous_read,
    maxObjectBytes: s.max_object_size,
    maxPartBytes: s.max_part_size,
    keepAliveAfterMs: s.keepalive_after,
  };
}
