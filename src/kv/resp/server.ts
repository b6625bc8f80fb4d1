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
import type { KvMetrics } from '../metrics.js';
import { COMMANDS, dispatch, respErrorText } from './commands.js';
import type { CommandContext } from './commands.js';
import { RespParser, RespProtocolError } from './parser.js';
import type { RespParserLimits } from './parser.js';
import { ReplyWriter } from './writer.js';

/** Marks a protocol error's place in the command queue (compared by identity). */
const PROTOCOL_ERROR = Buffer.from('protocol error');
/** Parsed commands waiting per connection before reading pauses. */
const MAX_QUEUED_COMMANDS = 4096;

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
  readonly #writer: ReplyWriter;
  readonly #ctx: CommandContext;
  #queue: Buffer[][] = [];
  #next = 0;
  #busy = false;
  /** QUIT seen or protocol error: answer nothing more, close after flushing. */
  #quit = false;
  /** Server shutting down: finish the queued commands, then close. */
  #closing = false;
  #paused = false;

  constructor(socket: Socket, opts: RespServerOptions, server: RespServer) {
    this.#socket = socket;
    this.#opts = opts;
    this.#server = server;
    this.#parser = new RespParser(opts.parserLimits);
    this.#writer = new ReplyWriter(socket);
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
    if (!this.#busy) this.#drain();
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
    if (!this.#busy) this.#drain();
  }

  /** Executes queued commands in order until one goes async or the queue is empty. */
  #drain(): void {
    const w = this.#writer;
    const metrics = this.#opts.metrics;
    while (this.#next < this.#queue.length && !this.#quit) {
      const args = this.#queue[this.#next++] as Buffer[];
      if (args[0] === PROTOCOL_ERROR) {
        w.error(`ERR Protocol error: ${(args[1] as Buffer).toString()}`);
        metrics.error('RESP_PROTOCOL');
        this.#quit = true;
        break;
      }
      const start = process.hrtime.bigint();
      const name = opName(args[0]);
      let pending: void | Promise<void>;
      try {
        pending = dispatch(this.#ctx, args, w);
      } catch (err) {
        w.error(respErrorText(err));
        metrics.error(errorCode(err));
        metrics.request('resp', name, start, false);
        continue;
      }
      this.#server.commandsProcessed++;
      if (pending instanceof Promise) {
        this.#busy = true;
        pending
          .then(
            () => metrics.request('resp', name, start, true),
            (err: unknown) => {
              w.error(respErrorText(err));
              metrics.error(errorCode(err));
              metrics.request('resp', name, start, false);
            },
          )
          .finally(() => {
            this.#busy = false;
            this.#drain();
          });
        this.#flush();
        return;
      }
      metrics.request('resp', name, start, true);
    }
    this.#queue = [];
    this.#next = 0;
    this.#flush();
    if ((this.#quit || this.#closing) && !this.#socket.destroyed) this.#socket.end();
  }

  #flush(): void {
    const ok = this.#writer.flush();
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

/** The metrics label of a command: its name if known, else "unknown" (bounded label values). */
function opName(arg: Buffer | undefined): string {
  if (arg === undefined) return 'unknown';
  const name = arg.toString('latin1').toLowerCase();
  return COMMANDS.has(name) ? name : 'unknown';
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : 'RESP_ERROR';
}
