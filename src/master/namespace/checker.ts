/**
 * The namespace consistency checker: reads every record of the store and lists each violated
 * invariant (dangling entries, orphan inodes, wrong link counts, block index out of step with
 * block lists, lease and TTL indexes out of step with inodes, xattr counts, counters behind ids).
 * Used by the crash tests after every restart, and by operators (`strata master --check`).
 */
import type { MetaStore } from '../../meta/index.js';
import { decodeInode, ROOT_ID } from './inode.js';
import type { Inode } from './inode.js';
import {
  TAG_BLOCK,
  TAG_DENTRY,
  TAG_INODE,
  TAG_LEASE,
  TAG_META,
  TAG_RETRY,
  TAG_RETRY_EXPIRY,
  TAG_TRASH,
  TAG_FOREIGN_MIN,
  TAG_TTL,
  TAG_XATTR,
  decodeDentry,
  decodeU64,
  keyId,
  keyName,
  parseTtlKey,
} from './keys.js';
import { ttlExpiry } from './ns-txn.js';

export interface CheckReport {
  problems: string[];
  inodes: number;
  entries: number;
  blocks: number;
}

const PAGE = 10_000;
/** Problems listed before the report stops collecting (the count keeps going). */
const MAX_PROBLEMS = 200;

export async function checkNamespace(store: MetaStore): Promise<CheckReport> {
  const problems: string[] = [];
  const problem = (p: string): void => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };
  const inodes = new Map<number, Inode>();
  const entries = new Map<number, Map<string, { id: number; type: string }>>();
  const blockIndex = new Map<number, number>();
  const leases = new Set<number>();
  const ttl = new Map<number, number[]>();
  const xattrs = new Map<number, number>();
  const trash = new Set<number>();
  const counters = new Map<string, number>();

  let start: Uint8Array | undefined;
  for (;;) {
    const rows = await store.scan({ ...(start === undefined ? {} : { start }), limit: PAGE });
    for (const { key, value } of rows) {
      if (start !== undefined && Buffer.compare(key, start) === 0) continue;
      switch (key[0]) {
        case TAG_META: {
          const name = Buffer.from(key.subarray(1)).toString('utf8');
          if (name.startsWith('next-')) counters.set(name, decodeU64(value));
          break;
        }
        case TAG_INODE: {
          try {
            const ino = decodeInode(value);
            if (ino.id !== keyId(key)) problem(`inode key ${keyId(key)} holds inode ${ino.id}`);
            inodes.set(ino.id, ino);
          } catch (err) {
            problem(`inode ${keyId(key)}: ${(err as Error).message}`);
          }
          break;
        }
        case TAG_DENTRY: {
          const parent = keyId(key);
          const m = entries.get(parent) ?? new Map<string, { id: number; type: string }>();
          m.set(keyName(key), decodeDentry(value));
          entries.set(parent, m);
          break;
        }
        case TAG_XATTR:
          xattrs.set(keyId(key), (xattrs.get(keyId(key)) ?? 0) + 1);
          break;
        case TAG_BLOCK:
          blockIndex.set(keyId(key), decodeU64(value));
          break;
        case TAG_TTL: {
          const { expiryMs, id } = parseTtlKey(key);
          ttl.set(id, [...(ttl.get(id) ?? []), expiryMs]);
          break;
        }
        case TAG_LEASE:
          leases.add(keyId(key));
          break;
        case TAG_TRASH:
          trash.add(keyId(key));
          break;
        case TAG_RETRY:
        case TAG_RETRY_EXPIRY:
          // Outcomes of mutating requests (retry deduplication): not part of the tree.
          break;
        default:
          if ((key[0] ?? 0) < TAG_FOREIGN_MIN) problem(`unknown key tag ${key[0]}`);
      }
    }
    if (rows.length < PAGE) break;
    start = rows[rows.length - 1]?.key;
  }

  const root = inodes.get(ROOT_ID);
  if (root === undefined || root.type !== 'dir') problem('root directory missing');

  let entryCount = 0;
  const subdirs = new Map<number, number>();
  for (const [parent, m] of entries) {
    const p = inodes.get(parent);
    if (p === undefined) problem(`entries under missing directory ${parent}`);
    else if (p.type !== 'dir') problem(`entries under non-directory ${parent}`);
    else if (p.children !== m.size)
      problem(`directory ${parent}: children=${p.children} but ${m.size} entries`);
    for (const [name, d] of m) {
      entryCount++;
      const c = inodes.get(d.id);
      if (c === undefined) {
        problem(`dangling entry ${parent}/${name} → missing inode ${d.id}`);
        continue;
      }
      if (c.type !== d.type)
        problem(`entry ${parent}/${name}: type ${d.type} but inode ${d.id} is ${c.type}`);
      if (!c.links.some((l) => l[0] === parent && l[1] === name))
        problem(`entry ${parent}/${name} → ${d.id}, but the inode does not list that name`);
      if (c.type === 'dir') subdirs.set(parent, (subdirs.get(parent) ?? 0) + 1);
    }
  }

  // Reachability from the root and from detached (trash) subtrees.
  const reached = new Set<number>();
  const todo = [ROOT_ID, ...trash];
  while (todo.length > 0) {
    const id = todo.pop() as number;
    if (reached.has(id)) continue;
    reached.add(id);
    for (const d of entries.get(id)?.values() ?? []) todo.push(d.id);
  }

  const owners = new Map<number, number>();
  for (const ino of inodes.values()) {
    if (!reached.has(ino.id)) problem(`orphan inode ${ino.id} (${ino.type}) unreachable from the root`);
    for (const [p, n] of ino.links) {
      if (entries.get(p)?.get(n)?.id !== ino.id)
        problem(`inode ${ino.id} lists name ${p}/${n} that has no entry`);
    }
    if (ino.type === 'dir') {
      const want = ino.id === ROOT_ID || trash.has(ino.id) ? 0 : 1;
      if (ino.links.length !== want) problem(`directory ${ino.id} has ${ino.links.length} names`);
      const nl = 2 + (subdirs.get(ino.id) ?? 0);
      if (ino.nlink !== nl) problem(`directory ${ino.id}: nlink=${ino.nlink}, expected ${nl}`);
      if (!entries.has(ino.id) && ino.children !== 0)
        problem(`directory ${ino.id}: children=${ino.children} but none`);
    } else if (ino.nlink !== ino.links.length) {
      problem(`inode ${ino.id}: nlink=${ino.nlink} but ${ino.links.length} names`);
    }
    if (ino.type === 'file') {
      const ids = [...ino.blocks.filter((_, i) => i % 2 === 0 && ino.blocks[i] !== 0), ...ino.pending];
      let sum = 0;
      for (let i = 1; i < ino.blocks.length; i += 2) sum += ino.blocks[i] as number;
      if (sum !== ino.length)
        problem(`file ${ino.id}: block lengths add up to ${sum}, length is ${ino.length}`);
      for (const b of ids) {
        if (blockIndex.get(b) !== ino.id) problem(`file ${ino.id}: block ${b} not indexed to it`);
        const prev = owners.get(b);
        if (prev !== undefined && prev !== ino.id) problem(`block ${b} in files ${prev} and ${ino.id}`);
        owners.set(b, ino.id);
      }
      if ((ino.lease !== null) !== leases.has(ino.id))
        problem(`file ${ino.id}: lease and lease index disagree`);
      if ((ino.lease !== null) !== (ino.state === 'writing'))
        problem(`file ${ino.id}: state ${ino.state} with lease ${ino.lease?.id ?? 'none'}`);
      if (ino.lease === null && ino.pending.length > 0)
        problem(`file ${ino.id}: pending blocks without a lease`);
    }
    const exp = ttlExpiry(ino);
    const keys = ttl.get(ino.id) ?? [];
    if (exp === undefined ? keys.length > 0 : keys.length !== 1 || keys[0] !== exp)
      problem(`inode ${ino.id}: TTL index [${keys.join(',')}] but expiry ${exp ?? 'none'}`);
    if ((xattrs.get(ino.id) ?? 0) !== ino.xattrCount)
      problem(`inode ${ino.id}: xattrCount=${ino.xattrCount} but ${xattrs.get(ino.id) ?? 0} stored`);
  }
  for (const [b, f] of blockIndex)
    if (owners.get(b) !== f) problem(`block index ${b} → file ${f} that does not list it`);
  for (const id of leases) if (!inodes.has(id)) problem(`lease index for missing file ${id}`);
  for (const id of ttl.keys()) if (!inodes.has(id)) problem(`TTL index for missing inode ${id}`);
  for (const id of xattrs.keys()) if (!inodes.has(id)) problem(`xattrs of missing inode ${id}`);
  for (const id of trash) if (inodes.get(id)?.type !== 'dir') problem(`trash entry ${id} is not a directory`);
  let maxIno = 0;
  for (const id of inodes.keys()) maxIno = Math.max(maxIno, id);
  if (inodes.size > 1 && (counters.get('next-inode') ?? 0) <= maxIno)
    problem(`inode counter behind id ${maxIno}`);
  let maxBlock = 0;
  for (const id of blockIndex.keys()) maxBlock = Math.max(maxBlock, id);
  if (maxBlock > 0 && (counters.get('next-block') ?? 0) <= maxBlock)
    problem(`block counter behind id ${maxBlock}`);

  return { problems, inodes: inodes.size, entries: entryCount, blocks: blockIndex.size };
}
