/**
 * The thread that reads requests from /dev/fuse. A read blocks until the kernel has a request,
 * so it cannot run on the event loop; this thread does nothing else. Each read fills one slot of
 * a SharedArrayBuffer (max_write plus a page per slot, what the kernel requires of a reader). A
 * small request is copied out and its slot reused at once; a large one (a WRITE's payload) is
 * handed over as its slot number, and the event loop gives the slot back when the request is
 * done with it. Shared slots instead of a fresh 1 MiB ArrayBuffer per request: a new buffer per
 * write made V8 collect garbage for ~30% of the event loop's time during 1 MiB writes.
 *
 * When every slot is in use the thread waits (Atomics.wait) until one is given back: the kernel
 * keeps the next requests queued meanwhile.
 *
 * READs of handles the event loop granted direct reads are answered here and never handed over
 * (direct-reads.ts).
 *
 * Messages to the parent: an ArrayBuffer per small request; `{ slot, bytes }` per large one;
 * `{ end: errno-code }` once the session is over (ENODEV: unmounted) or reading failed for good.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { DirectReadTable } from './direct-reads.js';

export interface ReaderThreadData {
  fd: number;
  /** `slotCount` slots of `slotBytes` each. */
  slots: SharedArrayBuffer;
  slotBytes: number;
  slotCount: number;
  /** Int32 per slot (SLOT_FREE / SLOT_BUSY), then the release counter the reader waits on. */
  control: SharedArrayBuffer;
  /** Requests up to this size are copied out; larger ones are handed over in their slot. */
  copyBelowBytes: number;
  /** Direct reads: grants from the event loop, shared counters, the largest READ (max_read). */
  direct?: { port: MessagePort; stats: SharedArrayBuffer; maxReadBytes: number };
}

export interface ReaderEnd {
  end: string;
  message: string;
}

export interface SlotRequest {
  slot: number;
  bytes: number;
}

export const SLOT_FREE = 0;
export const SLOT_BUSY = 1;

/** Gives a slot back to the reader (called on the event loop once its request is done). */
export function releaseSlot(control: Int32Array, slotCount: number, slot: number): void {
  Atomics.store(control, slot, SLOT_FREE);
  Atomics.add(control, slotCount, 1);
  Atomics.notify(control, slotCount);
}

/** Errors after which the same read is simply tried again. */
const RETRY = new Set(['EINTR', 'EAGAIN', 'ENOENT']);

function serve(data: ReaderThreadData, port: NonNullable<typeof parentPort>): void {
  const { fd, slotBytes, slotCount, copyBelowBytes } = data;
  const control = new Int32Array(data.control);
  const views = Array.from({ length: slotCount }, (_, i) =>
    Buffer.from(data.slots, i * slotBytes, slotBytes),
  );
  const direct =
    data.direct === undefined
      ? undefined
      : new DirectReadTable(fd, data.direct.port, data.direct.stats, data.direct.maxReadBytes);
  const end = (msg: ReaderEnd): void => {
    direct?.close();
    port.postMessage(msg);
  };
  let next = 0;
  const freeSlot = (): number => {
    for (;;) {
      const seen = Atomics.load(control, slotCount);
      for (let k = 0; k < slotCount; k++) {
        const i = (next + k) % slotCount;
        if (Atomics.load(control, i) === SLOT_FREE) {
          next = (i + 1) % slotCount;
          return i;
        }
      }
      // All busy: sleep until the event loop releases one (the counter moves past `seen`).
      Atomics.wait(control, slotCount, seen);
    }
  };
  for (;;) {
    const slot = freeSlot();
    const view = views[slot] as Buffer;
    let n: number;
    try {
      n = readSync(fd, view, 0, slotBytes, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      // ENOENT: the request was interrupted before we read it.
      if (RETRY.has(code)) continue;
      end({ end: code, message: (err as Error).message });
      return;
    }
    if (n === 0) {
      end({ end: 'EOF', message: 'read 0 bytes from /dev/fuse' });
      return;
    }
    if (direct?.offer(view, n) === true) continue;
    if (n < copyBelowBytes) {
      // A copy (Buffer#slice would share the slot).
      const out = new Uint8Array(n);
      out.set(view.subarray(0, n));
      port.postMessage(out.buffer, [out.buffer]);
    } else {
      Atomics.store(control, slot, SLOT_BUSY);
      port.postMessage({ slot, bytes: n } satisfies SlotRequest);
    }
  }
}

if (parentPort !== null && (workerData as Partial<ReaderThreadData> | null)?.slots !== undefined)
  serve(workerData as ReaderThreadData, parentPort);
