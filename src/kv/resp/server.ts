/**
 * The RESP2 listener (`resp_address`): redis-cli, redis-benchmark and Redis client libraries talk
 * to the cluster through it. Each connection parses commands as they stream in and executes
 * them strictly in order; commands that complete locally are answered without a promise and
 * all replies to one socket read go out in one write, which is what makes pipelining fast. A
 * command that needs a peer pauses the connection's queue until it completes.
 *
 * Bounded: connections (`limits.max_connections`), bulk/array/inline sizes (parser), commands
 * queued per connection and unsent reply bytes (reading pauses until the client catches up).
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Logger } from '../../common/logging.js';
import { KvMetrics } from '../metrics.js';
import type { RequestSeries } from '../metrics.js';
import { dispatch, lookupCommand, respErrorText } from './commands.js';
import type { CommandSpec } from './commands.js';
import type { CommandContext } from './commands.js';
import { RespParser, RespProtocolError } from './parser.js';
import type { RespParserLimits } from './parser.js';
import { Reply, ReplyBuffer, SLOT_CHUNK_BYTES } from './writer.js';

/** Marks a protocol error's place in the command queue (compared by identity). */
const PROTOCOL_ERROR = Buffer.from('protocol error');
/** Parsed commands waiting per connection before reading pauses. */
const MAX_QUEUED_COMMANDS = 4096;
/** Commands running at once per connection (the rest wait in the queue). */
const MAX_INFLIGHT_COMMANDS = 1024;
/** Commands that run alone, after everything before them and before anything after them. */
const BARRIERS: ReadonlySet<string> = new Set(['flushall', 'flushdb']);

export interface RespServerOptions {
  host: string;
  port: number;
  parserLimits: RespParserLimits;
  maxConnections: number;
  context: Omit<CommandContext, 'quit' | 'info'>;
  info: (section: string) => string;
  metrics: KvMetrics;
  log: Logger;
}

export class RespServer {
  readonly #opts: RespServerOptions;
  readonly #server: Server;
  readonly #conns = new Set<RespConnection>();
  #closing = false;
  /** Commands executed since start (INFO total_commands_processed). */
  commandsProcessed = 0;

  constructor(opts: RespServerOptions) {
    this.#opts = opts;
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
  }

  get connections(): number {
    return this.#conns.size;
  }

  readonly #series = new Map<CommandSpec | undefined, RequestSeries>();

  /** The metrics series of a command (unknown commands share one). */
  seriesFor(spec: CommandSpec | undefined): RequestSeries {
    let s = this.#series.get(spec);
    if (s === undefined) {
      s = this.#opts.metrics.series('resp', spec?.name ?? 'unknown');
      this.#series.set(spec, s);
    }
    return s;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  /** Stops accepting; open connections finish the commands they have and are closed. */
  async close(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const c of this.#conns) c.shutdown();
    await closed;
  }

  #accept(socket: Socket): void {
    if (this.#closing || this.#conns.size >= this.#opts.maxConnections) {
      socket.end(
        this.#closing ? '-ERR server is shutting down\r\n' : '-ERR max number of clients reached\r\n',
      );
      return;
    }
    const conn = new RespConnection(socket, this.#opts, this);
    this.#conns.add(conn);
    socket.once('close', () => this.#conns.delete(conn));
  }
}

class RespConnection {
  readonly #socket: Socket;
  readonly #opts: RespServerOptions;
  readonly #server: RespServer;
  readonly #parser: RespParser;
  readonly #ctx: CommandContext;
  /** Replies ready to be written, in command order. */
  readonly #out = new ReplyBuffer();
  /** The handle commands that complete at once write through (re-created when one goes async). */
  #reply = new Reply(this.#out);
  /** Replies waiting behind a command still running (the first is always pending). */
  #waiting: ReplyBuffer[] = [];
  #queue: Buffer[][] = [];
  #next = 0;
  /** Commands still running (forwarded to a peer, replicating, flushing). */
  #inflight = 0;
  /** A barrier command (FLUSHALL) runs alone: nothing after it starts before it ends. */
  #barrier = false;
  /** QUIT seen or protocol error: run nothing more, close once every reply is out. */
  #quit = false;
  /** Server shutting down: finish the queued commands, then close. */
  #closing = false;
  #paused = false;

  constructor(socket: Socket, opts: RespServerOptions, server: RespServer) {
    this.#socket = socket;
    this.#opts = opts;
    this.#server = server;
    this.#parser = new RespParser(opts.parserLimits);
    this.#ctx = {
      ...opts.context,
      info: opts.info,
      quit: () => {
        this.#quit = true;
      },
    };
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#maybeResume());
    socket.on('error', (err) => opts.log.debug({ err: err.message }, 'resp connection error'));
  }

  /** Stop reading; close once queued commands are answered. */
  shutdown(): void {
    this.#closing = true;
    this.#socket.pause();
    this.#drain();
  }

  #onData(chunk: Buffer): void {
    if (this.#quit || this.#closing) return;
    try {
      this.#parser.push(chunk, this.#queue);
    } catch (err) {
      if (!(err instanceof RespProtocolError)) throw err;
      // Answer what was parsed before the bad bytes, then the error, then close (as Redis does).
      this.#queue.push([PROTOCOL_ERROR, Buffer.from(err.message)]);
      this.#closing = true;
      this.#socket.pause();
    }
    this.#drain();
  }

  /**
   * Starts queued commands in order. Commands run concurrently (a forwarded one does not hold up
   * a local one behind it), but each reply waits for the replies before it, so the client sees
   * them in order. Commands of one key go to one node through one ordered batch stream, so they
   * also execute in order.
   */
  #drain(): void {
    const metrics = this.#opts.metrics;
    while (
      this.#next < this.#queue.length &&
      !this.#quit &&
      !this.#barrier &&
      this.#inflight < MAX_INFLIGHT_COMMANDS
    ) {
      const args = this.#queue[this.#next] as Buffer[];
      if (args[0] === PROTOCOL_ERROR) {
        this.#next++;
        const slot = this.#slot();
        slot.error(`ERR Protocol error: ${(args[1] as Buffer).toString()}`);
        metrics.error('RESP_PROTOCOL');
        this.#quit = true;
        this.#settle(slot);
        break;
      }
      const spec = lookupCommand(args[0]);
      const name = spec?.name ?? 'unknown';
      const series = this.#server.seriesFor(spec);
      if (BARRIERS.has(name) && this.#inflight > 0) break; // resumes when the last one completes
      this.#next++;
      const start = KvMetrics.now();
      // Straight into the output when nothing before is pending; else into its own buffer.
      const reply = this.#reply;
      reply.target = this.#waiting.length === 0 ? this.#out : new ReplyBuffer(SLOT_CHUNK_BYTES);
      reply.used = false;
      let pending: void | Promise<void>;
      try {
        pending = dispatch(this.#ctx, spec, args, reply);
      } catch (err) {
        reply.error(respErrorText(err));
        metrics.error(errorCode(err));
        metrics.observe(series, start, false);
        if (reply.target !== this.#out) this.#waiting.push(reply.target);
        continue;
      }
      this.#server.commandsProcessed++;
      if (!(pending instanceof Promise)) {
        metrics.observe(series, start, true);
        if (reply.target !== this.#out) this.#waiting.push(reply.target);
        continue;
      }
      // This handle now belongs to the running command; later commands get a new one.
      if (reply.used) throw new Error(`RESP handler for ${name} wrote before going async`);
      this.#reply = new Reply(this.#out);
      const slot = reply.target === this.#out ? new ReplyBuffer(SLOT_CHUNK_BYTES) : reply.target;
      reply.target = slot;
      slot.pending = true;
      this.#waiting.push(slot);
      this.#inflight++;
      if (BARRIERS.has(name)) this.#barrier = true;
      pending
        .then(
          () => metrics.observe(series, start, true),
          (err: unknown) => {
            reply.error(respErrorText(err));
            metrics.error(errorCode(err));
            metrics.observe(series, start, false);
          },
        )
        .finally(() => {
          slot.pending = false;
          this.#inflight--;
          if (BARRIERS.has(name)) this.#barrier = false;
          // A batch of forwarded commands completes together: answer them in one write.
          this.#release();
          this.#scheduleDrain();
        });
    }
    if (this.#next >= this.#queue.length) {
      this.#queue = [];
      this.#next = 0;
    }
    this.#flush();
    const done =
      this.#inflight === 0 && this.#waiting.length === 0 && (this.#quit || this.#next >= this.#queue.length);
    if ((this.#quit || this.#closing) && done && !this.#socket.destroyed) this.#socket.end();
  }

  #drainScheduled = false;

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  #slot(): ReplyBuffer {
    return this.#waiting.length === 0 ? this.#out : new ReplyBuffer(SLOT_CHUNK_BYTES);
  }

  /** A finished reply: out now if nothing before it is pending, else in line. */
  #settle(slot: ReplyBuffer): void {
    if (slot === this.#out) return;
    if (this.#waiting.length === 0) slot.moveTo(this.#out);
    else this.#waiting.push(slot);
  }

  /** Moves the finished replies at the head of the line to the output. */
  #release(): void {
    let i = 0;
    while (i < this.#waiting.length && !(this.#waiting[i] as ReplyBuffer).pending) {
      (this.#waiting[i] as ReplyBuffer).moveTo(this.#out);
      i++;
    }
    if (i > 0) this.#waiting = this.#waiting.slice(i);
  }

  #flush(): void {
    const ok = this.#out.empty || this.#out.flush(this.#socket);
    const backlog = this.#queue.length - this.#next;
    if ((!ok || backlog > MAX_QUEUED_COMMANDS) && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    } else if (ok && backlog <= MAX_QUEUED_COMMANDS) {
      this.#maybeResume();
    }
  }

  #maybeResume(): void {
    if (!this.#paused || this.#quit || this.#closing) return;
    if (this.#socket.writableNeedDrain || this.#queue.length - this.#next > MAX_QUEUED_COMMANDS) return;
    this.#paused = false;
    this.#socket.resume();
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'RESP_ERROR';
}
