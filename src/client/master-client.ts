/**
 * Metadata calls to the master set. The channel (the cluster RPC client) fails over across
 * `client.master_addrs`, follows "not leader" and retries mutating calls with one request id;
 * this layer normalises errors to POSIX where they have a POSIX
 * meaning, and turns "nobody answered" into one clear STRATA_UNAVAILABLE naming the addresses.
 *
 * Leader changes (HA masters on etcd): the killed leader refuses connections, while no master
 * leads yet the others answer "not leader" without a hint, and a new leader answers
 * "unavailable, retry" until workers have re-registered. The channel's retry count
 * (`client.rpc_retry_max`) can run out inside that window, so with several master addresses this
 * layer keeps going with the same request id (so the call still takes effect at most once) for
 * as long as the call's deadline (`client.rpc_timeout`) allows. With one master address there is
 * no leader change to wait for: only "unavailable" answers are asked again, and a master that
 * does not answer fails the call after the channel's retries.
 */
import { FsError, StrataError } from '../common/errors.js';
import type { CallOptions, UnaryCall } from '../rpc/api.js';
import { newRequestId } from '../rpc/client.js';
import { isUnreachable, mastersUnavailable, normaliseError } from './errors.js';
import type { ClientMetrics } from './metrics.js';
import type { RpcChannel } from './transport.js';

/** With one master address: answers from a live master that mean "ask again shortly". */
const ASK_AGAIN_CODES: ReadonlySet<string> = new Set(['STRATA_NOT_LEADER', 'STRATA_UNAVAILABLE']);
/** Pause between two rounds of asking the master set during a leader change: first, doubled up to the max. */
export const LEADER_WAIT_FIRST_MS = 50;
export const LEADER_WAIT_MAX_MS = 500;

export class MasterClient {
  readonly #channel: RpcChannel;
  readonly #addresses: readonly { host: string; port: number }[];
  readonly #metrics: ClientMetrics | undefined;
  readonly #callTimeoutMs: number | undefined;

  /** `callTimeoutMs`: the budget of one call across leader changes (absent: one channel call). */
  constructor(
    channel: RpcChannel,
    addresses: readonly { host: string; port: number }[],
    metrics?: ClientMetrics,
    callTimeoutMs?: number,
  ) {
    this.#channel = channel;
    this.#addresses = addresses;
    this.#metrics = metrics;
    this.#callTimeoutMs = callTimeoutMs;
  }

  async call<Req, Res>(def: UnaryCall<Req, Res>, req: Req, opts?: CallOptions): Promise<Res> {
    return (await this.callWithPayload(def, req, opts)).body;
  }

  async callWithPayload<Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    opts?: CallOptions,
  ): Promise<{ body: Res; payload: Buffer }> {
    const started = performance.now();
    try {
      const r = await this.#untilAnswered(def, req, opts, started);
      this.#metrics?.masterCall(def.name, 'ok', performance.now() - started);
      return r;
    } catch (err) {
      this.#metrics?.masterCall(def.name, 'error', performance.now() - started);
      // An FsError is the master's answer (the RPC layer reports a lost master as STRATA_*
      // codes): ECONNREFUSED there means something the master dialled, such as a UFS being
      // mounted, did not answer, not that the master is gone.
      if (isUnreachable(err) && !(err instanceof FsError)) throw mastersUnavailable(this.#addresses, err);
      throw normaliseError(err);
    }
  }

  close(): Promise<void> {
    return this.#channel.close();
  }

  /** The channel call, asked again with the same request id while a leader change lasts. */
  async #untilAnswered<Req, Res>(
    def: UnaryCall<Req, Res>,
    req: Req,
    opts: CallOptions | undefined,
    started: number,
  ): Promise<{ body: Res; payload: Buffer }> {
    const budgetMs = opts?.deadlineMs ?? this.#callTimeoutMs;
    if (budgetMs === undefined) return this.#channel.callWithPayload(def, req, opts);
    const deadlineAt = started + budgetMs;
    const callOpts: CallOptions = { ...opts, requestId: opts?.requestId ?? newRequestId() };
    for (let round = 0; ; round++) {
      try {
        const remainingMs = Math.max(1, Math.ceil(deadlineAt - performance.now()));
        return await this.#channel.callWithPayload(def, req, { ...callOpts, deadlineMs: remainingMs });
      } catch (err) {
        const pauseMs = Math.min(LEADER_WAIT_MAX_MS, LEADER_WAIT_FIRST_MS * 2 ** Math.min(round, 16));
        const again =
          err instanceof StrataError &&
          // A POSIX error is the master's own answer (a UFS it dialled refused), not a lost master.
          !(err instanceof FsError) &&
          (this.#addresses.length > 1 ? isUnreachable(err) : ASK_AGAIN_CODES.has(err.code)) &&
          err.code !== 'STRATA_DEADLINE_EXCEEDED' &&
          opts?.signal?.aborted !== true &&
          performance.now() + pauseMs < deadlineAt;
        if (!again) throw err;
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }
}
