/**
 * The thread that reads requests from /dev/fuse. A read blocks until the kernel has a request,
 * so it cannot run on the event loop; this thread does nothing else. Each read fills a buffer
 * of max_write plus a page (what the kernel requires of a reader); a large request (a WRITE's
 * payload) is handed over by transferring that buffer (no copy) and a fresh one is allocated,
 * a small request is copied out into a buffer of its size so the big one is reused.
 *
 * Messages to the parent: an ArrayBuffer per request; `{ end: errno-code }` once the session is
 * over (ENODEV: unmounted) or reading failed for good.
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface ReaderThreadData {
  fd: number;
  bufferBytes: number;
  /** Requests up to this size are copied out; larger ones transfer the read buffer. */
  copyBelowBytes: number;
}

export interface ReaderEnd {
  end: string;
  message: string;
}

const { fd, bufferBytes, copyBelowBytes } = workerData as ReaderThreadData;
const port = parentPort;
if (port === null) throw new Error('reader-thread.js runs as a worker thread');

/** Errors after which the same read is simply tried again. */
const RETRY = new Set(['EINTR', 'EAGAIN', 'ENOENT']);

let buf = new Uint8Array(new ArrayBuffer(bufferBytes));
for (;;) {
  let n: number;
  try {
    n = readSync(fd, buf, 0, bufferBytes, null);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    // ENOENT: the request was interrupted before we read it.
    if (RETRY.has(code)) continue;
    port.postMessage({ end: code, message: (err as Error).message } satisfies ReaderEnd);
    break;
  }
  if (n === 0) {
    port.postMessage({ end: 'EOF', message: 'read 0 bytes from /dev/fuse' } satisfies ReaderEnd);
    break;
  }
  if (n < copyBelowBytes) {
    const out = buf.slice(0, n);
    port.postMessage(out.buffer, [out.buffer]);
  } else {
    const whole = buf.buffer;
    port.postMessage({ bytes: n, buffer: whole }, [whole]);
    buf = new Uint8Array(new ArrayBuffer(bufferBytes));
  }
}
