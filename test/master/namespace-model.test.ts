// Model-based test: random sequences of namespace operations (mkdir, create, delete, rename over
// existing targets and into its own subtree, symlink, link, truncate, chmod, stat, list, and a new
// file completed onto a path with closed files appended: CompleteAs with concat) must
// agree with a small in-memory POSIX model, errors included; after each sequence the store passes
// the consistency checker. Runs on LMDB and on the re-running remote engine. Seed: FC_SEED=n.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FsError } from '../../src/common/errors.js';
import { checkNamespace } from '../../src/master/namespace/index.js';
import type { Namespace } from '../../src/master/namespace/index.js';
import { openNs } from './ns-helpers.js';
import type { Engine } from './ns-helpers.js';

// ---- the model ------------------------------------------------------------------------------

interface MDir {
  kind: 'dir';
  mode: number;
  parent: MDir | undefined;
  children: Map<string, MNode>;
}
interface MFile {
  kind: 'file';
  mode: number;
  length: number;
  links: number;
}
interface MLink {
  kind: 'symlink';
  target: string;
  links: number;
}
type MNode = MDir | MFile | MLink;

class ModelError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}
const fail = (code: string): never => {
  throw new ModelError(code);
};

const MAX_HOPS = 40;

class Model {
  readonly root: MDir = { kind: 'dir', mode: 0o755, parent: undefined, children: new Map() };

  split(path: string): string[] {
    return path === '/' ? [] : path.slice(1).split('/');
  }

  /** Walks every component as a directory, following symlinks (the namespace's walk). */
  walk(comps: readonly string[], finalAny = false): MNode {
    const stack: MDir[] = [this.root];
    const todo = [...comps].reverse();
    let hops = 0;
    while (todo.length > 0) {
      const name = todo.pop() as string;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const cur = stack[stack.length - 1] as MDir;
      const n = cur.children.get(name);
      if (n === undefined) fail('ENOENT');
      else if (n.kind === 'dir') stack.push(n);
      else if (n.kind === 'symlink') {
        if (++hops > MAX_HOPS) fail('ELOOP');
        if (n.target.startsWith('/')) stack.length = 1;
        const parts = n.target.split('/');
        for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i] as string);
      } else if (finalAny && todo.every((x) => x === '' || x === '.')) return n;
      else fail('ENOTDIR');
    }
    return stack[stack.length - 1] as MDir;
  }

  parentOf(comps: readonly string[]): MDir {
    return this.walk(comps.slice(0, -1)) as MDir;
  }

  lookup(comps: readonly string[]): { parent: MDir | undefined; name: string; node: MNode | undefined } {
    if (comps.length === 0) return { parent: undefined, name: '', node: this.root };
    const parent = this.parentOf(comps);
    const name = comps[comps.length - 1] as string;
    return { parent, name, node: parent.children.get(name) };
  }

  existing(comps: readonly string[]): { parent: MDir | undefined; name: string; node: MNode } {
    const l = this.lookup(comps);
    if (l.node === undefined) fail('ENOENT');
    return l as { parent: MDir | undefined; name: string; node: MNode };
  }

  ensureParents(comps: readonly string[]): MDir {
    let cur = this.root;
    for (let i = 0; i < comps.length - 1; i++) {
      const name = comps[i] as string;
      const n = cur.children.get(name);
      if (n === undefined) {
        const d: MDir = { kind: 'dir', mode: 0o755, parent: cur, children: new Map() };
        cur.children.set(name, d);
        cur = d;
      } else if (n.kind === 'dir') cur = n;
      else if (n.kind === 'symlink') cur = this.walk(comps.slice(0, i + 1)) as MDir;
      else fail('ENOTDIR');
    }
    return cur;
  }

  unlink(parent: MDir, name: string, node: MNode): void {
    parent.children.delete(name);
    if (node.kind !== 'dir') node.links--;
  }

  mkdir(path: string, parents: boolean): void {
    const comps = this.split(path);
    if (comps.length === 0) {
      if (parents) return;
      fail('EEXIST');
    }
    const parent = parents ? this.ensureParents(comps) : this.parentOf(comps);
    const name = comps[comps.length - 1] as string;
    const ex = parent.children.get(name);
    if (ex !== undefined) {
      if (parents && ex.kind === 'dir') return;
      if (parents && ex.kind === 'symlink') {
        this.walk(comps);
        return;
      }
      fail('EEXIST');
    }
    parent.children.set(name, { kind: 'dir', mode: 0o755, parent, children: new Map() });
  }

  create(path: string, overwrite: boolean, parents: boolean, length: number): void {
    const comps = this.split(path);
    if (comps.length === 0) fail('EISDIR');
    const parent = parents ? this.ensureParents(comps) : this.parentOf(comps);
    const name = comps[comps.length - 1] as string;
    const ex = parent.children.get(name);
    if (ex !== undefined) {
      if (ex.kind === 'dir') fail('EISDIR');
      if (!overwrite) fail('EEXIST');
      this.unlink(parent, name, ex);
    }
    parent.children.set(name, { kind: 'file', mode: 0o644, length, links: 1 });
  }

  delete(path: string, recursive: boolean): void {
    const comps = this.split(path);
    if (comps.length === 0) fail('EBUSY');
    const l = this.existing(comps);
    const parent = l.parent as MDir;
    if (l.node.kind === 'dir' && l.node.children.size > 0) {
      if (!recursive) fail('ENOTEMPTY');
      this.dropTree(l.node);
    }
    this.unlink(parent, l.name, l.node);
  }

  dropTree(d: MDir): void {
    for (const [name, c] of d.children) {
      if (c.kind === 'dir') this.dropTree(c);
      this.unlink(d, name, c);
    }
  }

  isAncestorOrSelf(a: MDir, d: MDir): boolean {
    for (let cur: MDir | undefined = d; cur !== undefined; cur = cur.parent) if (cur === a) return true;
    return false;
  }

  rename(src: string, dst: string, noReplace: boolean): void {
    const sc = this.split(src);
    const dc = this.split(dst);
    if (sc.length === 0 || dc.length === 0) fail('EBUSY');
    const s = this.existing(sc);
    const dParent = this.parentOf(dc);
    const dName = dc[dc.length - 1] as string;
    if (s.node.kind === 'dir' && this.isAncestorOrSelf(s.node, dParent)) fail('EINVAL');
    const target = dParent.children.get(dName);
    if (target !== undefined) {
      if (target === s.node) return;
      if (noReplace) fail('EEXIST');
      if (s.node.kind === 'dir' && target.kind !== 'dir') fail('ENOTDIR');
      if (s.node.kind !== 'dir' && target.kind === 'dir') fail('EISDIR');
      if (target.kind === 'dir' && target.children.size > 0) fail('ENOTEMPTY');
      this.unlink(dParent, dName, target);
    }
    (s.parent as MDir).children.delete(s.name);
    dParent.children.set(dName, s.node);
    if (s.node.kind === 'dir') s.node.parent = dParent;
  }

  symlink(target: string, path: string): void {
    const comps = this.split(path);
    if (comps.length === 0) fail('EEXIST');
    const parent = this.parentOf(comps);
    const name = comps[comps.length - 1] as string;
    if (parent.children.has(name)) fail('EEXIST');
    parent.children.set(name, { kind: 'symlink', target, links: 1 });
  }

  link(existing: string, path: string): void {
    const src = this.existing(this.split(existing)).node;
    if (src.kind === 'dir') fail('EPERM');
    const comps = this.split(path);
    if (comps.length === 0) fail('EEXIST');
    const parent = this.parentOf(comps);
    const name = comps[comps.length - 1] as string;
    if (parent.children.has(name)) fail('EEXIST');
    (src as MFile | MLink).links++;
    parent.children.set(name, src);
  }

  truncate(path: string, length: number): void {
    const n = this.existing(this.split(path)).node;
    if (n.kind === 'dir') fail('EISDIR');
    if (n.kind === 'symlink') fail('EINVAL');
    (n as MFile).length = length;
  }

  chmod(path: string, mode: number): void {
    const n = this.existing(this.split(path)).node;
    if (n.kind !== 'symlink') n.mode = mode;
    else fail('SKIP');
  }

  stat(path: string): string {
    return describeNode(this.existing(this.split(path)).node);
  }

  list(path: string): string {
    const d = this.walk(this.split(path)) as MDir;
    return [...d.children.keys()]
      .sort()
      .map((n) => `${n}:${describeNode(d.children.get(n) as MNode)}`)
      .join(' ');
  }

  readlink(path: string): string {
    const n = this.existing(this.split(path)).node;
    if (n.kind !== 'symlink') fail('EINVAL');
    return (n as MLink).target;
  }

  /**
   * A new empty file completed onto `path` with the files at `sources` appended (moved, not
   * copied) in one transaction: all or nothing. `before` is each source's node as the caller saw
   * it before the call (the file id it names), undefined when it had none.
   */
  concat(path: string, sources: readonly string[], before: readonly (MNode | undefined)[]): void {
    const dc = this.split(path);
    // The root as the target is refused before anything else (completeAs checks it first).
    if (dc.length === 0) fail('EBUSY');
    const saved = this.clone();
    try {
      const seen = new Set<MNode>();
      let length = 0;
      sources.forEach((src, i) => {
        const named = before[i];
        if (named !== undefined) {
          if (seen.has(named)) fail('EINVAL');
          seen.add(named);
        }
        let l: { parent: MDir | undefined; name: string; node: MNode };
        try {
          l = this.existing(this.split(src));
        } catch (err) {
          if (err instanceof ModelError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) fail('ESTALE');
          throw err;
        }
        if (l.node !== named) fail('ESTALE');
        if (l.node.kind === 'dir') fail('EISDIR');
        if (l.node.kind === 'symlink') fail('EINVAL');
        if ((l.node as MFile).links > 1) fail('EMLINK');
        length += (l.node as MFile).length;
        this.unlink(l.parent as MDir, l.name, l.node);
      });
      const parent = this.parentOf(dc);
      const name = dc[dc.length - 1] as string;
      const target = parent.children.get(name);
      if (target !== undefined) {
        if (target.kind === 'dir') fail('EISDIR');
        this.unlink(parent, name, target);
      }
      parent.children.set(name, { kind: 'file', mode: 0o644, length, links: 1 });
    } catch (err) {
      this.restore(saved);
      throw err;
    }
  }

  /** A deep copy of the tree (hard-linked nodes stay shared), for all-or-nothing operations. */
  clone(): MDir {
    const copies = new Map<MNode, MNode>();
    const copy = (n: MNode, parent: MDir | undefined): MNode => {
      const done = copies.get(n);
      if (done !== undefined) return done;
      if (n.kind !== 'dir') {
        const c = { ...n };
        copies.set(n, c);
        return c;
      }
      const d: MDir = { kind: 'dir', mode: n.mode, parent, children: new Map() };
      copies.set(n, d);
      for (const [k, v] of n.children) d.children.set(k, copy(v, d));
      return d;
    };
    return copy(this.root, undefined) as MDir;
  }

  restore(saved: MDir): void {
    this.root.mode = saved.mode;
    this.root.children = saved.children;
    for (const c of saved.children.values()) if (c.kind === 'dir') c.parent = this.root;
  }
}

function describeNode(n: MNode): string {
  if (n.kind === 'dir') {
    let sub = 0;
    for (const c of n.children.values()) if (c.kind === 'dir') sub++;
    return `dir(n=${2 + sub},c=${n.children.size},m=${n.mode.toString(8)})`;
  }
  if (n.kind === 'file') return `file(len=${n.length},n=${n.links},m=${n.mode.toString(8)})`;
  return `symlink(${n.target},n=${n.links})`;
}

function describeStatus(s: {
  type: string;
  size: number;
  nlink: number;
  mode: number;
  children?: number;
  target?: string;
}): string {
  if (s.type === 'dir') return `dir(n=${s.nlink},c=${s.children ?? -1},m=${s.mode.toString(8)})`;
  if (s.type === 'file') return `file(len=${s.size},n=${s.nlink},m=${s.mode.toString(8)})`;
  return `symlink(${s.target ?? ''},n=${s.nlink})`;
}

// ---- operations ------------------------------------------------------------------------------

type Op =
  | { op: 'mkdir'; path: string; parents: boolean }
  | { op: 'create'; path: string; overwrite: boolean; parents: boolean; sizes: number[] }
  | { op: 'delete'; path: string; recursive: boolean }
  | { op: 'rename'; src: string; dst: string; noReplace: boolean }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'link'; existing: string; path: string }
  | { op: 'truncate'; path: string; length: number }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'stat'; path: string }
  | { op: 'list'; path: string }
  | { op: 'readlink'; path: string }
  | { op: 'concat'; path: string; sources: string[]; fill: number[] | null };

const nameArb = fc.constantFrom('a', 'b', 'c');
const pathArb = fc
  .array(nameArb, { minLength: 0, maxLength: 3 })
  .map((c) => (c.length === 0 ? '/' : `/${c.join('/')}`));
const nonRootPath = fc.array(nameArb, { minLength: 1, maxLength: 3 }).map((c) => `/${c.join('/')}`);
const targetArb = fc.constantFrom('/a', '/a/b', 'b', '../c', '..', '/', 'x', '/a/b/c', 'a/..', 'c/a');
const BLOCK = 4096;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('mkdir' as const), path: pathArb, parents: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('create' as const),
      path: pathArb,
      overwrite: fc.boolean(),
      parents: fc.boolean(),
      sizes: fc.array(fc.integer({ min: 1, max: BLOCK }), { maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('delete' as const), path: pathArb, recursive: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('rename' as const),
      src: pathArb,
      dst: pathArb,
      noReplace: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('symlink' as const), target: targetArb, path: pathArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('link' as const), existing: pathArb, path: nonRootPath }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('truncate' as const),
      path: pathArb,
      length: fc.integer({ min: 0, max: 3 * BLOCK }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('chmod' as const),
      path: pathArb,
      mode: fc.constantFrom(0o700, 0o755, 0o644),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('stat' as const), path: pathArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('list' as const), path: pathArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('readlink' as const), path: pathArb }) },
  {
    weight: 2,
    // Sources mostly among the shallow names creates make, so that many concats succeed.
    arbitrary: fc.record({
      op: fc.constant('concat' as const),
      path: fc.oneof({ weight: 4, arbitrary: nonRootPath }, { weight: 1, arbitrary: pathArb }),
      sources: fc.array(
        fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom('/a', '/b', '/c', '/a/b') },
          { weight: 1, arbitrary: pathArb },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      // Half the time each source is first created (overwrite, parents) with these block
      // lengths, as multipart parts are, so that concats succeed and move blocks.
      fill: fc.option(fc.array(fc.integer({ min: 1, max: BLOCK }), { maxLength: 2 }), { nil: null }),
    }),
  },
);

/** Where the concat op writes its new file before completing it onto its path (never a model name). */
const CONCAT_TEMP = '/z';
/** Concat ops that moved blocks, reported with the run (a model test that never reaches them proves nothing). */
let movedConcats = 0;
const concatOutcomes = new Map<string, number>();

async function runReal(ns: Namespace, o: Op): Promise<string> {
  switch (o.op) {
    case 'mkdir':
      await ns.mkdir(o.path, { parents: o.parents });
      return 'ok';
    case 'create': {
      const { status, leaseId } = await ns.create(o.path, {
        overwrite: o.overwrite,
        parents: o.parents,
        blockSize: BLOCK,
      });
      const blocks = [];
      for (const len of o.sizes)
        blocks.push({ blockId: (await ns.addBlock(status.id, leaseId)).blockId, length: len });
      await ns.complete(
        status.id,
        leaseId,
        blocks,
        o.sizes.reduce((a, b) => a + b, 0),
      );
      return 'ok';
    }
    case 'delete':
      await ns.delete(o.path, { recursive: o.recursive });
      return 'ok';
    case 'rename':
      await ns.rename(o.src, o.dst, { noReplace: o.noReplace });
      return 'ok';
    case 'symlink':
      await ns.symlink(o.target, o.path);
      return 'ok';
    case 'link':
      await ns.link(o.existing, o.path);
      return 'ok';
    case 'truncate':
      await ns.setAttr(o.path, { length: o.length });
      return 'ok';
    case 'chmod': {
      const s = await ns.getStatus(o.path);
      if (s.type === 'symlink') return 'SKIP';
      await ns.setAttr(o.path, { mode: o.mode });
      return 'ok';
    }
    case 'stat':
      return describeStatus(await ns.getStatus(o.path));
    case 'list': {
      const entries = [];
      let after: string | undefined;
      for (;;) {
        const page = await ns.list(o.path, {
          limit: 2,
          ...(after === undefined ? {} : { startAfter: after }),
        });
        entries.push(...page.entries);
        if (page.nextStartAfter === undefined) break;
        after = page.nextStartAfter;
      }
      return entries.map((e) => `${e.name}:${describeStatus(e)}`).join(' ');
    }
    case 'readlink':
      return ns.readlink(o.path);
    case 'concat': {
      for (const path of o.fill === null ? [] : o.sources) {
        await runReal(ns, { op: 'create', path, overwrite: true, parents: true, sizes: o.fill ?? [] });
      }
      // The ids the caller sees first (as the S3 gateway stats its parts), then the call.
      const concat = [];
      for (const path of o.sources) {
        const fileId = await ns.getStatus(path).then(
          (st) => st.id,
          () => -1,
        );
        concat.push({ path, fileId });
      }
      const { status, leaseId } = await ns.create(CONCAT_TEMP, { blockSize: BLOCK });
      try {
        const done = await ns.completeAs(status.id, leaseId, {
          blocks: [],
          length: 0,
          renameTo: o.path,
          concat,
        });
        if (done.size > 0) movedConcats++;
      } catch (err) {
        await ns.delete(CONCAT_TEMP);
        throw err;
      }
      return 'ok';
    }
  }
}

function runModel(m: Model, o: Op): string {
  switch (o.op) {
    case 'mkdir':
      m.mkdir(o.path, o.parents);
      return 'ok';
    case 'create':
      m.create(
        o.path,
        o.overwrite,
        o.parents,
        o.sizes.reduce((a, b) => a + b, 0),
      );
      return 'ok';
    case 'delete':
      m.delete(o.path, o.recursive);
      return 'ok';
    case 'rename':
      m.rename(o.src, o.dst, o.noReplace);
      return 'ok';
    case 'symlink':
      m.symlink(o.target, o.path);
      return 'ok';
    case 'link':
      m.link(o.existing, o.path);
      return 'ok';
    case 'truncate':
      m.truncate(o.path, o.length);
      return 'ok';
    case 'chmod':
      m.chmod(o.path, o.mode);
      return 'ok';
    case 'stat':
      return m.stat(o.path);
    case 'list':
      return m.list(o.path);
    case 'readlink':
      return m.readlink(o.path);
    case 'concat': {
      for (const path of o.fill === null ? [] : o.sources) {
        m.create(
          path,
          true,
          true,
          (o.fill ?? []).reduce((a, b) => a + b, 0),
        );
      }
      const before = o.sources.map((src) => {
        try {
          return m.existing(m.split(src)).node;
        } catch (err) {
          if (err instanceof ModelError) return undefined;
          throw err;
        }
      });
      m.concat(o.path, o.sources, before);
      return 'ok';
    }
  }
}

async function outcome(fn: () => Promise<string> | string): Promise<string> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ModelError) return err.code === 'SKIP' ? 'SKIP' : `error ${err.code}`;
    if (err instanceof FsError) return `error ${err.code}`;
    throw err;
  }
}

/** Every path of the model tree with its description, for the end-of-run comparison. */
function dumpModel(m: Model): string[] {
  const out: string[] = [];
  const visit = (d: MDir, path: string): void => {
    for (const [name, c] of [...d.children].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const p = path === '/' ? `/${name}` : `${path}/${name}`;
      out.push(`${p} ${describeNode(c)}`);
      if (c.kind === 'dir') visit(c, p);
    }
  };
  visit(m.root, '/');
  return out;
}

async function dumpReal(ns: Namespace): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string): Promise<void> => {
    for (const e of (await ns.list(path)).entries) {
      out.push(`${e.path} ${describeStatus(e)}`);
      if (e.type === 'dir') await visit(e.path);
    }
  };
  await visit('/');
  return out;
}

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Date.now() % 2 ** 31;

function modelTest(engine: Engine, numRuns: number): void {
  test(`namespace agrees with the model on ${engine} (seed ${SEED})`, async (t) => {
    t.diagnostic(`fast-check seed ${SEED} (rerun with FC_SEED=${SEED})`);
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const { ns, store } = await openNs(t, engine);
        const m = new Model();
        try {
          for (const [i, o] of ops.entries()) {
            const want = await outcome(() => runModel(m, o));
            const got = await outcome(() => runReal(ns, o));
            if (o.op === 'concat') concatOutcomes.set(got, (concatOutcomes.get(got) ?? 0) + 1);
            assert.equal(got, want, `step ${i}: ${JSON.stringify(o)}`);
          }
          assert.deepEqual(await dumpReal(ns), dumpModel(m));
          const report = await checkNamespace(store);
          assert.deepEqual(report.problems, []);
        } finally {
          await store.close();
        }
        runs++;
      }),
      { seed: SEED, numRuns, endOnFailure: false },
    );
    assert.equal(runs >= numRuns, true);
    t.diagnostic(
      `concat ops so far: ${JSON.stringify(Object.fromEntries(concatOutcomes))}, ${movedConcats} of them moved blocks`,
    );
  });
}

/** FC_RUNS scales the number of sequences (e.g. FC_RUNS=20 for a long local hunt). */
const SCALE = Number(process.env.FC_RUNS ?? 1);

describe('namespace model', () => {
  modelTest('lmdb', 120 * SCALE);
  modelTest('memory-remote', 60 * SCALE);
});
