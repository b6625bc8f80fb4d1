/**
 * The Redis commands the RESP listener understands, each routed through the cluster engine so a
 * key owned by another node is served transparently. Replies and error texts follow Redis where
 * clients depend on them ("ERR wrong number of arguments for 'get' command", "ERR value is not
 * an integer or out of range"). Multi-key commands (MGET, MSET, DEL, EXISTS) split per key and
 * run in parallel; they are not atomic across nodes.
 */
import { isUtf8 } from 'node:buffer';
import { StrataError } from '../../common/errors.js';
import type { KvLimits } from '../config.js';
import type { KvEngine, MaybePromise } from '../engine.js';
import { KIND_STRING } from '../entry.js';
import { KvError } from '../errors.js';
import { MAX_TTL_MS } from '../limits.js';
import { HashRing } from '../ring.js';
import type { OpResult } from '../wire.js';
import type { Reply } from './writer.js';

export interface CommandContext {
  engine: KvEngine;
  limits: KvLimits;
  defaultTtlMs: number;
  /** INFO text for the given section (lower case, "" for the default set). */
  info(section: string): string;
  flushAll(): Promise<void>;
  /** Set by QUIT: close after the reply. */
  quit(): void;
}

/**
 * A command: writes its reply to `w` before returning, or returns a promise and writes it when
 * that settles (never both: see writer.ts).
 */
export type Handler = (ctx: CommandContext, args: Buffer[], w: Reply) => void | Promise<void>;

export interface CommandSpec {
  name: string;
  /** Redis arity: N means exactly N arguments (command included), -N at least N. */
  arity: number;
  flags: readonly string[];
  firstKey: number;
  lastKey: number;
  step: number;
  handler: Handler;
}

class RespError extends Error {}

/** Maps an error to a RESP error line (code word first). */
export function respErrorText(err: unknown): string {
  if (err instanceof RespError) return err.message;
  if (err instanceof KvError) {
    switch (err.code) {
      case 'STRATA_KV_NOT_INTEGER':
        return err.message.startsWith('increment')
          ? `ERR ${err.message}`
          : 'ERR value is not an integer or out of range';
      case 'STRATA_KV_UNAVAILABLE':
        return `CLUSTERDOWN ${err.message}`;
      case 'STRATA_KV_OVERLOADED':
        return `BUSY ${err.message}`;
      default:
        return `ERR ${err.message}`;
    }
  }
  if (err instanceof StrataError) return `ERR ${err.message}`;
  return 'ERR internal error';
}

function syntaxError(): RespError {
  return new RespError('ERR syntax error');
}

function notInteger(): RespError {
  return new RespError('ERR value is not an integer or out of range');
}

interface KeyArg {
  key: string;
  hash: number;
}

function keyArg(ctx: CommandContext, arg: Buffer): KeyArg {
  if (arg.length === 0) throw new KvError('STRATA_KV_BAD_KEY', 'key must not be empty');
  if (arg.length > ctx.limits.maxKeyBytes) {
    throw new KvError(
      'STRATA_KV_KEY_TOO_LONG',
      `key is ${arg.length} bytes; the limit is limits.max_key_bytes = ${ctx.limits.maxKeyBytes}`,
    );
  }
  // Keys are shared with the HTTP API, where they are text: refuse bytes that are not UTF-8.
  if (!isUtf8(arg)) throw new KvError('STRATA_KV_BAD_KEY', 'key must be valid UTF-8');
  return { key: arg.toString('utf8'), hash: HashRing.hashKeyBytes(arg, 0, arg.length) };
}

function valueArg(ctx: CommandContext, arg: Buffer): Buffer {
  if (arg.length > ctx.limits.maxValueBytes) {
    throw new KvError(
      'STRATA_KV_VALUE_TOO_LARGE',
      `value is ${arg.length} bytes; the limit is limits.max_value_bytes = ${ctx.limits.maxValueBytes}`,
    );
  }
  // Copy: the argument is a view into the socket's chunk.
  return Buffer.from(arg);
}

function intArg(arg: Buffer): number {
  const s = arg.toString('latin1');
  if (!/^-?\d{1,16}$/.test(s)) throw notInteger();
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw notInteger();
  return n;
}

function upper(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}

/** Runs a callback on a result that may or may not be a promise, keeping sync results sync. */
function then<T>(r: MaybePromise<T>, fn: (v: T) => void | Promise<void>): void | Promise<void> {
  if (r instanceof Promise) return r.then(fn);
  return fn(r);
}

function all(rs: MaybePromise<OpResult>[]): MaybePromise<OpResult[]> {
  for (const r of rs) if (r instanceof Promise) return Promise.all(rs.map((x) => Promise.resolve(x)));
  return rs as OpResult[];
}

/** An absolute expiry from a relative TTL in ms; refuses non-positive and absurd values. */
function expiryFromTtl(ms: number, command: string): number {
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_TTL_MS)
    throw new RespError(`ERR invalid expire time in '${command}' command`);
  return Date.now() + ms;
}

const get: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  return then(ctx.engine.execute({ op: 'get', key: k.key }, k.hash), (r) => {
    if (r.value === null || r.value === undefined) w.nil();
    else w.bulk(r.value.bytes);
  });
};

const set: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  const value = valueArg(ctx, args[2] as Buffer);
  let expiresAtMs = 0;
  let expirySet = false;
  let nx = false;
  let xx = false;
  let keepTtl = false;
  for (let i = 3; i < args.length; i++) {
    const opt = upper(args[i]);
    if (opt === 'NX' && !xx) nx = true;
    else if (opt === 'XX' && !nx) xx = true;
    else if (opt === 'KEEPTTL' && !expirySet) keepTtl = true;
    else if (
      (opt === 'EX' || opt === 'PX' || opt === 'EXAT' || opt === 'PXAT') &&
      !expirySet &&
      !keepTtl &&
      i + 1 < args.length
    ) {
      const n = intArg(args[++i] as Buffer);
      if (opt === 'EX') expiresAtMs = expiryFromTtl(n * 1000, 'set');
      else if (opt === 'PX') expiresAtMs = expiryFromTtl(n, 'set');
      else if (opt === 'EXAT') expiresAtMs = n > 0 ? n * 1000 : expiryFromTtl(0, 'set');
      else expiresAtMs = n > 0 ? n : expiryFromTtl(0, 'set');
      expirySet = true;
    } else if (opt === 'GET') {
      throw new RespError('ERR SET … GET is not supported by this server');
    } else {
      throw syntaxError();
    }
  }
  if (!expirySet && !keepTtl && ctx.defaultTtlMs > 0) expiresAtMs = Date.now() + ctx.defaultTtlMs;
  return then(
    ctx.engine.execute(
      { op: 'set', key: k.key, kind: KIND_STRING, value, expiresAtMs, keepTtl, nx, xx },
      k.hash,
    ),
    (r) => {
      if (r.ok === true) w.ok();
      else w.nil();
    },
  );
};

function setWithTtl(unitMs: number, name: string): Handler {
  return (ctx, args, w) => {
    const k = keyArg(ctx, args[1] as Buffer);
    const expiresAtMs = expiryFromTtl(intArg(args[2] as Buffer) * unitMs, name);
    const value = valueArg(ctx, args[3] as Buffer);
    return then(
      ctx.engine.execute(
        {
          op: 'set',
          key: k.key,
          kind: KIND_STRING,
          value,
          expiresAtMs,
          keepTtl: false,
          nx: false,
          xx: false,
        },
        k.hash,
      ),
      () => w.ok(),
    );
  };
}

const setnx: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  const value = valueArg(ctx, args[2] as Buffer);
  const expiresAtMs = ctx.defaultTtlMs > 0 ? Date.now() + ctx.defaultTtlMs : 0;
  return then(
    ctx.engine.execute(
      { op: 'set', key: k.key, kind: KIND_STRING, value, expiresAtMs, keepTtl: false, nx: true, xx: false },
      k.hash,
    ),
    (r) => w.int(r.ok === true ? 1 : 0),
  );
};

/** DEL/UNLINK/EXISTS over several keys: the count of keys for which the op reported ok. */
function countKeys(op: 'del' | 'exists'): Handler {
  return (ctx, args, w) => {
    const keys = args.slice(1).map((a) => keyArg(ctx, a));
    return then(all(keys.map((k) => ctx.engine.execute({ op, key: k.key }, k.hash))), (rs) => {
      w.int(rs.filter((r) => r.ok === true).length);
    });
  };
}

const mget: Handler = (ctx, args, w) => {
  const keys = args.slice(1).map((a) => keyArg(ctx, a));
  return then(all(keys.map((k) => ctx.engine.execute({ op: 'get', key: k.key }, k.hash))), (rs) => {
    w.arrayHeader(rs.length);
    for (const r of rs) {
      if (r.value === null || r.value === undefined) w.nil();
      else w.bulk(r.value.bytes);
    }
  });
};

const mset: Handler = (ctx, args, w) => {
  if (args.length % 2 !== 1) throw new RespError("ERR wrong number of arguments for 'mset' command");
  const expiresAtMs = ctx.defaultTtlMs > 0 ? Date.now() + ctx.defaultTtlMs : 0;
  const ops: { key: KeyArg; value: Buffer }[] = [];
  for (let i = 1; i < args.length; i += 2)
    ops.push({ key: keyArg(ctx, args[i] as Buffer), value: valueArg(ctx, args[i + 1] as Buffer) });
  return then(
    all(
      ops.map((o) =>
        ctx.engine.execute(
          {
            op: 'set',
            key: o.key.key,
            kind: KIND_STRING,
            value: o.value,
            expiresAtMs,
            keepTtl: false,
            nx: false,
            xx: false,
          },
          o.key.hash,
        ),
      ),
    ),
    () => w.ok(),
  );
};

function incrBy(sign: 1 | -1, hasArg: boolean): Handler {
  return (ctx, args, w) => {
    const k = keyArg(ctx, args[1] as Buffer);
    const by = hasArg ? intArg(args[2] as Buffer) * sign : sign;
    return then(ctx.engine.execute({ op: 'incr', key: k.key, by }, k.hash), (r) => w.int(r.n ?? 0));
  };
}

/** EXPIRE family: `unitMs` scales the argument; `absolute` for EXPIREAT/PEXPIREAT. */
function expire(unitMs: number, absolute: boolean, name: string): Handler {
  return (ctx, args, w) => {
    const k = keyArg(ctx, args[1] as Buffer);
    if (args.length > 3) throw new RespError(`ERR options of '${name}' are not supported by this server`);
    const n = intArg(args[2] as Buffer) * unitMs;
    if (!absolute && n > MAX_TTL_MS) throw new RespError(`ERR invalid expire time in '${name}' command`);
    // A time not in the future deletes the key, as in Redis; 1 stands for "the past".
    const at = absolute ? Math.max(1, n) : n <= 0 ? 1 : Date.now() + n;
    return then(ctx.engine.execute({ op: 'expire', key: k.key, expiresAtMs: at }, k.hash), (r) =>
      w.int(r.ok === true ? 1 : 0),
    );
  };
}

const persist: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  return then(ctx.engine.execute({ op: 'ttl', key: k.key }, k.hash), (t) => {
    if ((t.n ?? -2) < 0) {
      w.int(0);
      return;
    }
    return then(ctx.engine.execute({ op: 'expire', key: k.key, expiresAtMs: 0 }, k.hash), (r) =>
      w.int(r.ok === true ? 1 : 0),
    );
  });
};

function ttl(unitMs: number): Handler {
  return (ctx, args, w) => {
    const k = keyArg(ctx, args[1] as Buffer);
    return then(ctx.engine.execute({ op: 'ttl', key: k.key }, k.hash), (r) => {
      const ms = r.n ?? -2;
      w.int(ms < 0 ? ms : unitMs === 1 ? ms : Math.floor((ms + 500) / 1000));
    });
  };
}

const type: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  return then(ctx.engine.execute({ op: 'exists', key: k.key }, k.hash), (r) =>
    w.simple(r.ok === true ? 'string' : 'none'),
  );
};

const strlen: Handler = (ctx, args, w) => {
  const k = keyArg(ctx, args[1] as Buffer);
  return then(ctx.engine.execute({ op: 'get', key: k.key }, k.hash), (r) =>
    w.int(r.value?.bytes.length ?? 0),
  );
};

const ping: Handler = (_ctx, args, w) => {
  if (args.length > 2) throw new RespError("ERR wrong number of arguments for 'ping' command");
  if (args.length === 2) w.bulk(args[1] as Buffer);
  else w.simple('PONG');
};

const echo: Handler = (_ctx, args, w) => w.bulk(args[1] as Buffer);

const dbsize: Handler = (ctx, _args, w) => w.int(ctx.engine.store.count);

const flushall: Handler = async (ctx, args, w) => {
  const mode = upper(args[1]);
  if (args.length > 2 || (args.length === 2 && mode !== 'ASYNC' && mode !== 'SYNC')) throw syntaxError();
  await ctx.flushAll();
  w.ok();
};

const info: Handler = (ctx, args, w) => w.bulk(ctx.info((args[1]?.toString('latin1') ?? '').toLowerCase()));

const select: Handler = (_ctx, args, w) => {
  if ((args[1] as Buffer).toString('latin1') !== '0') throw new RespError('ERR DB index is out of range');
  w.ok();
};

const quit: Handler = (ctx, _args, w) => {
  w.ok();
  ctx.quit();
};

/** Answers the settings clients (redis-benchmark) ask for; everything else is an empty list. */
const config: Handler = (ctx, args, w) => {
  const sub = upper(args[1]);
  if (sub === 'GET') {
    const known: Record<string, string> = {
      save: '',
      appendonly: 'no',
      databases: '1',
      maxmemory: String(ctx.engine.store.limits.maxBytes),
      'maxmemory-policy': 'allkeys-lru',
    };
    const pattern = (args[2]?.toString('latin1') ?? '').toLowerCase();
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    const pairs = Object.entries(known).filter(([k]) => re.test(k));
    w.arrayHeader(pairs.length * 2);
    for (const [k, v] of pairs) {
      w.bulk(k);
      w.bulk(v);
    }
    return;
  }
  if (sub === 'RESETSTAT') {
    w.ok();
    return;
  }
  throw new RespError(`ERR CONFIG ${sub} is not supported; settings live in the node's YAML file`);
};

const client: Handler = (_ctx, args, w) => {
  const sub = upper(args[1]);
  if (sub === 'SETNAME' || sub === 'SETINFO') w.ok();
  else if (sub === 'GETNAME') w.nil();
  else throw new RespError(`ERR CLIENT ${sub} is not supported by this server`);
};

const hello: Handler = (_ctx, args, w) => {
  const ver = args[1]?.toString('latin1');
  if (ver !== undefined && ver !== '2') throw new RespError('NOPROTO this server speaks RESP2 only');
  const fields: [string, string | number][] = [
    ['server', 'strata'],
    ['version', '7.0.0'],
    ['proto', 2],
    ['mode', 'standalone'],
    ['role', 'master'],
  ];
  w.arrayHeader(fields.length * 2 + 2);
  for (const [k, v] of fields) {
    w.bulk(k);
    if (typeof v === 'number') w.int(v);
    else w.bulk(v);
  }
  w.bulk('modules');
  w.arrayHeader(0);
};

const command: Handler = (_ctx, args, w) => {
  const sub = upper(args[1]);
  if (sub === '') {
    w.arrayHeader(COMMANDS.size);
    for (const spec of COMMANDS.values()) writeCommandInfo(w, spec);
  } else if (sub === 'COUNT') {
    w.int(COMMANDS.size);
  } else if (sub === 'INFO') {
    const names = args.slice(2);
    w.arrayHeader(names.length);
    for (const n of names) {
      const spec = COMMANDS.get(n.toString('latin1').toLowerCase());
      if (spec === undefined) w.nilArray();
      else writeCommandInfo(w, spec);
    }
  } else if (sub === 'DOCS') {
    // No docs: redis-cli falls back to its built-in hints.
    w.arrayHeader(0);
  } else {
    throw new RespError(`ERR unknown subcommand '${sub.toLowerCase()}'. Try COMMAND HELP.`);
  }
};

function writeCommandInfo(w: Reply, spec: CommandSpec): void {
  w.arrayHeader(6);
  w.bulk(spec.name);
  w.int(spec.arity);
  w.arrayHeader(spec.flags.length);
  for (const f of spec.flags) w.simple(f);
  w.int(spec.firstKey);
  w.int(spec.lastKey);
  w.int(spec.step);
}

function spec(
  name: string,
  arity: number,
  flags: readonly string[],
  keys: [number, number, number],
  handler: Handler,
): [string, CommandSpec] {
  return [name, { name, arity, flags, firstKey: keys[0], lastKey: keys[1], step: keys[2], handler }];
}

const W = ['write', 'denyoom'] as const;
const R = ['readonly', 'fast'] as const;
const NOKEY: [number, number, number] = [0, 0, 0];
const ONE: [number, number, number] = [1, 1, 1];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map([
  spec('get', 2, R, ONE, get),
  spec('set', -3, W, ONE, set),
  spec('setex', 4, W, ONE, setWithTtl(1000, 'setex')),
  spec('psetex', 4, W, ONE, setWithTtl(1, 'psetex')),
  spec('setnx', 3, W, ONE, setnx),
  spec('del', -2, ['write'], [1, -1, 1], countKeys('del')),
  spec('unlink', -2, ['write', 'fast'], [1, -1, 1], countKeys('del')),
  spec('exists', -2, R, [1, -1, 1], countKeys('exists')),
  spec('mget', -2, R, [1, -1, 1], mget),
  spec('mset', -3, W, [1, -1, 2], mset),
  spec('incr', 2, [...W, 'fast'], ONE, incrBy(1, false)),
  spec('decr', 2, [...W, 'fast'], ONE, incrBy(-1, false)),
  spec('incrby', 3, [...W, 'fast'], ONE, incrBy(1, true)),
  spec('decrby', 3, [...W, 'fast'], ONE, incrBy(-1, true)),
  spec('expire', -3, ['write', 'fast'], ONE, expire(1000, false, 'expire')),
  spec('pexpire', -3, ['write', 'fast'], ONE, expire(1, false, 'pexpire')),
  spec('expireat', -3, ['write', 'fast'], ONE, expire(1000, true, 'expireat')),
  spec('pexpireat', -3, ['write', 'fast'], ONE, expire(1, true, 'pexpireat')),
  spec('persist', 2, ['write', 'fast'], ONE, persist),
  spec('ttl', 2, R, ONE, ttl(1000)),
  spec('pttl', 2, R, ONE, ttl(1)),
  spec('type', 2, R, ONE, type),
  spec('strlen', 2, R, ONE, strlen),
  spec('ping', -1, ['fast'], NOKEY, ping),
  spec('echo', 2, ['fast'], NOKEY, echo),
  spec('dbsize', 1, R, NOKEY, dbsize),
  spec('flushall', -1, ['write'], NOKEY, flushall),
  spec('flushdb', -1, ['write'], NOKEY, flushall),
  spec('info', -1, ['loading', 'stale'], NOKEY, info),
  spec('select', 2, ['loading', 'fast'], NOKEY, select),
  spec('quit', -1, ['fast'], NOKEY, quit),
  spec('config', -2, ['admin', 'noscript'], NOKEY, config),
  spec('client', -2, ['admin', 'noscript'], NOKEY, client),
  spec('hello', -1, ['fast'], NOKEY, hello),
  spec('command', -1, ['loading', 'stale'], NOKEY, command),
]);

/** Command names as received ("GET", "get", "Get") → spec; only known names are cached. */
const byRawName = new Map<string, CommandSpec>();
const MAX_CACHED_NAMES = 1024;

/** The spec of a command name (any case), or undefined when unknown. */
export function lookupCommand(nameBuf: Buffer | undefined): CommandSpec | undefined {
  if (nameBuf === undefined || nameBuf.length > 32) return undefined;
  const raw = nameBuf.toString('latin1');
  let spec = byRawName.get(raw);
  if (spec === undefined) {
    spec = COMMANDS.get(raw.toLowerCase());
    if (spec !== undefined && byRawName.size < MAX_CACHED_NAMES) byRawName.set(raw, spec);
  }
  return spec;
}

/** Runs one command (looked up by the caller), checking arity; errors are thrown for the caller to reply. */
export function dispatch(
  ctx: CommandContext,
  cmd: CommandSpec | undefined,
  args: Buffer[],
  w: Reply,
): void | Promise<void> {
  const nameBuf = args[0] as Buffer;
  if (cmd === undefined) {
    const shown = args
      .slice(1, 4)
      .map((a) => `'${a.toString('latin1').slice(0, 64)}'`)
      .join(' ');
    throw new RespError(
      `ERR unknown command '${nameBuf.toString('latin1').slice(0, 64)}', with args beginning with: ${shown}`,
    );
  }
  if ((cmd.arity > 0 && args.length !== cmd.arity) || (cmd.arity < 0 && args.length < -cmd.arity)) {
    throw new RespError(`ERR wrong number of arguments for '${cmd.name}' command`);
  }
  return cmd.handler(ctx, args, w);
}
