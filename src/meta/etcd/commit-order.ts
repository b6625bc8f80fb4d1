/**
 * Two small coordination pieces of the etcd engine's commits.
 *
 * CommitOrder: transactions resolve in commit order. Answers from etcd can overtake each other,
 * so an answer (revision r) is held while a commit sent earlier is still unanswered and could
 * still land below r: a commit sent when the highest revision seen was s lands above s.
 *
 * CommitGate: commits normally go out concurrently ("shared"); a transaction that must not be
 * overtaken (a whole-snapshot validation, a big transaction, one that keeps conflicting) takes
 * the gate exclusively: it waits for the commits in flight, and new ones wait until it is done.
 */
export interface Ticket {
  /** The lowest revision this commit can land at. */
  readonly lowerBound: number;
  revision: number | undefined;
  release: (() => void) | undefined;
}

export class CommitOrder {
  readonly #pending = new Set<Ticket>();

  /** A commit is about to be sent; `seenRevision` is the highest revision seen so far. */
  enter(seenRevision: number): Ticket {
    const t: Ticket = { lowerBound: seenRevision + 1, revision: undefined, release: undefined };
    this.#pending.add(t);
    return t;
  }

  /** The commit landed at `revision`; resolves when every commit that could land below it has answered. */
  done(t: Ticket, revision: number): Promise<void> {
    t.revision = revision;
    const p = new Promise<void>((resolve) => (t.release = resolve));
    this.#releaseReady();
    return p;
  }

  /** The commit failed or its outcome is unknown: it holds nobody up any more. */
  cancel(t: Ticket): void {
    if (!this.#pending.delete(t)) return;
    t.release?.();
    this.#releaseReady();
  }

  #releaseReady(): void {
    let lowestOpen = Infinity;
    for (const t of this.#pending)
      if (t.revision === undefined && t.lowerBound < lowestOpen) lowestOpen = t.lowerBound;
    const ready = [...this.#pending]
      .filter((t) => t.revision !== undefined && t.revision < lowestOpen)
      .sort((a, b) => (a.revision as number) - (b.revision as number));
    for (const t of ready) {
      this.#pending.delete(t);
      t.release?.();
    }
  }
}

export class CommitGate {
  #active = 0;
  #exclusive: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  /** Settles when the exclusive holder is done (undefined: the gate is open). */
  get blocked(): Promise<void> | undefined {
    return this.#exclusive;
  }

  /** A shared commit goes out (the caller checked `blocked` in the same turn). */
  enter(): void {
    this.#active++;
  }

  leave(): void {
    this.#active--;
    if (this.#active === 0) this.#drained?.();
  }

  /** Takes the gate: resolves once commits in flight are done; call the result to give it back. */
  async exclusive(): Promise<() => void> {
    while (this.#exclusive !== undefined) await this.#exclusive;
    let open!: () => void;
    this.#exclusive = new Promise<void>((resolve) => (open = resolve));
    if (this.#active > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#drained = undefined;
    return () => {
      this.#exclusive = undefined;
      open();
    };
  }
}
