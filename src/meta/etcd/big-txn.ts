/**
 * Transactions larger than one etcd request (more writes than `--max-txn-ops`, or more bytes
 * than `--max-request-bytes`): a redo log with an intent record, so that readers never see one
 * half applied.
 *
 * 1. The writes go to a redo log under `x/redo/<id>/`, in chunks, attached to the writer's
 *    session lease: if the writer dies now, etcd deletes them with the lease and nothing happened.
 * 2. The commit point is one etcd transaction: the usual validation compares (reads unchanged,
 *    fence held, no other intent) plus "chunk 0 still exists" (so the lease has not expired);
 *    it writes the intent record `x/intent` = {id, chunks} and detaches every chunk from the
 *    lease (a put with ignore_value and no lease), so the log now outlives the writer.
 * 3. Roll forward: the log is applied in batches that fit etcd's limits, each one conditioned on
 *    the intent still being the same record (so a late batch cannot land after the release).
 *    Applying is idempotent (puts of fixed values, deletes), so anyone may do it, any number
 *    of times: the writer, or whoever finds the intent with its writer's session lease expired.
 * 4. Release: the intent and the log are deleted in one transaction.
 *
 * While an intent exists, every other commit fails its "no intent" compare and every snapshot
 * read that finds it waits: the big transaction is invisible until it is whole, then whole.
 */
import { pack, unpack } from 'msgpackr';
import type { ICompare, IRequestOp } from 'etcd3';
import { metaCorrupt, metaLimit } from '../errors.js';
import type { EtcdLayout } from './layout.js';
import { ETCD_APPLY_CONCURRENCY, ETCD_OP_OVERHEAD_BYTES, ETCD_REDO_CHUNK_BYTES } from './limits.js';
import type { EtcdTransport } from './transport.js';

/** One write of the log: etcd key, value (null = delete). */
export type RedoWrite = [Buffer, Buffer | null];

export interface IntentRecord {
  /** Redo log id. */
  id: string;
  chunks: number;
  /** Session lease of the writer (hex); a helper rolls forward once it has expired. */
  owner: string;
  /** When the commit point was reached (writer's clock, for the give-up-waiting bound). */
  atMs: number;
}

export function encodeIntent(r: IntentRecord): Buffer {
  return Buffer.from(JSON.stringify(r), 'utf8');
}

export function decodeIntent(v: Buffer): IntentRecord {
  try {
    const r = JSON.parse(v.toString('utf8')) as Partial<IntentRecord>;
    if (typeof r.id === 'string' && typeof r.chunks === 'number' && typeof r.owner === 'string')
      return { id: r.id, chunks: r.chunks, owner: r.owner, atMs: typeof r.atMs === 'number' ? r.atMs : 0 };
  } catch {
    // fall through
  }
  throw metaCorrupt(
    `the etcd intent record is not one this version of Strata wrote: ${v.toString('hex').slice(0, 80)}`,
  );
}

function writeBytes(w: RedoWrite): number {
  return w[0].length + (w[1]?.length ?? 0) + ETCD_OP_OVERHEAD_BYTES;
}

/** Splits the log into chunks of at most `chunkBytes` (a write bigger than that is a chunk of its own). */
export function packRedo(writes: readonly RedoWrite[], chunkBytes = ETCD_REDO_CHUNK_BYTES): Buffer[] {
  const out: Buffer[] = [];
  let cur: RedoWrite[] = [];
  let bytes = 0;
  for (const w of writes) {
    const n = writeBytes(w);
    if (cur.length > 0 && bytes + n > chunkBytes) {
      out.push(pack(cur));
      cur = [];
      bytes = 0;
    }
    cur.push(w);
    bytes += n;
  }
  if (cur.length > 0) out.push(pack(cur));
  return out;
}

export function unpackRedo(chunks: readonly Buffer[]): RedoWrite[] {
  const out: RedoWrite[] = [];
  for (const c of chunks) {
    const ws = unpack(c) as unknown;
    if (!Array.isArray(ws)) throw metaCorrupt('an etcd redo chunk is not a list of writes');
    for (const w of ws as unknown[]) {
      if (
        !Array.isArray(w) ||
        !(w[0] instanceof Uint8Array) ||
        !(w[1] === null || w[1] instanceof Uint8Array)
      )
        throw metaCorrupt('an etcd redo chunk holds a malformed write');
      out.push([Buffer.from(w[0]), w[1] === null ? null : Buffer.from(w[1] as Uint8Array)]);
    }
  }
  return out;
}

export function writeOp(w: RedoWrite): IRequestOp {
  return w[1] === null
    ? { request_delete_range: { key: w[0] } }
    : { request_put: { key: w[0], value: w[1] } };
}

/** Batches of writes that each fit one etcd transaction next to `reservedOps` other operations. */
export function applyBatches(
  writes: readonly RedoWrite[],
  maxOps: number,
  budgetBytes: number,
  reservedOps = 0,
): RedoWrite[][] {
  const out: RedoWrite[][] = [];
  let cur: RedoWrite[] = [];
  let bytes = 0;
  for (const w of writes) {
    const n = writeBytes(w);
    if (cur.length > 0 && (cur.length + reservedOps >= maxOps || bytes + n > budgetBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(w);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export interface ApplyContext {
  transport: EtcdTransport;
  layout: EtcdLayout;
  maxOps: number;
  budgetBytes: number;
}

/**
 * Rolls a committed intent forward and releases it. `intentRevision` is the intent record's
 * modRevision (what every batch compares). Returns the revision of the release, or undefined
 * when someone else released it first.
 */
export async function rollForward(
  ctx: ApplyContext,
  intent: IntentRecord,
  intentRevision: number,
  writes: readonly RedoWrite[],
): Promise<number | undefined> {
  const { layout, transport } = ctx;
  const same: ICompare = {
    key: layout.intentKey,
    target: 'Mod',
    result: 'Equal',
    mod_revision: intentRevision,
  };
  const batches = applyBatches(writes, ctx.maxOps, ctx.budgetBytes);
  let next = 0;
  let gone = false;
  const worker = async (): Promise<void> => {
    while (!gone && next < batches.length) {
      const batch = batches[next++] as RedoWrite[];
      const r = await transport.idempotent('commit', () =>
        transport.client.kv.txn({ compare: [same], success: batch.map(writeOp) }),
      );
      if (!r.succeeded) gone = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(ETCD_APPLY_CONCURRENCY, batches.length) }, worker));
  if (gone) return undefined;
  const prefix = layout.redoPrefix(intent.id);
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] as number) + 1;
  const r = await transport.idempotent('commit', () =>
    transport.client.kv.txn({
      compare: [same],
      success: [
        { request_delete_range: { key: layout.intentKey } },
        { request_delete_range: { key: prefix, range_end: end } },
        { request_put: { key: layout.commitKey, value: Buffer.from(`release:${intent.id}`) } },
      ],
    }),
  );
  return r.succeeded ? Number(r.header.revision) : undefined;
}

/** Reads a committed intent's redo log back (a helper finishing someone else's transaction). */
export async function readRedo(ctx: ApplyContext, intent: IntentRecord): Promise<RedoWrite[]> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < intent.chunks; i++) {
    const r = await ctx.transport.range({ key: ctx.layout.redoKey(intent.id, i) });
    const kv = r.kvs[0];
    if (kv === undefined)
      throw metaCorrupt(
        `etcd redo log ${intent.id} lost chunk ${i} of ${intent.chunks} after its commit point`,
      );
    chunks.push(kv.value);
  }
  return unpackRedo(chunks);
}

/** Refuses a transaction whose log needs more chunks than one commit point can detach. */
export function checkChunkCount(chunks: number, maxOps: number): void {
  const most = maxOps - 2;
  if (chunks > most) throw metaLimit('redo log chunks of one metadata transaction (etcd)', chunks, most);
}
