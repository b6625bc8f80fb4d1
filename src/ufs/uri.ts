/**
 * Mount URIs: `s3://bucket/prefix`, `file:///abs/dir`, `http(s)://host[:port]/prefix`. Parsed by
 * hand (not WHATWG URL) so bucket names and paths are taken literally, and checked so that a bad
 * URI is one clear error naming what is allowed. A URI never carries credentials: those travel as
 * mount options and are kept out of every message.
 */
import { FsError } from '../common/errors.js';
import { normaliseUfsPath, ufsPathParts } from './paths.js';
import type { UfsScheme } from './ufs.js';

export const UFS_SCHEMES: readonly UfsScheme[] = ['s3', 'file', 'http', 'https'];

export interface UfsUri {
  scheme: UfsScheme;
  /** s3: the bucket; http(s): host[:port]; file: "". */
  authority: string;
  /** "/"-rooted path under the authority: the S3 key prefix, the local directory, the HTTP path prefix. */
  rootPath: string;
  /** The canonical spelling, e.g. "s3://bucket/a/b" (no trailing slash). */
  uri: string;
}

const URI_HELP = 'expected s3://bucket[/prefix], file:///absolute/dir or http(s)://host[:port][/prefix]';
/** S3 bucket names (lenient: legacy names with capitals and underscores exist on other S3 stores). */
const BUCKET_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const HOST_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

function bad(text: string, why: string): FsError {
  return new FsError('EINVAL', `UFS URI ${JSON.stringify(redactUri(text))}: ${why}`, {
    details: { uri: redactUri(text) },
  });
}

/** Removes any user-info ("user:secret@") so a rejected URI can be quoted safely. */
export function redactUri(text: string): string {
  return text.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, '$1***@');
}

export function parseUfsUri(text: string): UfsUri {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)([?#].*)?$/.exec(text.trim());
  if (m === null) throw bad(text, URI_HELP);
  const scheme = (m[1] ?? '').toLowerCase();
  const authority = m[2] ?? '';
  const rawPath = m[3] ?? '';
  if (!(UFS_SCHEMES as readonly string[]).includes(scheme)) {
    throw bad(text, `unknown scheme "${scheme}" (${URI_HELP})`);
  }
  if (authority.includes('@')) {
    throw bad(text, 'credentials do not belong in the URI: pass them as mount options (-c key=value)');
  }
  if (m[4] !== undefined) throw bad(text, 'query strings and fragments are not allowed');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw bad(text, 'malformed percent-encoding in the path');
  }
  let rootPath: string;
  try {
    rootPath = normaliseUfsPath(decoded === '' ? '/' : decoded);
  } catch (err) {
    throw bad(text, err instanceof Error ? err.message : String(err));
  }
  const s = scheme as UfsScheme;
  if (s === 's3') {
    if (!BUCKET_RE.test(authority)) {
      throw bad(text, 'expected a bucket name of 1-255 letters, digits, ".", "_" or "-" after s3://');
    }
  } else if (s === 'file') {
    if (authority !== '' && authority !== 'localhost') {
      throw bad(text, 'file URIs name a local directory: file:///absolute/dir (no host)');
    }
  } else if (!HOST_RE.test(authority)) {
    throw bad(text, `expected a host name or address after ${s}://`);
  }
  const host = s === 'file' ? '' : authority;
  const encodedPath = rootPath === '/' ? '' : rootPath;
  return { scheme: s, authority: host, rootPath, uri: `${s}://${host}${encodedPath}` };
}

/**
 * Where a URI mounts when no path is given: 1:1 paths, so `s3://bucket/a` mounts at `/bucket/a`,
 * `file:///data/x` at `/data/x` and `http://host:8080/p` at `/host/p`.
 */
export function defaultMountPath(uri: UfsUri): string {
  const parts = ufsPathParts(uri.rootPath);
  if (uri.scheme === 's3') parts.unshift(uri.authority);
  else if (uri.scheme === 'http' || uri.scheme === 'https') {
    const host = uri.authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    parts.unshift(host);
  }
  return parts.length === 0 ? '/' : `/${parts.join('/')}`;
}
