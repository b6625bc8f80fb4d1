/**
 * Validation of keys, values and TTLs shared by the HTTP API, RESP and import, so each limit is
 * enforced in one place with one message.
 */
import { DURATION_HELP, parseDuration } from '../common/units.js';
import type { KvLimits } from './config.js';
import { KvError } from './errors.js';

/** Longest TTL accepted (100 years): keeps expiry times exact integers far from overflow. */
export const MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000;

export function checkKey(key: string, limits: KvLimits): void {
  if (key === '') throw new KvError('STRATA_KV_BAD_KEY', 'key must not be empty');
  const n = Buffer.byteLength(key, 'utf8');
  if (n > limits.maxKeyBytes) {
    throw new KvError(
      'STRATA_KV_KEY_TOO_LONG',
      `key is ${n} bytes; the limit is limits.max_key_bytes = ${limits.maxKeyBytes}`,
    );
  }
}

export function checkValueSize(bytes: number, limits: KvLimits): void {
  if (bytes > limits.maxValueBytes) {
    throw new KvError(
      'STRATA_KV_VALUE_TOO_LARGE',
      `value is ${bytes} bytes; the limit is limits.max_value_bytes = ${limits.maxValueBytes}`,
    );
  }
}

/**
 * A TTL as the HTTP API takes it: a number of seconds (fractions allowed) or a duration string
 * ("500ms", "10s", "5m"). Returns milliseconds, at least 1.
 */
export function parseTtl(input: unknown, field = 'ttl'): number {
  let ms: number | undefined;
  if (typeof input === 'number' && Number.isFinite(input) && input > 0)
    ms = Math.max(1, Math.round(input * 1000));
  else if (typeof input === 'string') ms = parseDuration(input);
  if (ms === undefined || ms <= 0 || ms > MAX_TTL_MS) {
    throw new KvError(
      'STRATA_KV_BAD_TTL',
      `${field}: expected a positive number of seconds or ${DURATION_HELP}, at most 100 years (got ${JSON.stringify(input)})`,
    );
  }
  return ms;
}
