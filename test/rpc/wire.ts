/**
 * Builds frames by hand from the wire format in docs/rpc.md (not through src/rpc), so the tests
 * check the format itself, and a raw connection that collects the frames a server sends back.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { pack, unpack } from 'msgpackr';
import type { RemoteAddress } from '../../src/rpc/index.js';

export const T = {
  Request: 1,
  Response: 2,
  Data: 3,
  End: 4,
  Cancel: 5,
  Credit: 6,
  Ping: 7,
  Pong: 8,
} as const;

export function frame(
  type: number,
  callId: number,
  header: Buffer | object | undefined,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const h = header === undefined ? Buffer.alloc(0) : Buffer.isBuffer(header) ? header : pack(header);
  const prefix = Buffer.alloc(13);
  prefix.writeUInt32BE(9 + h.length + payload.length, 0);
  prefix[4] = type;
  prefix.writeUInt32BE(callId, 5);
  prefix.writeUInt32BE(h.length, 9);
  return Buffer.concat([prefix, h, payload]);
}

export interface RawFrame {
  type: number;
  callId: number;
  header: unknown;
  payload: Buffer;
}

/** A raw client connection that parses what comes back (simply: concatenating). */
export class RawConnection {
  readonly socket: Socket;
  readonly frames: RawFrame[] = [];
  closed = false;
  #buf = Buffer.alloc(0);
  readonly #closedPromise: Promise<void>;

  constructor(address: RemoteAddress) {
    this.socket = connect({ host: address.host, port: address.port });
    this.socket.on('error', () => {});
    this.socket.on('data', (b: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, b]);
      while (this.#buf.length >= 13) {
        const len = this.#buf.readUInt32BE(0);
        if (this.#buf.length < 4 + len) break;
        const hLen = this.#buf.readUInt32BE(9);
        const h = this.#buf.subarray(13, 13 + hLen);
        this.frames.push({
          type: this.#buf[4] ?? 0,
          callId: this.#buf.readUInt32BE(5),
          header: hLen === 0 ? undefined : unpack(h),
          payload: Buffer.from(this.#buf.subarray(13 + hLen, 4 + len)),
        });
        this.#buf = this.#buf.subarray(4 + len);
      }
    });
    this.#closedPromise = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves when the server closes the connection, or false after `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const r = await Promise.race([this.#closedPromise.then(() => true), timeout]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
