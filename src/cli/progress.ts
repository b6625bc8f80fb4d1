/**
 * A progress bar for long transfers (`fs put`, `fs get`): bytes done, total, rate and ETA on one
 * line of stderr, redrawn at most every PROGRESS_REDRAW_MS. Only on a terminal: when stderr is a
 * pipe or a file, or with --json, nothing is printed, so scripts see clean output.
 */
import { formatBytes, formatDuration } from '../common/units.js';

export const PROGRESS_REDRAW_MS = 100;
/** Transfers smaller than this finish too fast for a bar to help. */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;
const BAR_CELLS = 24;

export interface ProgressOptions {
  label: string;
  /** Total bytes, when known (stdin has none). */
  totalBytes?: number;
  /** Force on or off (default: stderr is a TTY). */
  enabled?: boolean;
  out?: NodeJS.WriteStream;
  now?: () => number;
}

export class Progress {
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #out: NodeJS.WriteStream;
  readonly #enabled: boolean;
  readonly #now: () => number;
  readonly #started: number;
  #done = 0;
  #lastDraw = 0;
  #drawn = false;

  constructor(opts: ProgressOptions) {
    this.#label = opts.label;
    this.#total = opts.totalBytes;
    this.#out = opts.out ?? process.stderr;
    this.#now = opts.now ?? Date.now;
    this.#started = this.#now();
    const big = opts.totalBytes === undefined || opts.totalBytes >= PROGRESS_MIN_BYTES;
    this.#enabled = opts.enabled ?? (this.#out.isTTY === true && big);
  }

  get bytes(): number {
    return this.#done;
  }

  add(bytes: number): void {
    this.#done += bytes;
    if (!this.#enabled) return;
    const now = this.#now();
    if (now - this.#lastDraw >= PROGRESS_REDRAW_MS) {
      this.#lastDraw = now;
      this.#draw(now);
    }
  }

  /** Clears the bar (the caller prints any summary itself). */
  finish(): void {
    if (this.#enabled && this.#drawn) this.#out.write('\r\x1b[2K');
  }

  /** The line as drawn now (exposed for tests). */
  line(now = this.#now()): string {
    const elapsedMs = Math.max(1, now - this.#started);
    const rate = (this.#done * 1000) / elapsedMs;
    const parts = [this.#label];
    if (this.#total !== undefined && this.#total > 0) {
      const frac = Math.min(1, this.#done / this.#total);
      const cells = Math.round(frac * BAR_CELLS);
      parts.push(
        `[${'='.repeat(cells)}${' '.repeat(BAR_CELLS - cells)}]`,
        `${(frac * 100).toFixed(0).padStart(3)}%`,
      );
      parts.push(`${formatBytes(this.#done)}/${formatBytes(this.#total)}`);
    } else {
      parts.push(formatBytes(this.#done));
    }
    parts.push(`${formatBytes(Math.round(rate))}/s`);
    if (this.#total !== undefined && rate > 0 && this.#done < this.#total) {
      parts.push(`ETA ${formatDuration(Math.round(((this.#total - this.#done) / rate) * 1000))}`);
    }
    return parts.join('  ');
  }

  #draw(now: number): void {
    const cols = this.#out.columns ?? 100;
    this.#out.write(`\r\x1b[2K${this.line(now).slice(0, Math.max(20, cols - 1))}`);
    this.#drawn = true;
  }
}
