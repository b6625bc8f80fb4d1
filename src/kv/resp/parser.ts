/**
 * A streaming RESP2 request parser: feed it socket chunks, take complete commands. A command is
 * an array of bulk strings (`*N\r\n$len\r\n…\r\n`, what every client library and redis-cli
 * send) or an inline line (`PING\r\n`, telnet-style). Arguments are views into the input (no
 * copy); callers copy what they keep.
 *
 * Limits are checked as soon as the length is read, before any byte of the body is buffered:
 * array length (`resp_max_array_length`), bulk length (`max_value_bytes` + slack), inline line
 * length (`resp_max_inline_bytes`). A violation is a protocol error: the server answers it and
 * closes the connection, as Redis does. Large bulks arriving in many chunks are gathered once
 * (the parser knows how many bytes it still needs), not re-concatenated per chunk.
 */

export class RespProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RespProtocolError';
  }
}

export interface RespParserLimits {
  maxBulkBytes: number;
  maxArrayLength: number;
  maxInlineBytes: number;
}

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
/** Longest `*N` or `$N` header line: a 20-digit count plus sign and CRLF is far below this. */
const MAX_HEADER_LINE_BYTES = 64;

export class RespParser {
  readonly #limits: RespParserLimits;
  /** Unparsed bytes (the start of an incomplete command). */
  #rest: Buffer | null = null;
  /** Chunks gathered while waiting for `#need` bytes. */
  #parts: Buffer[] = [];
  #partsBytes = 0;
  /** Bytes the incomplete command needs in total before parsing is worth retrying. */
  #need = 0;

  constructor(limits: RespParserLimits) {
    this.#limits = limits;
  }

  /** Bytes buffered and not yet parsed. */
  get buffered(): number {
    return (this.#rest?.length ?? 0) + this.#partsBytes;
  }

  /** Adds a chunk; returns the commands it completes. Throws RespProtocolError on bad input. */
  push(chunk: Buffer, out: Buffer[][] = []): Buffer[][] {
    if (this.#rest === null) {
      this.#rest = chunk;
    } else {
      this.#parts.push(chunk);
      this.#partsBytes += chunk.length;
      if (this.#rest.length + this.#partsBytes < this.#need) return out;
      this.#rest = Buffer.concat([this.#rest, ...this.#parts]);
      this.#parts = [];
      this.#partsBytes = 0;
    }
    const buf = this.#rest;
    let pos = 0;
    while (pos < buf.length) {
      const end = buf[pos] === STAR ? this.#parseArray(buf, pos, out) : this.#parseInline(buf, pos, out);
      if (end < 0) break;
      pos = end;
    }
    this.#rest = pos >= buf.length ? null : buf.subarray(pos);
    if (this.#rest === null) this.#need = 0;
    return out;
  }

  /** Parses `*N\r\n` and N bulks from `start`; returns the end offset, or -1 when incomplete. */
  #parseArray(buf: Buffer, start: number, out: Buffer[][]): number {
    const lineEnd = this.#lineEnd(buf, start + 1, MAX_HEADER_LINE_BYTES, 'multibulk count');
    if (lineEnd < 0) return this.#incomplete(buf, start, 0);
    const n = parseIntStrict(buf, start + 1, lineEnd);
    if (n === undefined || n > this.#limits.maxArrayLength) {
      throw new RespProtocolError(
        n === undefined
          ? 'invalid multibulk length'
          : `invalid multibulk length (limit ${this.#limits.maxArrayLength})`,
      );
    }
    let pos = lineEnd + 2;
    if (n <= 0) return pos; // "*0" / "*-1": an empty command, ignored like Redis does
    const args: Buffer[] = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      if (pos >= buf.length) return this.#incomplete(buf, start, 0);
      if (buf[pos] !== DOLLAR) {
        throw new RespProtocolError(`expected '$', got '${String.fromCharCode(buf[pos] as number)}'`);
      }
      const le = this.#lineEnd(buf, pos + 1, MAX_HEADER_LINE_BYTES, 'bulk length');
      if (le < 0) return this.#incomplete(buf, start, 0);
      const len = parseIntStrict(buf, pos + 1, le);
      if (len === undefined || len < 0 || len > this.#limits.maxBulkBytes) {
        throw new RespProtocolError(
          len === undefined || len < 0
            ? 'invalid bulk length'
            : `invalid bulk length (limit ${this.#limits.maxBulkBytes} bytes)`,
        );
      }
      const bodyStart = le + 2;
      const bodyEnd = bodyStart + len;
      if (bodyEnd + 2 > buf.length) return this.#incomplete(buf, start, bodyEnd + 2 - start);
      if (buf[bodyEnd] !== CR || buf[bodyEnd + 1] !== LF)
        throw new RespProtocolError('bulk string not terminated by CRLF');
      args[i] = buf.subarray(bodyStart, bodyEnd);
      pos = bodyEnd + 2;
    }
    out.push(args);
    return pos;
  }

  /** Parses one inline command line (space-separated words, quotes allowed). */
  #parseInline(buf: Buffer, start: number, out: Buffer[][]): number {
    const nl = buf.indexOf(LF, start);
    if (nl < 0) {
      if (buf.length - start > this.#limits.maxInlineBytes)
        throw new RespProtocolError('too big inline request');
      return this.#incomplete(buf, start, 0);
    }
    if (nl - start > this.#limits.maxInlineBytes) throw new RespProtocolError('too big inline request');
    const lineEnd = nl > start && buf[nl - 1] === CR ? nl - 1 : nl;
    const words = splitInline(buf.subarray(start, lineEnd));
    if (words.length > this.#limits.maxArrayLength) throw new RespProtocolError('invalid multibulk length');
    if (words.length > 0) out.push(words);
    return nl + 1;
  }

  /** Index of the CR of the CRLF ending the line from `from`, -1 when not yet received. */
  #lineEnd(buf: Buffer, from: number, maxLen: number, what: string): number {
    const limit = Math.min(buf.length, from + maxLen);
    for (let i = from; i < limit; i++) {
      if (buf[i] === CR) {
        if (i + 1 >= buf.length) return -1;
        if (buf[i + 1] !== LF) throw new RespProtocolError(`${what} line not terminated by CRLF`);
        return i;
      }
    }
    if (buf.length - from >= maxLen) throw new RespProtocolError(`${what} line too long`);
    return -1;
  }

  #incomplete(buf: Buffer, start: number, needFromStart: number): number {
    // Unknown need (mid-header): retry as soon as any byte arrives.
    this.#need = needFromStart > 0 ? needFromStart : buf.length - start + 1;
    return -1;
  }
}

/** A base-10 integer from ASCII bytes (optional leading '-'); undefined when malformed. */
function parseIntStrict(buf: Buffer, start: number, end: number): number | undefined {
  if (start >= end) return undefined;
  let i = start;
  let neg = false;
  if (buf[i] === 45) {
    neg = true;
    i++;
    if (i >= end) return undefined;
  }
  let n = 0;
  for (; i < end; i++) {
    const c = (buf[i] as number) - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return neg ? -n : n;
}

/** Splits an inline command like redis-server: whitespace-separated, "double" and 'single' quotes. */
export function splitInline(line: Buffer): Buffer[] {
  const text = line.toString('latin1');
  const words: Buffer[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= text.length) break;
    let word = '';
    const q = text[i];
    if (q === '"' || q === "'") {
      i++;
      while (i < text.length && text[i] !== q) {
        if (q === '"' && text[i] === '\\' && i + 1 < text.length) {
          i++;
          const c = text[i];
          word += c === 'n' ? '\n' : c === 'r' ? '\r' : c === 't' ? '\t' : c;
        } else {
          word += text[i];
        }
        i++;
      }
      if (i >= text.length) throw new RespProtocolError('unbalanced quotes in request');
      i++;
    } else {
      while (i < text.length && text[i] !== ' ' && text[i] !== '\t') word += text[i++];
    }
    words.push(Buffer.from(word, 'latin1'));
  }
  return words;
}
