/**
 * Graceful shutdown: on SIGTERM or SIGINT stop accepting, let in-flight work finish within a
 * bound, close stores, exit 0. Components register closers in start order; they run in reverse.
 * A second signal, or the bound passing, exits at once with a non-zero code.
 */
import type { Logger } from './logging.js';

export type Closer = () => Promise<void> | void;

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export class Lifecycle {
  readonly #closers: { name: string; close: Closer }[] = [];
  readonly #log: Logger;
  readonly #graceMs: number;
  #stopping: Promise<void> | undefined;
  #signalsInstalled = false;

  constructor(log: Logger, graceMs = DEFAULT_SHUTDOWN_GRACE_MS) {
    this.#log = log;
    this.#graceMs = graceMs;
  }

  /** Registers a closer; closers run last-registered first. */
  add(name: string, close: Closer): void {
    this.#closers.push({ name, close });
  }

  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Runs every closer once (idempotent); errors are logged and do not stop the others. */
  stop(reason: string): Promise<void> {
    this.#stopping ??= this.#runClosers(reason);
    return this.#stopping;
  }

  async #runClosers(reason: string): Promise<void> {
    this.#log.info({ reason }, 'shutting down');
    for (const { name, close } of [...this.#closers].reverse()) {
      try {
        await close();
      } catch (err) {
        this.#log.error({ err, component: name }, 'error while closing');
      }
    }
    this.#log.info('stopped');
  }

  /** Installs SIGTERM/SIGINT handlers that stop and exit the process. */
  installSignalHandlers(onExit: (code: number) => void = (code) => process.exit(code)): void {
    if (this.#signalsInstalled) return;
    this.#signalsInstalled = true;
    const handler = (signal: NodeJS.Signals): void => {
      if (this.stopping) {
        this.#log.warn({ signal }, 'second signal: exiting now');
        onExit(130);
        return;
      }
      const timer = setTimeout(() => {
        this.#log.error({ graceMs: this.#graceMs }, 'shutdown did not finish in time: exiting');
        onExit(1);
      }, this.#graceMs);
      timer.unref();
      this.stop(signal).then(
        () => {
          clearTimeout(timer);
          onExit(0);
        },
        () => onExit(1),
      );
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  }
}
