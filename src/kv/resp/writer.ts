/**
 * RESP2 reply encoding straight into bytes.
 *
 * A connection's replies are written into a ReplyBuffer: 64 KiB chunks filled by copying
 * constants, digits and values (values of BIG_VALUE_BYTES or more are passed by reference), and
 * handed to the socket once per batch of commands. A command that completes later than the ones
 * after it (forwarded to a peer) writes into its own small ReplyBuffer, which joins the output
 * once every earlier reply is out: replies leave in command order whatever order commands finish.
 *
 * Handlers write through a Reply, a forwarding handle whose target the connection chooses: the
 * output itself for a command that completes at once (no allocation), its own buffer for one that
 * returns a promise. So a handler that returns a promise must write nothing before it does.
 */
import type { Socket } from 'node:net';

const CHUNK_BYTES = 64 * 1024;
/** Initial chunk of a reply that waits for others. */
export const SLOT_CHUNK_BYTES = 256;
/** Values this large are written as they are instead of being copied into a chunk. */
const BIG_VALUE_BYTES = 16 * 1024;

const OK = Buffer.from('+OK\r\n');
const NIL = Buffer.from('$-1\r\n');
const NIL_ARRAY = Buffer.from('*-1\r\n');
const CRLF = Buffer.from('\r\n');
const COLON = 58;
const DOLLAR = 36;
const STAR = 42;
/** Integers below this are formatted digit by digit; larger ones through String(). */
const FAST_INT_LIMIT = 1e15;

export class ReplyBuffer {
  /** Finished chunks in order. */
  #done: Buffer[] = [];
  #buf: Buffer | null = null;
  /** First byte of #buf not yet moved to #done. */
  #start = 0;
  #len = 0;
  readonly #chunkBytes: number;
  /** Set while the command that owns this buffer is still running. */
  pending = false;

  constructor(chunkBytes = CHUNK_BYTES) {
    this.#chunkBytes = chunkBytes;
  }

  ok(): void {
    this.#raw(OK);
  }

  simple(s: string): void {
    this.#text(`+${s}\r\n`);
  }

  /** An error reply; `message` starts with its code word (ERR, WRONGTYPE, NOPROTO…). */
  error(message: string): void {
    this.#text(`-${message.replace(/[\r\n]+/g, ' ')}\r\n`);
  }

  int(n: number): void {
    this.#num(COLON, n);
  }

  nil(): void {
    this.#raw(NIL);
  }

  nilArray(): void {
    this.#raw(NIL_ARRAY);
  }

  arrayHeader(n: number): void {
    this.#num(STAR, n);
  }

  bulk(value: Buffer | string): void {
    const v = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.#num(DOLLAR, v.length);
    if (v.length >= BIG_VALUE_BYTES) {
      this.#cut();
      this.#done.push(v);
    } else {
      this.#raw(v);
    }
    this.#raw(CRLF);
  }

  get empty(): boolean {
    return this.#done.length === 0 && this.#len === this.#start;
  }

  /** Appends this buffer's content to `into` and empties this one. */
  moveTo(into: ReplyBuffer): void {
    this.#cut();
    for (const b of this.#done) {
      if (b.length < BIG_VALUE_BYTES) into.#raw(b);
      else {
        into.#cut();
        into.#done.push(b);
      }
    }
    this.#done = [];
  }

  /** Writes everything to the socket; returns socket.write's backpressure signal. */
  flush(socket: Socket): boolean {
    this.#cut();
    const parts = this.#done;
    if (parts.length === 0) return true;
    this.#done = [];
    if (parts.length === 1) return socket.write(parts[0] as Buffer);
    socket.cork();
    let ok = true;
    for (const p of parts) ok = socket.write(p) && ok;
    socket.uncork();
    return ok;
  }

  #room(n: number): Buffer {
    const b = this.#buf;
    if (b !== null && this.#len + n <= b.length) return b;
    this.#cut();
    const fresh = Buffer.allocUnsafe(Math.max(this.#chunkBytes, n));
    this.#buf = fresh;
    this.#start = 0;
    this.#len = 0;
    return fresh;
  }

  /** Moves the written part of the current chunk to #done; later bytes go after it. */
  #cut(): void {
    if (this.#buf !== null && this.#len > this.#start) {
      this.#done.push(this.#buf.subarray(this.#start, this.#len));
      this.#start = this.#len;
    }
  }

  #raw(src: Buffer): void {
    const b = this.#room(src.length);
    b.set(src, this.#len);
    this.#len += src.length;
  }

  #text(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    const b = this.#room(n);
    this.#len += b.write(s, this.#len, n, 'utf8');
  }

  /** `<prefix><n>\r\n` */
  #num(prefix: number, n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= FAST_INT_LIMIT) {
      this.#text(`${String.fromCharCode(prefix)}${n}\r\n`);
      return;
    }
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    const b = this.#room(digits + 3);
    let at = this.#len;
    b[at++] = prefix;
    let x = n;
    for (let i = digits - 1; i >= 0; i--) {
      b[at + i] = 48 + (x % 10);
      x = Math.floor(x / 10);
    }
    at += digits;
    b[at++] = 13;
    b[at++] = 10;
    this.#len = at;
  }
}

/**
 * The handle a command writes its reply through. The connection points it at the output or at
 * the command's own buffer (see the module comment); `used` tells whether anything was written.
 */
export class Reply {
  target: ReplyBuffer;
  used = false;

  constructor(target: ReplyBuffer) {
    this.target = target;
  }

  ok(): void {
    this.used = true;
    this.target.ok();
  }

  simple(s: string): void {
    this.used = true;
    this.target.simple(s);
  }

  error(message: string): void {
    this.used = true;
    this.target.error(message);
  }

  int(n: number): void {
    this.used = true;
    this.target.int(n);
  }

  nil(): void {
    this.used = true;
    this.target.nil();
  }

  nilArray(): void {
    this.used = true;
    this.target.nilArray();
  }

  arrayHeader(n: number): void {
    this.used = true;
    this.target.arrayHeader(n);
  }

  bulk(value: Buffer | string): void {
    this.used = true;
    this.target.bulk(value);
  }
}
