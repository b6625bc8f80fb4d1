/**
 * The kernel addresses files by node id; our operations take paths (as libfuse's high-level
 * layer does). This table gives each (parent, name) the kernel has looked up a node id and a
 * lookup count: LOOKUP/CREATE/MKDIR/SYMLINK/LINK/MKNOD add one, FORGET takes them back, and
 * the node is dropped at zero. RENAME moves a node (its descendants follow, as their paths are
 * computed through their parents); UNLINK/RMDIR detach it from its name, so a later entry of the
 * same name gets a new node while the kernel may still hold the old id.
 */
import { FsError } from '../../common/errors.js';
import { FUSE_ROOT_ID } from './protocol.js';

interface Node {
  readonly id: bigint;
  parent: Node | undefined;
  name: string;
  lookups: number;
  /** Unlinked (or replaced by a rename): no longer reachable by name. */
  detached: boolean;
  /** (mtime, size) when a descriptor last opened it with the page cache kept (auto_cache). */
  cacheStamp: string | undefined;
  /** (mtime, size) of the last attributes sent to the kernel, and when. */
  attrStamp: string | undefined;
  attrAtMs: number;
}

const key = (parent: bigint, name: string): string => `${parent}/${name}`;

export class NodeTable {
  readonly #byId = new Map<bigint, Node>();
  readonly #byName = new Map<string, Node>();
  #nextId = BigInt(FUSE_ROOT_ID) + 1n;

  constructor() {
    const root: Node = {
      id: BigInt(FUSE_ROOT_ID),
      parent: undefined,
      name: '',
      lookups: 1,
      detached: false,
      cacheStamp: undefined,
      attrStamp: undefined,
      attrAtMs: 0,
    };
    this.#byId.set(root.id, root);
  }

  get size(): number {
    return this.#byId.size;
  }

  /** The mount-relative path of a node ("/" for the root); ENOENT for an unknown or unlinked id. */
  path(id: bigint): string {
    const node = this.#byId.get(id);
    if (node === undefined || node.detached) throw new FsError('ENOENT', `node ${id} is not known`);
    if (node.parent === undefined) return '/';
    const parts: string[] = [];
    for (let n: Node | undefined = node; n?.parent !== undefined; n = n.parent) parts.push(n.name);
    return `/${parts.reverse().join('/')}`;
  }

  /** The path of `name` inside directory node `parent`. */
  childPath(parent: bigint, name: string): string {
    const dir = this.path(parent);
    return dir === '/' ? `/${name}` : `${dir}/${name}`;
  }

  /** Counts one more kernel reference to (parent, name), creating its node; returns its id. */
  remember(parent: bigint, name: string): bigint {
    const k = key(parent, name);
    let node = this.#byName.get(k);
    if (node === undefined) {
      const p = this.#byId.get(parent);
      if (p === undefined) throw new FsError('ENOENT', `node ${parent} is not known`);
      node = {
        id: this.#nextId++,
        parent: p,
        name,
        lookups: 0,
        detached: false,
        cacheStamp: undefined,
        attrStamp: undefined,
        attrAtMs: 0,
      };
      this.#byId.set(node.id, node);
      this.#byName.set(k, node);
    }
    node.lookups++;
    return node.id;
  }

  /** The kernel dropped `count` references. */
  forget(id: bigint, count: number): void {
    const node = this.#byId.get(id);
    if (node === undefined || node.parent === undefined) return;
    node.lookups -= count;
    if (node.lookups > 0) return;
    this.#byId.delete(id);
    if (!node.detached) this.#byName.delete(key(node.parent.id, node.name));
  }

  /** (parent, name) was removed: its node (if any) is no longer reachable by that name. */
  removed(parent: bigint, name: string): void {
    const k = key(parent, name);
    const node = this.#byName.get(k);
    if (node === undefined) return;
    this.#byName.delete(k);
    node.detached = true;
  }

  /** A rename succeeded: the source node takes the target's name (a replaced target is detached). */
  renamed(parent: bigint, name: string, newParent: bigint, newName: string): void {
    this.removed(newParent, newName);
    const k = key(parent, name);
    const node = this.#byName.get(k);
    const dest = this.#byId.get(newParent);
    if (node === undefined || dest === undefined) return;
    this.#byName.delete(k);
    node.parent = dest;
    node.name = newName;
    this.#byName.set(key(newParent, newName), node);
  }

  /** Attributes with this (mtime, size) stamp were just sent to the kernel. */
  sawAttr(id: bigint, stamp: string): void {
    const node = this.#byId.get(id);
    if (node === undefined) return;
    node.attrStamp = stamp;
    node.attrAtMs = Date.now();
  }

  /** The stamp of the last attributes sent, if sent after `sinceMs`. */
  freshStamp(id: bigint, sinceMs: number): string | undefined {
    const node = this.#byId.get(id);
    return node !== undefined && node.attrAtMs > sinceMs ? node.attrStamp : undefined;
  }

  /**
   * auto_cache: whether a new descriptor may keep the cached pages, i.e. the file's (mtime,
   * size) are what they were when the cache was last kept. Records the stamp either way.
   */
  keepCache(id: bigint, stamp: string): boolean {
    const node = this.#byId.get(id);
    if (node === undefined) return false;
    const same = node.cacheStamp === stamp;
    node.cacheStamp = stamp;
    return same;
  }
}
