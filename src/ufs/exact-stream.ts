/**
 * Guards a UFS response body: the reader gets exactly the bytes promised or an error, never a
 * silently short (or long) read. A connection cut mid-body can surface as an error, as a premature
 * 'close', or (for some HTTP stacks) as a clean 'end' after fewer bytes; all three become an EIO
 * here, so a worker filling a block from this stream can never publish a partial block.
 */
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { ufsTruncated } from './errors.js';

class ExactLength extends Transform {
  readonly #expected: number;
  readonly #where: string;
  #seen = 0;

  get seen(): number {
    return this.#seen;
  }

  constructor(expected: number, where: string) {
    // A high-water mark of one typical network read keeps the guard from adding buffering.
    super({ readableHighWaterMark: 256 * 1024, writableHighWaterMark: 256 * 1024 });
    this.#expected = expected;
    this.#where = where;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#expected) {
      cb(new Error(`${this.#where}: the storage sent more than the ${this.#expected} bytes asked for`));
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#seen !== this.#expected) cb(ufsTruncated(this.#where, this.#seen, this.#expected));
    else cb();
  }
}

/**
 * Pipes `source` through a length guard. Errors of the source are passed through `mapError`
 * (so a socket reset reads as "connection to <endpoint> lost"); destroying the returned stream
 * destroys the source (the consumer gave up: the request is cancelled upstream).
 */
export function exactLength(
  source: Readable,
  expected: number,
  where: string,
  mapError: (err: unknown) => Error,
): Readable {
  const guard = new ExactLength(expected, where);
  let ended = false;
  source.once('end', () => {
    ended = true;
  });
  source.on('error', (err) => guard.destroy(mapError(err)));
  source.once('close', () => {
    // A source closed before 'end' without an error was cut off (the socket went away).
    if (!ended && !guard.destroyed) guard.destroy(ufsTruncated(where, guard.seen, expected));
  });
  guard.once('close', () => {
    if (!source.destroyed) source.destroy();
  });
  source.pipe(guard);
  return guard;
}

/** Drops the first `skip` bytes and passes the next `take`, then ends (the rest is not read). */
class Slice extends Transform {
  #skip: number;
  #take: number;
  constructor(skip: number, take: number) {
    super();
    this.#skip = skip;
    this.#take = take;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let c = chunk;
    if (this.#skip > 0) {
      const n = Math.min(this.#skip, c.length);
      this.#skip -= n;
      c = c.subarray(n);
    }
    if (c.length > 0 && this.#take > 0) {
      const out = c.subarray(0, this.#take);
      this.#take -= out.length;
      this.push(out);
      if (this.#take === 0) this.push(null);
    }
    cb();
  }
}

/**
 * For storage that answered more than asked (ignored the Range, or widened it): a stream of just
 * bytes [skip, skip + take) of `source`. Errors of the source pass through; once the slice is
 * complete or abandoned the source is destroyed, so the unwanted remainder is never downloaded.
 */
export function sliceStream(source: Readable, skip: number, take: number): Readable {
  if (take === 0) {
    discard(source);
    return Readable.from([]);
  }
  const slice = new Slice(skip, take);
  const forward = (err: Error): void => {
    slice.destroy(err);
  };
  source.on('error', forward);
  const done = (): void => {
    // The slice has what it wants: the rest of the source is cut, and its errors no longer matter.
    source.off('error', forward);
    source.unpipe(slice);
    discard(source);
  };
  slice.once('end', done);
  slice.once('close', done);
  source.pipe(slice);
  return slice;
}

/** Throws a response body away without an unhandled 'error' (undici errors on destroy). */
export function discard(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => undefined);
  body.destroy();
}
