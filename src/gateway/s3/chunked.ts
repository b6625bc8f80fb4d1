/**
 * Decoder of `aws-chunked` bodies (what the AWS SDKs send for streams): frames of
 * `<hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n`, a zero-size frame, then optional trailer
 * lines (`x-amz-checksum-crc32:…`, `x-amz-trailer-signature:…`) and an empty line. Only the
 * payload bytes come out; signed chunks are verified as they arrive, so a tampered chunk fails the
 * upload before it is committed.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { chunkSignature, sameHex, trailerSignature } from './auth.js';
import type { ChunkSigning } from './auth.js';
import { S3Error } from './errors.js';

/** Longest chunk header or trailer line accepted. */
export const MAX_CHUNK_LINE_BYTES = 4096;
/** Most trailer lines accepted. */
export const MAX_TRAILER_LINES = 16;

type State = 'header' | 'data' | 'data-crlf' | 'trailer' | 'done';

export interface ChunkedDecoderOptions {
  /** Verify chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]). */
  signing?: ChunkSigning;
  /** Called with each trailer header (lowercased name) when the body ends. */
  onTrailer?: (name: string, value: string) => void;
}

function incomplete(why: string): S3Error {
  return new S3Error('IncompleteBody', `The aws-chunked body is malformed or cut short (${why}).`);
}

export class AwsChunkedDecoder extends Transform {
  readonly #opts: ChunkedDecoderOptions;
  #state: State = 'header';
  #line = Buffer.alloc(0);
  #remaining = 0;
  #chunkSig = '';
  #prevSig: string;
  #chunkHash: Hash | undefined;
  #trailerText = '';
  #trailerLines = 0;
  /** Payload bytes emitted. */
  decodedBytes = 0;

  constructor(opts: ChunkedDecoderOptions = {}) {
    super();
    this.#opts = opts;
    this.#prevSig = opts.signing?.seedSignature ?? '';
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#consume(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.#state !== 'done') {
      cb(incomplete(`ended in state ${this.#state}`));
      return;
    }
    cb();
  }

  #consume(buf: Buffer): void {
    let i = 0;
    while (i < buf.length) {
      switch (this.#state) {
        case 'data': {
          const n = Math.min(this.#remaining, buf.length - i);
          const piece = buf.subarray(i, i + n);
          this.#chunkHash?.update(piece);
          this.decodedBytes += n;
          this.push(piece);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) {
            this.#state = 'data-crlf';
            this.#line = Buffer.alloc(0);
          }
          break;
        }
        case 'done':
          // Some clients end with an extra CRLF; anything else is garbage after the body.
          if (buf[i] === 0x0d || buf[i] === 0x0a) {
            i++;
            break;
          }
          throw incomplete('bytes after the final chunk');
        default: {
          const nl = buf.indexOf(0x0a, i);
          const end = nl < 0 ? buf.length : nl + 1;
          this.#line = Buffer.concat([this.#line, buf.subarray(i, end)]);
          i = end;
          if (this.#line.length > MAX_CHUNK_LINE_BYTES) throw incomplete('a chunk line is too long');
          if (nl >= 0) {
            const text = this.#line.toString('latin1').replace(/\r?\n$/, '');
            this.#line = Buffer.alloc(0);
            this.#onLine(text);
          }
        }
      }
    }
  }

  #onLine(text: string): void {
    if (this.#state === 'data-crlf') {
      if (text !== '') throw incomplete('missing CRLF after chunk data');
      this.#finishChunk();
      this.#state = 'header';
      return;
    }
    if (this.#state === 'header') {
      const [sizeText = '', ...ext] = text.split(';');
      if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText))
        throw incomplete(`bad chunk size "${sizeText.slice(0, 32)}"`);
      const size = parseInt(sizeText, 16);
      this.#chunkSig = '';
      for (const e of ext) {
        const eq = e.indexOf('=');
        if (eq > 0 && e.slice(0, eq).trim() === 'chunk-signature') this.#chunkSig = e.slice(eq + 1).trim();
      }
      if (this.#opts.signing !== undefined) {
        if (this.#chunkSig === '') {
          throw new S3Error(
            'SignatureDoesNotMatch',
            'A chunk of the signed aws-chunked body has no chunk-signature.',
          );
        }
        this.#chunkHash = createHash('sha256');
      }
      if (size === 0) {
        this.#finishChunk();
        this.#state = 'trailer';
        return;
      }
      this.#remaining = size;
      this.#state = 'data';
      return;
    }
    // trailer
    if (text === '') {
      this.#state = 'done';
      return;
    }
    if (++this.#trailerLines > MAX_TRAILER_LINES) throw incomplete('too many trailer lines');
    const colon = text.indexOf(':');
    if (colon <= 0) throw incomplete(`bad trailer line "${text.slice(0, 64)}"`);
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature') {
      const s = this.#opts.signing;
      if (s !== undefined && !sameHex(trailerSignature(s, this.#prevSig, this.#trailerText), value)) {
        throw new S3Error(
          'SignatureDoesNotMatch',
          'The trailer signature of the aws-chunked body does not match.',
        );
      }
      return;
    }
    this.#trailerText += `${name}:${value}\n`;
    this.#opts.onTrailer?.(name, value);
  }

  #finishChunk(): void {
    const s = this.#opts.signing;
    if (s === undefined || this.#chunkHash === undefined) return;
    const expected = chunkSignature(s, this.#prevSig, this.#chunkHash.digest('hex'));
    this.#chunkHash = undefined;
    if (!sameHex(expected, this.#chunkSig)) {
      throw new S3Error('SignatureDoesNotMatch', 'A chunk signature of the aws-chunked body does not match.');
    }
    this.#prevSig = this.#chunkSig;
  }
}
