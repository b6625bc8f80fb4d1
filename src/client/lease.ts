/**
 * Keeps a writer's lease on a file alive: renews it before it expires, on a timer that follows
 * the expiry the master returns (a third of the remaining time, within bounds). A renewal that
 * fails because the master is briefly away is retried on the next tick; a definite refusal (the
 * lease was lost) is remembered and fails the writer's next operation.
 */
import type { Logger } from '../common/logging.js';
import type { StrataError } from '../common/errors.js';
import { RenewLease } from '../protocol/master-calls.js';
import { isUnreachable, normaliseError } from './errors.js';
import type { MasterClient } from './master-client.js';
import { FIRST_LEASE_RENEWAL_MS, MAX_LEASE_RENEWAL_MS, MIN_LEASE_RENEWAL_MS } from './settings.js';

export class LeaseKeeper {
  readonly #master: MasterClient;
  readonly #fileId: number;
  readonly #leaseId: string;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lost: StrataError | undefined;

  constructor(master: MasterClient, fileId: number, leaseId: string, log: Logger) {
    this.#master = master;
    this.#fileId = fileId;
    this.#leaseId = leaseId;
    this.#log = log;
    this.#schedule(FIRST_LEASE_RENEWAL_MS);
  }

  /** Set when the master refused a renewal: the writer can no longer commit. */
  get lost(): StrataError | undefined {
    return this.#lost;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#renew(), ms);
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    try {
      const r = await this.#master.call(RenewLease, { fileId: this.#fileId, leaseId: this.#leaseId });
      const remaining = r.expiresAtMs - Date.now();
      this.#schedule(Math.min(MAX_LEASE_RENEWAL_MS, Math.max(MIN_LEASE_RENEWAL_MS, remaining / 3)));
    } catch (err) {
      if (isUnreachable(err)) {
        this.#log.warn({ err, fileId: this.#fileId }, 'lease renewal failed; retrying');
        this.#schedule(MIN_LEASE_RENEWAL_MS * 5);
        return;
      }
      this.#lost = normaliseError(err);
      this.#log.error({ err, fileId: this.#fileId }, 'lease lost');
    }
  }
}
