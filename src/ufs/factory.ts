/**
 * Opening a UFS from a mount URI and its options: the one place that knows which engine serves
 * which scheme. Options are checked before any engine is built, so a typo fails fast with the list
 * of allowed keys.
 */
import type { Logger } from '../common/logging.js';
import type { Registry } from '../common/metrics.js';
import { HttpUfs } from './http/http-ufs.js';
import { InstrumentedUfs } from './instrumented.js';
import { LocalUfs } from './local/local-ufs.js';
import { UfsMetrics } from './metrics.js';
import { parseHttpOptions, parseLocalOptions, parseS3Options } from './options.js';
import type { RawUfsOptions } from './options.js';
import { S3Ufs } from './s3/s3-ufs.js';
import type { UnderFileSystem } from './ufs.js';
import { parseUfsUri } from './uri.js';
import type { UfsUri } from './uri.js';

export interface OpenUfsOptions {
  /** Records strata_ufs_* metrics on this registry. */
  registry?: Registry;
  /** Where an engine reports a change of course worth an operator's eye (a fallback taken for good). */
  log?: Logger;
}

/** Checks a URI and its options without opening anything (for `mount --dry-run` and validation). */
export function validateUfs(uri: string | UfsUri, options: RawUfsOptions): UfsUri {
  const u = typeof uri === 'string' ? parseUfsUri(uri) : uri;
  if (u.scheme === 's3') parseS3Options(options);
  else if (u.scheme === 'file') parseLocalOptions(options);
  else parseHttpOptions(u.scheme, options);
  return u;
}

export function openUfs(
  uri: string | UfsUri,
  options: RawUfsOptions = {},
  deps: OpenUfsOptions = {},
): UnderFileSystem {
  const u = typeof uri === 'string' ? parseUfsUri(uri) : uri;
  let ufs: UnderFileSystem;
  if (u.scheme === 's3') ufs = new S3Ufs(u, parseS3Options(options), deps.log);
  else if (u.scheme === 'file') ufs = new LocalUfs(u, parseLocalOptions(options));
  else ufs = new HttpUfs(u, parseHttpOptions(u.scheme, options));
  return deps.registry === undefined ? ufs : new InstrumentedUfs(ufs, UfsMetrics.for(deps.registry));
}
