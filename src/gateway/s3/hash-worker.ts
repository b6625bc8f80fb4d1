/**
 * A hash thread: keeps the digests of the uploads assigned to it and feeds them the bytes the
 * gateway's main thread transfers, so MD5 (and the SHA or CRC checksum a client asks for) of every
 * uploaded byte does not run on the thread that parses HTTP and writes blocks.
 */
import { parentPort } from 'node:worker_threads';
import { InlineHasher } from './digests.js';
import type { DigestAlgorithms, Digests } from './digests.js';

/** From the main thread. */
export type HashRequest =
  | { t: 'start'; id: number; algos: DigestAlgorithms }
  | { t: 'data'; id: number; slab: SharedArrayBuffer; length: number }
  | { t: 'end'; id: number }
  | { t: 'drop'; id: number };

/** To the main thread: bytes hashed (back-pressure), or the finished digests. */
export type HashReply =
  | { t: 'ack'; id: number; bytes: number; slab: SharedArrayBuffer }
  | { t: 'done'; id: number; digests: Digests };

const port = parentPort;
if (port !== null) {
  const sessions = new Map<number, InlineHasher>();
  port.on('message', (m: HashRequest) => {
    switch (m.t) {
      case 'start':
        sessions.set(m.id, new InlineHasher(m.algos));
        break;
      case 'data': {
        sessions.get(m.id)?.update(new Uint8Array(m.slab, 0, m.length));
        // The slab goes back to be filled again.
        const reply: HashReply = { t: 'ack', id: m.id, bytes: m.length, slab: m.slab };
        port.postMessage(reply);
        break;
      }
      case 'end': {
        const h = sessions.get(m.id);
        sessions.delete(m.id);
        if (h !== undefined) {
          void h.digest().then((digests) => {
            const reply: HashReply = { t: 'done', id: m.id, digests };
            port.postMessage(reply);
          });
        }
        break;
      }
      case 'drop':
        sessions.delete(m.id);
        break;
    }
  });
}
