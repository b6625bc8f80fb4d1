// The LMDB engine's write-ahead log: records round-trip and damage is detected; a log LMDB lags
// behind is replayed on open (a torn tail dropped; a record written whole and damaged after, or
// damage before the last segment, refused); and
// SIGKILL of a writer, or of a store replaying its log, loses no acknowledged transaction.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LmdbStore } from '../../src/meta/index.js';
import { recoverWal, WriteAheadLog } from '../../src/meta/lmdb/wal.js';
import { encodeWalRecord, scanWalSegment } from '../../src/meta/lmdb/wal-record.js';
import { startProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/wait.js';
import { WAL_CHILD_SEGMENT_BYTES, WAL_CHILD_WRITERS } from './wal-child.js';

const CHILD = fileURLToPath(new URL('./wal-child.js', import.meta.url));
const enc = (s: string): Buffer => Buffer.from(s);
const str = (v: Uint8Array | undefined): string | undefined =>
  v === undefined ? undefined : Buffer.from(v).toString();

function segmentName(rev: number): string {
  return `wal-${String(rev).padStart(16, '0')}.log`;
}

/** Record `rev` puts `r/<rev>`; every third one also deletes `r/<rev - 1>`. */
function record(rev: number): Buffer {
  const writes: { key: Buffer; value: Buffer | undefined }[] = [
    { key: enc(`r/${rev}`), value: enc(`v${rev}`) },
  ];
  if (rev % 3 === 0) writes.push({ key: enc(`r/${rev - 1}`), value: undefined });
  return encodeWalRecord(rev, writes);
}

/** A store at revision 1 (key `base`), closed, so that hand-written log segments follow it. */
async function baseStore(dir: string): Promise<void> {
  const s = await LmdbStore.open({ dir, wal: true });
  await s.put(enc('base'), enc('1'));
  assert.equal(s.stats().revision, 1);
  await s.close();
  // A clean close leaves LMDB complete: the log the next open finds has nothing above it.
  for (const f of readdirSync(dir)) if (f.startsWith('wal-')) writeFileSync(join(dir, f), '');
}

test('records round-trip; a torn, corrupt or zero tail ends the scan where the damage starts', () => {
  const a = record(2);
  const b = encodeWalRecord(3, [
    { key: enc('x'), value: Buffer.alloc(70_000, 7) },
    { key: enc('y'), value: undefined },
  ]);
  const whole = scanWalSegment(Buffer.concat([a, b]));
  assert.equal(whole.damage, undefined);
  assert.deepEqual(
    whole.records.map((r) => r.revision),
    [2, 3],
  );
  assert.deepEqual(whole.records[1]?.writes[0]?.value, Buffer.alloc(70_000, 7));
  assert.equal(whole.records[1]?.writes[1]?.value, undefined);

  const torn = scanWalSegment(Buffer.concat([a, b.subarray(0, b.length - 1)]));
  assert.equal(torn.records.length, 1);
  assert.equal(torn.validBytes, a.length);
  assert.match(torn.damage ?? '', /claiming/);
  assert.equal(torn.damageKind, 'torn');

  const flipped = Buffer.concat([a, b]);
  flipped[a.length + 30] = (flipped[a.length + 30] ?? 0) ^ 0x40;
  const bad = scanWalSegment(flipped);
  assert.equal(bad.records.length, 1);
  assert.match(bad.damage ?? '', /checksum/);
  assert.equal(bad.damageKind, 'corrupt', 'every sector of the record was written: not a torn write');

  // A crash wrote the record's first and last sectors but not one between (still zeros).
  const holed = Buffer.concat([a, b]);
  const sector = Math.ceil((a.length + 1024) / 512) * 512;
  holed.fill(0, sector, sector + 512);
  const hole = scanWalSegment(holed);
  assert.equal(hole.records.length, 1);
  assert.equal(hole.damageKind, 'torn');

  // Preallocated zeros after the records: the end of the log, not damage.
  const zeros = scanWalSegment(Buffer.concat([a, Buffer.alloc(4096)]));
  assert.equal(zeros.records.length, 1);
  assert.equal(zeros.damage, undefined);
});

test('open replays the records LMDB lacks and drops a torn tail; new transactions follow them', async (t) => {
  const dir = tempDir(t, 'strata-wal-');
  await baseStore(dir);
  const recs = [2, 3, 4, 5, 6].map(record);
  const last = recs.pop() ?? Buffer.alloc(0);
  // Revision 6 was being written when the process died: half of it reached the file.
  writeFileSync(join(dir, segmentName(2)), Buffer.concat([...recs, last.subarray(0, last.length >> 1)]));
  // Closed before the temp dir goes (a store writes its next segment in the background).
  const s = await LmdbStore.open({ dir, wal: true });
  try {
    assert.equal(s.stats().revision, 5);
    assert.equal(str(await s.get(enc('base'))), '1');
    assert.equal(str(await s.get(enc('r/2'))), undefined, 'deleted by record 3');
    assert.equal(str(await s.get(enc('r/3'))), 'v3');
    assert.equal(str(await s.get(enc('r/5'))), 'v5');
    assert.equal(await s.get(enc('r/6')), undefined, 'the torn record is not applied');
    const [entry] = await s.scan({ prefix: enc('r/5') });
    assert.equal(entry?.modRevision, 5);
    // The replayed segment is gone; the next transaction takes the next revision.
    assert.ok(!readdirSync(dir).includes(segmentName(2)));
    await s.put(enc('after'), enc('x'));
    assert.equal(s.stats().revision, 6);
    const [after] = await s.scan({ prefix: enc('after') });
    assert.equal(after?.modRevision, 6);
  } finally {
    await s.close();
  }
});

test('a record written whole but damaged in the last segment refuses to open, naming the way out', async (t) => {
  const dir = tempDir(t, 'strata-wal-');
  await baseStore(dir);
  const recs = [2, 3, 4].map(record);
  const file = Buffer.concat(recs);
  const at = (recs[0]?.length ?? 0) + 20;
  file[at] = (file[at] ?? 0) ^ 0xff;
  const path = join(dir, segmentName(2));
  writeFileSync(path, file);
  // Records 3 and 4 were acknowledged (they were written whole): dropping them would lose them.
  await assert.rejects(LmdbStore.open({ dir, wal: true }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STRATA_META_CORRUPT');
    assert.match(err.message, /bad checksum at offset \d+/);
    assert.ok(err.message.includes(`truncate -s ${recs[0]?.length ?? 0} ${path}`), err.message);
    return true;
  });
  // The way out the message names: the records before the damage are kept.
  writeFileSync(path, file.subarray(0, recs[0]?.length ?? 0));
  const s = await LmdbStore.open({ dir, wal: true });
  try {
    assert.equal(s.stats().revision, 2);
    assert.equal(str(await s.get(enc('r/2'))), 'v2');
    assert.equal(await s.get(enc('r/3')), undefined);
  } finally {
    await s.close();
  }
});

test('a torn record in a preallocated last segment (a sector still zeros) is dropped with what follows', async (t) => {
  const dir = tempDir(t, 'strata-wal-');
  await baseStore(dir);
  const big = encodeWalRecord(3, [{ key: enc('r/3'), value: Buffer.alloc(4096, 9) }]);
  const recs = [record(2), big, record(4)];
  // Preallocated: zeros after the records, as a segment the writer moved into.
  const file = Buffer.concat([...recs, Buffer.alloc(64 * 1024)]);
  // The crash wrote the batch's sectors out of order: one sector inside record 3 never landed.
  const sector = Math.ceil(((recs[0]?.length ?? 0) + 1024) / 512) * 512;
  file.fill(0, sector, sector + 512);
  writeFileSync(join(dir, segmentName(2)), file);
  const s = await LmdbStore.open({ dir, wal: true });
  try {
    assert.equal(s.stats().revision, 2);
    assert.equal(str(await s.get(enc('r/2'))), 'v2');
    assert.equal(await s.get(enc('r/3')), undefined);
    assert.equal(await s.get(enc('r/4')), undefined);
  } finally {
    await s.close();
  }
});

test('damage before the last segment, or a gap in revisions, refuses to open', async (t) => {
  const dir = tempDir(t, 'strata-wal-');
  await baseStore(dir);
  const first = Buffer.concat([record(2), record(3)]);
  first[first.length - 3] = (first[first.length - 3] ?? 0) ^ 1;
  writeFileSync(join(dir, segmentName(2)), first);
  writeFileSync(join(dir, segmentName(4)), record(4));
  await assert.rejects(LmdbStore.open({ dir, wal: true }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STRATA_META_CORRUPT');
    assert.match(err.message, /damaged .* not the last one/);
    return true;
  });

  const gap = tempDir(t, 'strata-wal-');
  await baseStore(gap);
  writeFileSync(join(gap, segmentName(3)), Buffer.concat([record(3), record(4)]));
  await assert.rejects(LmdbStore.open({ dir: gap, wal: true }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'STRATA_META_CORRUPT');
    assert.match(err.message, /jumps to revision 3, expected 2/);
    return true;
  });
});

test('segments rotate into preallocated spares; released segments go, the live one never does', async (t) => {
  const dir = tempDir(t, 'strata-wal-rotate-');
  const segmentBytes = 4096;
  const wal = new WriteAheadLog({ dir, nextRevision: 1, segmentBytes });
  try {
    let rev = 0;
    const appendSome = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        rev++;
        await wal.append(rev, record(rev));
      }
    };
    await appendSome(3);
    assert.deepEqual(wal.segments, [segmentName(1)]);
    assert.equal(wal.spareReady, false, 'no zeros written for a log that wrote little');
    wal.release(rev);
    assert.ok(readdirSync(dir).includes(segmentName(1)), 'the live segment is not deleted');
    // Busy: a spare is prepared, and the next batch moves into it.
    await waitFor('a second segment', async () => {
      await appendSome(5);
      return wal.segments.length >= 2;
    });
    const live = wal.segments[1] ?? '';
    assert.equal(wal.segments[0], segmentName(1));
    wal.release(3);
    assert.equal(wal.segments.length, 2, 'a segment is kept until all its records are released');
    wal.release(rev);
    assert.deepEqual(wal.segments, [live]);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.log')),
      [live],
    );
    // Everything after the released revision is still replayable from the files.
    await appendSome(2);
    const replay = recoverWal(dir, rev - 2);
    assert.deepEqual(
      replay.map((r) => r.revision),
      [rev - 1, rev],
    );
  } finally {
    await wal.close();
  }
});

/** Acknowledged transactions per writer, from the child's output. */
function acked(stdout: string): Map<number, number> {
  const last = new Map<number, number>();
  for (const m of stdout.matchAll(/^ack (\d+) (\d+)$/gm)) last.set(Number(m[1]), Number(m[2]));
  return last;
}

async function checkWriters(dir: string, lastAcked: Map<number, number>): Promise<number> {
  const s = await LmdbStore.open({ dir, wal: true, walSegmentBytes: WAL_CHILD_SEGMENT_BYTES });
  try {
    let total = 0;
    for (let w = 0; w < WAL_CHILD_WRITERS; w++) {
      const ks = await s.scan({ prefix: enc(`k/${w}/`) });
      const n = lastAcked.get(w);
      const last = Number(str(await s.get(enc(`last/${w}`))) ?? -1);
      const tmp = await s.scan({ prefix: enc(`tmp/${w}/`) });
      if (n !== undefined) {
        // Every acknowledged transaction is there, in order and whole.
        assert.ok(ks.length >= n + 1, `writer ${w}: ${ks.length} keys, ${n + 1} acknowledged`);
        assert.ok(last >= n, `writer ${w}: last ${last} < acknowledged ${n}`);
      }
      ks.forEach((e, i) => assert.equal(str(e.value), String(i), `writer ${w}: key ${i} missing`));
      if (last >= 0) {
        assert.equal(ks.length, last + 1, `writer ${w}: keys and last/ disagree`);
        assert.equal(tmp.length, 1, `writer ${w}: tmp/ holds ${tmp.length} keys (a torn transaction)`);
        assert.equal(str(tmp[0]?.value), String(last));
      }
      total += ks.length;
    }
    return total;
  } finally {
    await s.close();
  }
}

test('SIGKILL while writing (segments rotating, LMDB committing behind) loses no acknowledged transaction', async (t) => {
  const dir = tempDir(t, 'strata-wal-kill-');
  const lastAcked = new Map<number, number>();
  let total = 0;
  for (let cycle = 0; cycle < 4; cycle++) {
    const child = startProcess(process.execPath, [CHILD, 'write', dir], { t });
    // A different moment each cycle: after 50 to 800 acknowledgements.
    const wanted = 50 + ((cycle * 251) % 750);
    await waitFor(
      `${wanted} acknowledged transactions`,
      () => (child.stdout.match(/^ack /gm)?.length ?? 0) >= wanted,
      30_000,
    );
    child.child.kill('SIGKILL');
    assert.equal(await child.exited, 'SIGKILL');
    for (const [w, i] of acked(child.stdout)) lastAcked.set(w, Math.max(i, lastAcked.get(w) ?? -1));
    const now = await checkWriters(dir, lastAcked);
    assert.ok(now > total, 'each cycle adds transactions');
    total = now;
  }
});

test('SIGKILL while replaying a long log: the next open finishes the replay', async (t) => {
  const dir = tempDir(t, 'strata-wal-replay-');
  await baseStore(dir);
  const n = 20_000;
  const recs: Buffer[] = [];
  for (let rev = 2; rev <= n + 1; rev++) recs.push(record(rev));
  // Two segments, as a rotation leaves them.
  writeFileSync(join(dir, segmentName(2)), Buffer.concat(recs.slice(0, n / 2)));
  writeFileSync(join(dir, segmentName(2 + n / 2)), Buffer.concat(recs.slice(n / 2)));
  for (const delayMs of [0, 40, 120]) {
    const child = startProcess(process.execPath, [CHILD, 'open', dir], { t });
    await child.waitForOutput('opening', 15_000);
    await new Promise((r) => setTimeout(r, delayMs));
    child.child.kill('SIGKILL');
    await child.exited;
  }
  const s = await LmdbStore.open({ dir, wal: true });
  try {
    assert.equal(s.stats().revision, n + 1);
    const rows = await s.scan({ prefix: enc('r/') });
    // Every third record deletes its predecessor.
    const expected = Array.from({ length: n }, (_, i) => i + 2).filter(
      (rev) => (rev + 1) % 3 !== 0 || rev === n + 1,
    );
    assert.equal(rows.length, expected.length);
    for (const rev of [2, 3, 5, 6, n + 1]) {
      const want = expected.includes(rev) ? `v${rev}` : undefined;
      assert.equal(str(await s.get(enc(`r/${rev}`))), want, `r/${rev}`);
    }
    const segments = readdirSync(dir).filter((f) => f.startsWith('wal-') && f.endsWith('.log'));
    assert.equal(segments.length, 1, 'replayed segments are deleted');
    assert.equal(readFileSync(join(dir, segments[0] ?? '')).length, 0);
  } finally {
    await s.close();
  }
});
