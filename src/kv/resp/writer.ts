/**
 * RESP2 reply encoding into one buffer per batch of commands. Protocol text and small values are
 * appended to a latin1 string (one byte per char, so binary values pass through unchanged);
 * values of SMALL_VALUE_BYTES or more are written as their own Buffer to avoid copying them.
 * `flush` hands everything to the socket in order.
 */
import type { Socket } from 'node:net';

/** Values below this are copied into the reply string; larger ones are written as they are. */
const SMALL_VALUE_BYTES = 4096;

export class ReplyWriter {
  readonly #socket: Socket;
  #text = '';
  #queued: (string | Buffer)[] = [];

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  ok(): void {
    this.#text += '+OK\r\n';
  }

  simple(s: string): void {
    this.#text += `+${s}\r\n`;
  }

  /** An error reply; `message` starts with its code word (ERR, WRONGTYPE, NOPROTO…). */
  error(message: string): void {
    this.#text += `-${message.replace(/[\r\n]+/g, ' ')}\r\n`;
  }

  int(n: number): void {
    this.#text += `:${n}\r\n`;
  }

  nil(): void {
    this.#text += '$-1\r\n';
  }

  nilArray(): void {
    this.#text += '*-1\r\n';
  }

  arrayHeader(n: number): void {
    this.#text += `*${n}\r\n`;
  }

  bulk(value: Buffer | string): void {
    if (typeof value === 'string') {
      const bytes = Buffer.byteLength(value, 'utf8');
      if (bytes === value.length) this.#text += `$${bytes}\r\n${value}\r\n`;
      else this.bulk(Buffer.from(value, 'utf8'));
      return;
    }
    if (value.length < SMALL_VALUE_BYTES) {
      this.#text += `$${value.length}\r\n${value.toString('latin1')}\r\n`;
      return;
    }
    this.#text += `$${value.length}\r\n`;
    this.#queued.push(this.#text, value);
    this.#text = '\r\n';
  }

  /** Bytes of reply text not yet handed to the socket (to bound memory of a slow reader). */
  get pendingChars(): number {
    return this.#text.length;
  }

  /** Writes everything accumulated; returns socket.write's backpressure signal. */
  flush(): boolean {
    let ok = true;
    if (this.#queued.length > 0) {
      for (const part of this.#queued) {
        ok = (typeof part === 'string' ? this.#socket.write(part, 'latin1') : this.#socket.write(part)) && ok;
      }
      this.#queued = [];
    }
    if (this.#text !== '') {
      ok = this.#socket.write(this.#text, 'latin1') && ok;
      this.#text = '';
    }
    return ok;
  }
}
