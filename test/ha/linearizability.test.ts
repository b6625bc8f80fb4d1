// Validates the linearizability checker the HA tests rely on: hand-written known-good and
// known-bad histories (lost writes, stale reads, double effects, unknown outcomes), and random
// histories built around a real serial execution (always linearizable) and then corrupted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CREATE_MODE, checkLinearizable, fileModel } from './linearizability.js';
import type { FileInput, FileOutput, FileState, Operation } from './linearizability.js';

type Op = Operation<FileInput, FileOutput>;
const ok = (mode?: number): FileOutput => (mode === undefined ? { ok: true } : { ok: true, mode });
const err = (code: string): FileOutput => ({ ok: false, code });
const op = (
  callAt: number,
  returnAt: number,
  input: FileInput,
  output: FileOutput | undefined,
  key = 'f',
): Op => ({ key, input, output, callAt, returnAt });
const check = (h: Op[]): boolean => checkLinearizable(fileModel, h).ok;

describe('linearizability checker', () => {
  test('sequential histories: the right results pass, a wrong one fails', () => {
    const good = [
      op(0, 1, { kind: 'create' }, ok()),
      op(2, 3, { kind: 'stat' }, ok(CREATE_MODE)),
      op(4, 5, { kind: 'chmod', mode: 0o600 }, ok()),
      op(6, 7, { kind: 'stat' }, ok(0o600)),
      op(8, 9, { kind: 'delete' }, ok()),
      op(10, 11, { kind: 'stat' }, err('ENOENT')),
      op(12, 13, { kind: 'delete' }, err('ENOENT')),
    ];
    assert.ok(check(good));
    assert.equal(check([op(0, 1, { kind: 'create' }, ok()), op(2, 3, { kind: 'create' }, ok())]), false);
    assert.equal(
      check([op(0, 1, { kind: 'create' }, ok()), op(2, 3, { kind: 'stat' }, err('ENOENT'))]),
      false,
      'an acknowledged create lost',
    );
  });

  test('concurrent creates: one wins; two winners is a double effect', () => {
    assert.ok(check([op(0, 10, { kind: 'create' }, ok()), op(1, 9, { kind: 'create' }, err('EEXIST'))]));
    assert.ok(check([op(0, 10, { kind: 'create' }, err('EEXIST')), op(1, 9, { kind: 'create' }, ok())]));
    assert.equal(check([op(0, 10, { kind: 'create' }, ok()), op(1, 9, { kind: 'create' }, ok())]), false);
  });

  test('reads: an overlapping read may see either value, a later read only the new one', () => {
    const base = [op(0, 1, { kind: 'create' }, ok()), op(10, 30, { kind: 'chmod', mode: 0o600 }, ok())];
    assert.ok(check([...base, op(20, 25, { kind: 'stat' }, ok(CREATE_MODE))]));
    assert.ok(check([...base, op(20, 25, { kind: 'stat' }, ok(0o600))]));
    assert.equal(check([...base, op(31, 32, { kind: 'stat' }, ok(CREATE_MODE))]), false, 'stale read');
    // Two reads in real-time order cannot go back to the old value.
    assert.equal(
      check([
        ...base,
        op(12, 13, { kind: 'stat' }, ok(0o600)),
        op(14, 15, { kind: 'stat' }, ok(CREATE_MODE)),
      ]),
      false,
    );
    assert.equal(check([...base, op(20, 25, { kind: 'stat' }, ok(0o700))]), false, 'a value never written');
  });

  test('unknown outcomes may or may not have happened, but only once and only after their call', () => {
    const unknownCreate = op(0, Infinity, { kind: 'create' }, undefined);
    assert.ok(check([unknownCreate, op(5, 6, { kind: 'stat' }, err('ENOENT'))]), 'not (yet) applied');
    assert.ok(check([unknownCreate, op(5, 6, { kind: 'stat' }, ok(CREATE_MODE))]), 'applied');
    assert.ok(
      check([
        unknownCreate,
        op(5, 6, { kind: 'stat' }, err('ENOENT')),
        op(7, 8, { kind: 'stat' }, ok(CREATE_MODE)),
      ]),
      'applied late',
    );
    assert.equal(
      check([
        unknownCreate,
        op(5, 6, { kind: 'stat' }, ok(CREATE_MODE)),
        op(7, 8, { kind: 'stat' }, err('ENOENT')),
      ]),
      false,
      'it cannot be undone without a delete',
    );
    assert.equal(
      check([op(10, Infinity, { kind: 'create' }, undefined), op(0, 1, { kind: 'stat' }, ok(CREATE_MODE))]),
      false,
      'it cannot take effect before it was called',
    );
  });

  test('keys are independent', () => {
    const h = [
      op(0, 10, { kind: 'create' }, ok(), 'a'),
      op(0, 10, { kind: 'create' }, ok(), 'b'),
      op(11, 12, { kind: 'stat' }, ok(CREATE_MODE), 'a'),
      op(11, 12, { kind: 'stat' }, err('ENOENT'), 'c'),
    ];
    const r = checkLinearizable(fileModel, h);
    assert.ok(r.ok);
    const bad = checkLinearizable(fileModel, [...h, op(13, 14, { kind: 'stat' }, err('ENOENT'), 'b')]);
    assert.deepEqual(bad.failedKeys, ['b']);
  });

  test('random histories around a serial execution pass; corrupting one result is caught', () => {
    let seed = Number(process.env.STRATA_TEST_SEED ?? 20240611);
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const started = Date.now();
    for (let round = 0; round < 40; round++) {
      const { history, lastStatIndex } = serialHistory(rand, 60, 4);
      const r = checkLinearizable(fileModel, history);
      assert.ok(r.ok, `round ${round}: a history built from a serial execution must pass (seed ${seed})`);
      // The last stat (nothing overlaps it) answers a mode nobody ever set: impossible whatever
      // the unknown operations did.
      const wrong = ok(0o777);
      const corrupted = history.map((o, i) => (i === lastStatIndex ? { ...o, output: wrong } : o));
      assert.equal(checkLinearizable(fileModel, corrupted).ok, false, `round ${round}: corruption caught`);
    }
    assert.ok(Date.now() - started < 20_000, 'the checker is fast enough for the HA tests');
  });

  test('in a history without overlap every single wrong result is caught', () => {
    let seed = 7;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    // One client: each operation has exactly one right answer.
    const { history: known } = serialHistory(rand, 80, 1, 0);
    assert.ok(checkLinearizable(fileModel, known).ok);
    let caught = 0;
    for (let i = 0; i < known.length; i++) {
      const o = known[i] as Op;
      const wrong: FileOutput =
        o.output?.ok === true
          ? o.input.kind === 'stat'
            ? ok(((o.output.mode ?? 0) ^ 0o100) & 0o777)
            : err(o.input.kind === 'create' ? 'EEXIST' : 'ENOENT')
          : o.input.kind === 'stat'
            ? ok(CREATE_MODE)
            : ok();
      const bad = known.map((x, j) => (j === i ? { ...x, output: wrong } : x));
      if (!checkLinearizable(fileModel, bad).ok) caught++;
    }
    assert.equal(caught, known.length);
  });

  test('a long history with many overlapping clients is decided quickly', () => {
    let seed = 99;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const { history } = serialHistory(rand, 600, 8);
    const t0 = Date.now();
    const r = checkLinearizable(fileModel, history);
    assert.ok(r.ok);
    assert.deepEqual(r.exhausted, []);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms, ${r.steps} steps`);
  });
});

/**
 * A history of `n` operations by `clients` clients on one key: a serial execution with each
 * operation's linearization point inside a random [call, return] interval, so it is linearizable
 * by construction; some operations lose their answer (unknown outcome). Ends with a lone stat.
 */
function serialHistory(
  rand: () => number,
  n: number,
  clients: number,
  unknownRate = 0.08,
): { history: Op[]; lastStatIndex: number } {
  const history: Op[] = [];
  let state: FileState = undefined;
  const busyUntil = new Array<number>(clients).fill(0);
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += 1 + Math.floor(rand() * 3);
    const c = Math.floor(rand() * clients);
    // A client does one thing at a time: a busy one sits this operation out.
    if ((busyUntil[c] as number) > t) continue;
    const r = rand();
    const input: FileInput =
      r < 0.25
        ? { kind: 'create' }
        : r < 0.45
          ? { kind: 'delete' }
          : r < 0.7
            ? { kind: 'chmod', mode: [0o600, 0o640, 0o700][Math.floor(rand() * 3)] as number }
            : { kind: 'stat' };
    const step = fileModel.step(state, input, undefined);
    const output = resultOf(state, input);
    state = step.state;
    // The linearization point is t; the call came before it (after the client's last return).
    const callAt = Math.max(busyUntil[c] as number, t - Math.floor(rand() * 6));
    const unknown = input.kind !== 'stat' && rand() < unknownRate;
    const returnAt = unknown ? Infinity : t + Math.floor(rand() * 6);
    // A client that lost an answer goes on (the outcome stays unknown).
    busyUntil[c] = unknown ? t + 1 : returnAt + 1;
    history.push({ key: 'k', input, output: unknown ? undefined : output, callAt, returnAt, client: c });
  }
  const end = Math.max(t, ...busyUntil.filter((x) => x !== Infinity)) + 10;
  history.push({
    key: 'k',
    input: { kind: 'stat' },
    output: resultOf(state, { kind: 'stat' }),
    callAt: end,
    returnAt: end + 1,
  });
  return { history, lastStatIndex: history.length - 1 };
}

function resultOf(state: FileState, input: FileInput): FileOutput {
  switch (input.kind) {
    case 'create':
      return state === undefined ? ok() : err('EEXIST');
    case 'delete':
      return state !== undefined ? ok() : err('ENOENT');
    case 'chmod':
      return state !== undefined ? ok() : err('ENOENT');
    case 'stat':
      return state !== undefined ? ok(state) : err('ENOENT');
  }
}
