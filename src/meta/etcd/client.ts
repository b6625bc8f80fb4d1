/**
 * Opening an etcd client from the `[etcd]` configuration: endpoints as `host:port` or URLs, TLS
 * from files, user and password, a dial timeout, a deadline on every request, and no automatic
 * retries inside the client library: a commit must never be re-sent blindly (the engine decides
 * what is safe to repeat), and a host is not shut out for seconds after a few failures.
 */
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import type { IOptions } from 'etcd3';
import { StrataError } from '../../common/errors.js';
import { ETCD_MAX_RECEIVE_BYTES, ETCD_REQUEST_TIMEOUT_MS } from './limits.js';

export interface EtcdClientConfig {
  /** `host:port`, `http://host:port` or `https://host:port`; at least one. */
  endpoints: readonly string[];
  dialTimeoutMs?: number;
  requestTimeoutMs?: number;
  username?: string | undefined;
  password?: string | undefined;
  /** PEM files: the CA that signed etcd's certificate, and our client certificate and key. */
  tlsCa?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** A policy that runs the call once: failures reach the engine, which knows what may be repeated. */
const once = {
  execute: (fn: (ctx: { signal: AbortSignal; attempt: number }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 1 })),
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
} as unknown as Policy;

export function createEtcdClient(cfg: EtcdClientConfig): Etcd3 {
  if (cfg.endpoints.length === 0)
    throw new StrataError('STRATA_BAD_CONFIG', 'etcd.endpoints: at least one endpoint is required');
  const tls = cfg.tlsCa !== undefined || cfg.tlsCert !== undefined || cfg.tlsKey !== undefined;
  if ((cfg.tlsCert === undefined) !== (cfg.tlsKey === undefined))
    throw new StrataError(
      'STRATA_BAD_CONFIG',
      'etcd.tls_cert and etcd.tls_key go together (give both or neither)',
    );
  if ((cfg.username === undefined) !== (cfg.password === undefined))
    throw new StrataError(
      'STRATA_BAD_CONFIG',
      'etcd.username and etcd.password go together (give both or neither)',
    );
  const hosts = cfg.endpoints.map((e, i) => endpointUrl(e, i, tls));
  const requestTimeoutMs = cfg.requestTimeoutMs ?? ETCD_REQUEST_TIMEOUT_MS;
  const options: IOptions = {
    hosts,
    dialTimeout: cfg.dialTimeoutMs ?? 5000,
    grpcOptions: { 'grpc.max_receive_message_length': ETCD_MAX_RECEIVE_BYTES },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    faultHandling: { global: once, host: () => once },
  };
  if (tls) {
    options.credentials = {
      rootCertificate: readPem('etcd.tls_ca', cfg.tlsCa),
      ...(cfg.tlsKey === undefined ? {} : { privateKey: readPem('etcd.tls_key', cfg.tlsKey) }),
      ...(cfg.tlsCert === undefined ? {} : { certChain: readPem('etcd.tls_cert', cfg.tlsCert) }),
    };
  }
  if (cfg.username !== undefined && cfg.password !== undefined)
    options.auth = { username: cfg.username, password: cfg.password };
  return new Etcd3(options);
}

function endpointUrl(e: string, i: number, tls: boolean): string {
  const m = /^(?:(https?):\/\/)?([^/:\s]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\/?$/.exec(e.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port > 0 && port < 65536))
    throw new StrataError(
      'STRATA_BAD_CONFIG',
      `etcd.endpoints[${i}]: "${e}" is not an endpoint (expected host:port, http://host:port or https://host:port)`,
    );
  const scheme = m[1] ?? (tls ? 'https' : 'http');
  if (scheme === 'https' && !tls)
    throw new StrataError(
      'STRATA_BAD_CONFIG',
      `etcd.endpoints[${i}]: "${e}" uses https but no etcd.tls_ca is set (the CA that signed etcd's certificate)`,
    );
  return `${scheme}://${m[2] as string}:${port}`;
}

function readPem(key: string, path: string | undefined): Buffer {
  if (path === undefined)
    throw new StrataError('STRATA_BAD_CONFIG', `${key}: required with TLS (a PEM file)`);
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new StrataError('STRATA_BAD_CONFIG', `${key}: cannot read ${path} (${code})`, { cause: err });
  }
}
