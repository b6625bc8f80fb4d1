/**
 * A linearizability checker for histories of concurrent operations (Wing & Gong's search with
 * Lowe's memoisation, as in Porcupine), split per key (P-compositionality: a history is
 * linearizable iff the sub-history of every key is, when operations touch one key each).
 *
 * An operation has an invocation time, a response time and a result. One whose result is
 * unknown (the client gave up: deadline, connection lost) has response time Infinity: it may
 * have taken effect at any point after its invocation, or never.
 *
 * The search walks the history in time order, tries to linearize the earliest pending call that
 * the model accepts, and backtracks when it reaches the response of an operation it has not
 * linearized; (linearized set, model state) pairs already explored are not explored again.
 */

export interface Operation<I, O> {
  /** Key the operation touches (the unit of P-compositionality). */
  key: string;
  input: I;
  /** undefined: outcome unknown (then `returnAt` must be Infinity). */
  output: O | undefined;
  callAt: number;
  returnAt: number;
  /** For reports. */
  client?: number;
}

export interface Model<S, I, O> {
  init(): S;
  /** Applying `input` to `state`: whether it could have returned `output` (undefined = any) and the next state. */
  step(state: S, input: I, output: O | undefined): { ok: boolean; state: S };
  /** A string identifying a state (memoisation). */
  key(state: S): string;
}

export interface CheckResult {
  ok: boolean;
  /** Keys whose history is not linearizable. */
  failedKeys: string[];
  /** Search steps taken (all keys). */
  steps: number;
  /** Keys whose search hit the step budget (reported, counted as failed). */
  exhausted: string[];
}

interface Entry<I, O> {
  kind: 'call' | 'return';
  time: number;
  op: Operation<I, O>;
  id: number;
  /** The call's matching return, and back. */
  match: Entry<I, O> | undefined;
  prev: Entry<I, O> | undefined;
  next: Entry<I, O> | undefined;
}

/** Search steps allowed per key before giving up (a bug in the history, not a slow proof). */
export const DEFAULT_STEP_BUDGET = 5_000_000;

export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  stepBudget = DEFAULT_STEP_BUDGET,
): CheckResult {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    if (op.output === undefined && op.returnAt !== Infinity)
      throw new Error(`an operation with unknown output must return at Infinity (key ${op.key})`);
    if (!(op.returnAt >= op.callAt)) throw new Error(`an operation returns before its call (key ${op.key})`);
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  const res: CheckResult = { ok: true, failedKeys: [], steps: 0, exhausted: [] };
  for (const [key, ops] of byKey) {
    const r = checkKey(model, ops, stepBudget);
    res.steps += r.steps;
    if (r.exhausted) res.exhausted.push(key);
    if (!r.ok) {
      res.ok = false;
      res.failedKeys.push(key);
    }
  }
  return res;
}

function checkKey<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  budget: number,
): { ok: boolean; steps: number; exhausted: boolean } {
  const entries: Entry<I, O>[] = [];
  ops.forEach((op, id) => {
    const call: Entry<I, O> = {
      kind: 'call',
      time: op.callAt,
      op,
      id,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: Entry<I, O> = {
      kind: 'return',
      time: op.returnAt,
      op,
      id,
      match: call,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    entries.push(call, ret);
  });
  // Time order; at equal times calls first (operations that touch in time count as concurrent).
  entries.sort((a, b) => a.time - b.time || (a.kind === b.kind ? 0 : a.kind === 'call' ? -1 : 1));
  const head: Entry<I, O> = {
    kind: 'call',
    time: -Infinity,
    op: ops[0] as Operation<I, O>,
    id: -1,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const e of entries) {
    e.prev = last;
    last.next = e;
    last = e;
  }
  const lift = (call: Entry<I, O>): void => {
    const ret = call.match as Entry<I, O>;
    (call.prev as Entry<I, O>).next = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    (ret.prev as Entry<I, O>).next = ret.next;
    if (ret.next !== undefined) ret.next.prev = ret.prev;
  };
  const unlift = (call: Entry<I, O>): void => {
    const ret = call.match as Entry<I, O>;
    (ret.prev as Entry<I, O>).next = ret;
    if (ret.next !== undefined) ret.next.prev = ret;
    (call.prev as Entry<I, O>).next = call;
    if (call.next !== undefined) call.next.prev = call;
  };
  const words = Math.ceil(ops.length / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { call: Entry<I, O>; state: S }[] = [];
  let state = model.init();
  let entry = head.next;
  let steps = 0;
  while (entry !== undefined) {
    if (++steps > budget) return { ok: false, steps, exhausted: true };
    if (entry.kind === 'call') {
      const r = model.step(state, entry.op.input, entry.op.output);
      if (r.ok) {
        const w = entry.id >>> 5;
        const bit = 1 << (entry.id & 31);
        linearized[w] = (linearized[w] as number) | bit;
        const memo = `${linearized.join(',')}|${model.key(r.state)}`;
        if (!seen.has(memo)) {
          seen.add(memo);
          stack.push({ call: entry, state });
          state = r.state;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[w] = linearized[w] & ~bit;
      }
      entry = entry.next;
      continue;
    }
    // A return whose call is not linearized yet.
    if (entry.time === Infinity) {
      // Only operations of unknown outcome are left: they may never have taken effect.
      return { ok: true, steps, exhausted: false };
    }
    const top = stack.pop();
    if (top === undefined) return { ok: false, steps, exhausted: false };
    const call = top.call;
    state = top.state;
    const w = call.id >>> 5;
    linearized[w] = (linearized[w] as number) & ~(1 << (call.id & 31));
    unlift(call);
    entry = call.next;
  }
  return { ok: true, steps, exhausted: false };
}

// ---- the model of one file in the namespace ---------------------------------------------------

/** What a client did to one path. */
export type FileInput =
  { kind: 'create' } | { kind: 'delete' } | { kind: 'chmod'; mode: number } | { kind: 'stat' };

/** What it got: ok (stat: the mode seen) or a POSIX error code. */
export type FileOutput = { ok: true; mode?: number } | { ok: false; code: string };

/** undefined: absent; a number: present with that mode. */
export type FileState = number | undefined;

export const CREATE_MODE = 0o644;

/** A path: create (no overwrite), delete, chmod and stat, with their POSIX refusals. */
export const fileModel: Model<FileState, FileInput, FileOutput> = {
  init: () => undefined,
  key: (s) => (s === undefined ? '-' : String(s)),
  step(state, input, output) {
    const any = output === undefined;
    switch (input.kind) {
      case 'create':
        if (state === undefined) return { ok: any || output.ok, state: CREATE_MODE };
        return { ok: any || (!output.ok && output.code === 'EEXIST'), state };
      case 'delete':
        if (state !== undefined) return { ok: any || output.ok, state: undefined };
        return { ok: any || (!output.ok && output.code === 'ENOENT'), state };
      case 'chmod':
        if (state !== undefined) return { ok: any || output.ok, state: input.mode };
        return { ok: any || (!output.ok && output.code === 'ENOENT'), state };
      case 'stat':
        if (state !== undefined) return { ok: any || (output.ok && output.mode === state), state };
        return { ok: any || (!output.ok && output.code === 'ENOENT'), state };
    }
  },
};
