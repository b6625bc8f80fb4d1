/**
 * Mount options (`strata mount <uri> <path> -c key=value`): the keys each scheme accepts, their
 * parsing, and which are secret. Values arrive as strings (from the CLI or a stored mount) and are
 * checked here once, so an engine receives typed options and a typo is a clear error naming the
 * allowed keys. Secret values are masked whenever options are shown.
 */
import { FsError } from '../common/errors.js';
import { closest } from '../common/suggest.js';
import { DURATION_HELP, SIZE_HELP, parseDuration, parseSize } from '../common/units.js';
import {
  DEFAULT_S3_PART_SIZE_BYTES,
  DEFAULT_S3_UPLOAD_CONCURRENCY,
  DEFAULT_UFS_CONNECT_TIMEOUT_MS,
  DEFAULT_UFS_MAX_ATTEMPTS,
  DEFAULT_UFS_REQUEST_TIMEOUT_MS,
  MAX_S3_PART_SIZE_BYTES,
  MAX_S3_UPLOAD_CONCURRENCY,
  MAX_UFS_MAX_ATTEMPTS,
  MIN_S3_PART_SIZE_BYTES,
} from './limits.js';
import type { UfsScheme } from './ufs.js';

export type RawUfsOptions = Readonly<Record<string, string>>;

/** Options every engine takes. */
export interface CommonUfsOptions {
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxAttempts: number;
}

export interface S3UfsOptions extends CommonUfsOptions {
  endpointUrl: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  /** Object GETs signed and sent without the SDK's middleware (see s3/s3-direct-get.ts). */
  directGet: boolean;
  partSizeBytes: number;
  uploadConcurrency: number;
}

export interface HttpUfsOptions extends CommonUfsOptions {
  /** Extra request headers (e.g. Authorization); their values are secret. */
  headers: Record<string, string>;
}

export type LocalUfsOptions = CommonUfsOptions;

const HTTP_HEADER_PREFIX = 'http.header.';
/** A header name as RFC 9110 allows it (token characters). */
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

interface OptionSpec {
  schemes: readonly UfsScheme[];
  secret: boolean;
  /** What the value must be, for the error message. */
  help: string;
}

const ALL: readonly UfsScheme[] = ['s3', 'file', 'http', 'https'];
const HTTP: readonly UfsScheme[] = ['http', 'https'];

/** Every fixed option key. `http.header.<Name>` is accepted besides these for http(s). */
export const UFS_OPTION_SPECS: Readonly<Record<string, OptionSpec>> = {
  'ufs.connect_timeout': { schemes: ALL, secret: false, help: DURATION_HELP },
  'ufs.request_timeout': { schemes: ALL, secret: false, help: DURATION_HELP },
  'ufs.max_attempts': { schemes: ALL, secret: false, help: `an integer from 1 to ${MAX_UFS_MAX_ATTEMPTS}` },
  's3.endpoint_url': { schemes: ['s3'], secret: false, help: 'an http:// or https:// URL' },
  's3.region_name': { schemes: ['s3'], secret: false, help: 'a region name such as us-east-1' },
  's3.credentials.access': { schemes: ['s3'], secret: true, help: 'an access key id' },
  's3.credentials.secret': { schemes: ['s3'], secret: true, help: 'a secret access key' },
  's3.force.path.style': { schemes: ['s3'], secret: false, help: 'true or false' },
  's3.direct.get': { schemes: ['s3'], secret: false, help: 'true or false' },
  's3.part.size': {
    schemes: ['s3'],
    secret: false,
    help: `${SIZE_HELP}, from 5MB to 5GB`,
  },
  's3.upload.concurrency': {
    schemes: ['s3'],
    secret: false,
    help: `an integer from 1 to ${MAX_S3_UPLOAD_CONCURRENCY}`,
  },
};

/** Key names whose values are secret even when not listed (defence in depth for future keys). */
const SECRET_WORDS = /secret|password|token|credential|authorization|cookie/i;

export function isSecretUfsOption(key: string): boolean {
  if (key.startsWith(HTTP_HEADER_PREFIX)) return true;
  return UFS_OPTION_SPECS[key]?.secret ?? SECRET_WORDS.test(key);
}

/** A copy safe to print or log: secret values replaced by "***". */
export function maskUfsOptions(raw: RawUfsOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = isSecretUfsOption(k) ? '***' : v;
  return out;
}

function invalid(key: string, value: string, help: string): FsError {
  const shown = isSecretUfsOption(key) ? '***' : JSON.stringify(value);
  return new FsError('EINVAL', `mount option ${key}: expected ${help} (got ${shown})`, { details: { key } });
}

/** Rejects keys the scheme does not know, with a suggestion and the allowed list. */
export function checkUfsOptionKeys(scheme: UfsScheme, raw: RawUfsOptions): void {
  const allowed = Object.entries(UFS_OPTION_SPECS)
    .filter(([, spec]) => spec.schemes.includes(scheme))
    .map(([k]) => k);
  for (const key of Object.keys(raw)) {
    if (allowed.includes(key)) continue;
    if (HTTP.includes(scheme) && key.startsWith(HTTP_HEADER_PREFIX)) {
      const name = key.slice(HTTP_HEADER_PREFIX.length);
      if (!HEADER_NAME_RE.test(name)) {
        throw new FsError('EINVAL', `mount option ${key}: expected http.header.<Header-Name>`, {
          details: { key },
        });
      }
      continue;
    }
    const known = UFS_OPTION_SPECS[key];
    if (known !== undefined) {
      throw new FsError(
        'EINVAL',
        `mount option ${key} does not apply to ${scheme}:// (it is for ${known.schemes.join(', ')})`,
        { details: { key } },
      );
    }
    const guess = closest(key, allowed) ?? allowed.find((k) => k.startsWith(key) || key.startsWith(k));
    const extra = HTTP.includes(scheme) ? ', http.header.<Name>' : '';
    throw new FsError(
      'EINVAL',
      `unknown mount option ${key} for ${scheme}://${guess === undefined ? '' : ` (did you mean ${guess}?)`}; allowed: ${allowed.join(', ')}${extra}`,
      { details: { key } },
    );
  }
}

function durationOpt(raw: RawUfsOptions, key: string, def: number, minMs: number): number {
  const v = raw[key];
  if (v === undefined) return def;
  const n = parseDuration(v);
  if (n === undefined || n < minMs) throw invalid(key, v, `${DURATION_HELP}, at least ${minMs} ms`);
  return n;
}

function intOpt(raw: RawUfsOptions, key: string, def: number, min: number, max: number): number {
  const v = raw[key];
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw invalid(key, v, `an integer from ${min} to ${max}`);
  return n;
}

function sizeOpt(raw: RawUfsOptions, key: string, def: number, min: number, max: number): number {
  const v = raw[key];
  if (v === undefined) return def;
  const n = parseSize(v);
  if (n === undefined || n < min || n > max) throw invalid(key, v, UFS_OPTION_SPECS[key]?.help ?? SIZE_HELP);
  return n;
}

function boolOpt(raw: RawUfsOptions, key: string, def: boolean): boolean {
  const v = raw[key];
  if (v === undefined) return def;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === '1' || t === 'yes') return true;
  if (t === 'false' || t === '0' || t === 'no') return false;
  throw invalid(key, v, 'true or false');
}

function commonOptions(raw: RawUfsOptions): CommonUfsOptions {
  return {
    connectTimeoutMs: durationOpt(raw, 'ufs.connect_timeout', DEFAULT_UFS_CONNECT_TIMEOUT_MS, 10),
    requestTimeoutMs: durationOpt(raw, 'ufs.request_timeout', DEFAULT_UFS_REQUEST_TIMEOUT_MS, 10),
    maxAttempts: intOpt(raw, 'ufs.max_attempts', DEFAULT_UFS_MAX_ATTEMPTS, 1, MAX_UFS_MAX_ATTEMPTS),
  };
}

export function parseS3Options(raw: RawUfsOptions): S3UfsOptions {
  checkUfsOptionKeys('s3', raw);
  const endpointUrl = raw['s3.endpoint_url'];
  if (endpointUrl !== undefined && !/^https?:\/\/[^/\s@]+(\/\S*)?$/i.test(endpointUrl)) {
    throw invalid('s3.endpoint_url', endpointUrl, 'an http:// or https:// URL without credentials');
  }
  const access = raw['s3.credentials.access'];
  const secret = raw['s3.credentials.secret'];
  if ((access === undefined) !== (secret === undefined)) {
    throw new FsError(
      'EINVAL',
      'mount options s3.credentials.access and s3.credentials.secret go together: give both or neither (neither = the AWS default credential chain)',
    );
  }
  const region = raw['s3.region_name'] ?? 'us-east-1';
  if (!/^[a-z0-9-]{1,64}$/i.test(region))
    throw invalid('s3.region_name', region, 'a region name such as us-east-1');
  return {
    ...commonOptions(raw),
    endpointUrl: endpointUrl?.replace(/\/+$/, ''),
    region,
    accessKeyId: access,
    secretAccessKey: secret,
    forcePathStyle: boolOpt(raw, 's3.force.path.style', true),
    directGet: boolOpt(raw, 's3.direct.get', true),
    partSizeBytes: sizeOpt(
      raw,
      's3.part.size',
      DEFAULT_S3_PART_SIZE_BYTES,
      MIN_S3_PART_SIZE_BYTES,
      MAX_S3_PART_SIZE_BYTES,
    ),
    uploadConcurrency: intOpt(
      raw,
      's3.upload.concurrency',
      DEFAULT_S3_UPLOAD_CONCURRENCY,
      1,
      MAX_S3_UPLOAD_CONCURRENCY,
    ),
  };
}

export function parseHttpOptions(scheme: 'http' | 'https', raw: RawUfsOptions): HttpUfsOptions {
  checkUfsOptionKeys(scheme, raw);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith(HTTP_HEADER_PREFIX)) headers[k.slice(HTTP_HEADER_PREFIX.length).toLowerCase()] = v;
  }
  return { ...commonOptions(raw), headers };
}

export function parseLocalOptions(raw: RawUfsOptions): LocalUfsOptions {
  checkUfsOptionKeys('file', raw);
  return commonOptions(raw);
}
