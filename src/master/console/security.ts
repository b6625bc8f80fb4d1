/**
 * The console's protection: hardening headers on everything it serves, and the admin check on
 * actions. Actions are POSTs carrying `Authorization: Bearer <master.admin_token>`; with no token
 * configured the console is read-only and every action is refused (403). A header, not a cookie,
 * carries the token, so a page on another site cannot make a browser send it (no CSRF). The
 * token is compared in constant time and never logged; repeated wrong tokens from one address
 * are slowed down with 429s.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StrataError } from '../../common/errors.js';

/**
 * Pages: scripts and styles from this origin only (no inline script, no eval), data: images for
 * the favicon, fetches to this origin, never framed.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** JSON answers are data, never a document: nothing may load from them. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

/** Sets the hardening headers; they survive into any later writeHead (errors included). */
export function setHardeningHeaders(res: ServerResponse, kind: 'page' | 'api'): void {
  for (const [k, v] of Object.entries(COMMON_HEADERS)) res.setHeader(k, v);
  res.setHeader('content-security-policy', kind === 'page' ? PAGE_CSP : API_CSP);
  if (kind === 'api') res.setHeader('cache-control', 'no-store');
}

/** Wrong tokens one address may send per window before it gets 429s. */
export const MAX_FAILED_AUTH_PER_WINDOW = 10;
export const FAILED_AUTH_WINDOW_MS = 60_000;
/** Addresses remembered by the limiter (a flood of addresses resets it rather than growing it). */
const MAX_TRACKED_ADDRESSES = 4096;

export class AdminGuard {
  readonly #digest: Buffer | undefined;
  readonly #failures = new Map<string, { count: number; sinceMs: number }>();
  readonly #clock: () => number;

  constructor(token: string | undefined, clock: () => number = Date.now) {
    this.#digest = token === undefined || token === '' ? undefined : sha256(token);
    this.#clock = clock;
  }

  get enabled(): boolean {
    return this.#digest !== undefined;
  }

  /**
   * Throws unless the request carries the admin token: 403 when actions are disabled or the
   * token is wrong, 401 when it is missing, 429 after too many wrong tokens from one address.
   */
  check(req: IncomingMessage): void {
    if (this.#digest === undefined) {
      throw new StrataError(
        'STRATA_FORBIDDEN',
        'the console is read-only: actions need master.admin_token set in the master’s configuration',
      );
    }
    const remote = req.socket.remoteAddress ?? 'unknown';
    const now = this.#clock();
    const f = this.#failures.get(remote);
    if (f !== undefined && now - f.sinceMs < FAILED_AUTH_WINDOW_MS && f.count >= MAX_FAILED_AUTH_PER_WINDOW) {
      throw new StrataError(
        'STRATA_TOO_MANY_ATTEMPTS',
        `too many wrong admin tokens from ${remote}; try again in ${Math.ceil((FAILED_AUTH_WINDOW_MS - (now - f.sinceMs)) / 1000)} s`,
      );
    }
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) {
      throw new StrataError(
        'STRATA_UNAUTHORIZED',
        'this action needs the admin token: send "Authorization: Bearer <master.admin_token>"',
      );
    }
    if (!timingSafeEqual(sha256(m[1] as string), this.#digest)) {
      this.#fail(remote, now);
      throw new StrataError('STRATA_FORBIDDEN', 'the admin token was not accepted');
    }
    this.#failures.delete(remote);
  }

  #fail(remote: string, now: number): void {
    const f = this.#failures.get(remote);
    if (f === undefined || now - f.sinceMs >= FAILED_AUTH_WINDOW_MS) {
      if (this.#failures.size >= MAX_TRACKED_ADDRESSES) this.#failures.clear();
      this.#failures.set(remote, { count: 1, sinceMs: now });
    } else {
      f.count++;
    }
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * Actions take JSON only: a browser sends a cross-site form as a "simple" request without a
 * preflight, JSON with a custom header it never sends cross-site.
 */
export function requireJson(req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    throw new StrataError('STRATA_BAD_REQUEST', 'actions take a JSON body (Content-Type: application/json)');
}
