/**
 * A UFS decorator that records metrics for every operation, so engines stay free of
 * bookkeeping and every engine is measured the same way.
 */
import { StrataError } from '../common/errors.js';
import type { UfsMetrics, UfsOp } from './metrics.js';
import type {
  UfsCallOptions,
  UfsListOptions,
  UfsListPage,
  UfsRead,
  UfsReadOptions,
  UfsStatus,
  UfsWriteOptions,
  UnderFileSystem,
} from './ufs.js';

function codeOf(err: unknown): string {
  if (err instanceof StrataError) return err.code;
  if (err instanceof Error && err.name === 'AbortError') return 'ABORTED';
  return 'UNKNOWN';
}

export class InstrumentedUfs implements UnderFileSystem {
  readonly #inner: UnderFileSystem;
  readonly #m: UfsMetrics;

  constructor(inner: UnderFileSystem, metrics: UfsMetrics) {
    this.#inner = inner;
    this.#m = metrics;
  }

  get scheme(): UnderFileSystem['scheme'] {
    return this.#inner.scheme;
  }

  get capabilities(): UnderFileSystem['capabilities'] {
    return this.#inner.capabilities;
  }

  describe(): string {
    return this.#inner.describe();
  }

  async #timed<T>(op: UfsOp, fn: () => Promise<T>): Promise<T> {
    const labels = { scheme: this.#inner.scheme, op };
    this.#m.requests.inc(labels);
    const end = this.#m.seconds.startTimer(labels);
    try {
      return await fn();
    } catch (err) {
      this.#m.errors.inc({ ...labels, code: codeOf(err) });
      throw err;
    } finally {
      end();
    }
  }

  check(opts?: UfsCallOptions): Promise<void> {
    return this.#timed('check', () => this.#inner.check(opts));
  }

  stat(path: string, opts?: UfsCallOptions): Promise<UfsStatus> {
    return this.#timed('stat', () => this.#inner.stat(path, opts));
  }

  list(path: string, opts?: UfsListOptions): Promise<UfsListPage> {
    return this.#timed('list', () => this.#inner.list(path, opts));
  }

  async openRead(path: string, opts?: UfsReadOptions): Promise<UfsRead> {
    const r = await this.#timed('read', () => this.#inner.openRead(path, opts));
    const scheme = this.#inner.scheme;
    // The length is exact (the stream fails otherwise), so counting at the end costs nothing per chunk.
    r.body.once('end', () => this.#m.readBytes.inc({ scheme }, r.length));
    r.body.once('error', (err) => this.#m.errors.inc({ scheme, op: 'read', code: codeOf(err) }));
    return r;
  }

  write(path: string, source: AsyncIterable<Uint8Array>, opts?: UfsWriteOptions): Promise<UfsStatus> {
    const m = this.#m;
    const scheme = this.#inner.scheme;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of source) {
        m.writtenBytes.inc({ scheme }, chunk.length);
        yield chunk;
      }
    }
    return this.#timed('write', () => this.#inner.write(path, counted(), opts));
  }

  delete(path: string, opts?: UfsCallOptions & { recursive?: boolean }): Promise<void> {
    return this.#timed('delete', () => this.#inner.delete(path, opts));
  }

  rename(src: string, dst: string, opts?: UfsCallOptions): Promise<void> {
    return this.#timed('rename', () => this.#inner.rename(src, dst, opts));
  }

  mkdir(path: string, opts?: UfsCallOptions): Promise<void> {
    return this.#timed('mkdir', () => this.#inner.mkdir(path, opts));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
