/**
 * Which client request an RPC handler serves, for exactly-once retries (the retry records of
 * ha/retry-records.ts). The dispatcher attaches a scope to the context of each mutating call; the
 * handler hands it to the one namespace mutation that is the call's effect. Work a handler does
 * on the side (a UFS entry imported before a delete under a mount, a second step of a call made
 * of several) gets no scope and is not recorded as the request's outcome.
 *
 * Explicit rather than AsyncLocalStorage, which the master used before: on Node 20 it turns on
 * promise hooks for every promise of the process (a stat cost 17 µs of master CPU without them
 * against 20 µs with them), and it gave the record to the first mutation made anywhere under the
 * request, which under a mount could be an import of the UFS entry rather than the call's own.
 */
import type { CallContext } from '../rpc/api.js';
import { requestScope } from './namespace/recorder.js';
import type { RequestScope } from './namespace/recorder.js';

const scopes = new WeakMap<CallContext, RequestScope>();

/** Marks `ctx` as serving the request `key` (`<call code>:<request id>`). */
export function attachRequestScope(ctx: CallContext, key: string): void {
  scopes.set(ctx, requestScope(key));
}

/** The request `ctx` serves, when it is a mutating call's. */
export function scopeOf(ctx: CallContext): RequestScope | undefined {
  return scopes.get(ctx);
}
