/**
 * Preload for `trace-miss.js` (`node --import dist/bench/proxy/trace-hooks.js …`): records, per
 * request-path event, the monotonic time (µs, the clock `process.hrtime` and the client share)
 * and the process's CPU time (µs, all threads), and writes them as JSON to `$TRACE_OUT` when the
 * process exits. Events: the HTTP server's `connection` and `request`, undici's
 * `client:sendHeaders` (published just before the request is written) and `request:headers`,
 * and a response's head leaving (`flushHeaders`) or its first `write`.
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { ServerResponse } from 'node:http';

/** [event, monotonic µs, request target (or ''), CPU µs]. */
export type TraceEvent = [string, number, string, number];

const events: TraceEvent[] = [];

function record(name: string, target: string | undefined): void {
  const cpu = process.cpuUsage();
  events.push([name, Number(process.hrtime.bigint() / 1000n), target ?? '', cpu.user + cpu.system]);
}

subscribe('net.server.socket', () => record('accept', ''));
subscribe('http.server.request.start', (m) =>
  record('req', (m as { request: { url?: string } }).request.url),
);
subscribe('undici:client:sendHeaders', (m) =>
  record('upSend', (m as { request: { path: string } }).request.path),
);
subscribe('undici:request:headers', (m) =>
  record('upHeaders', (m as { request: { path: string } }).request.path),
);

const proto = ServerResponse.prototype;
// Taken from the prototype to be wrapped, then called with the response as `this`.
const flushHeaders: (this: ServerResponse) => void = Reflect.get(proto, 'flushHeaders');
proto.flushHeaders = function (this: ServerResponse): void {
  flushHeaders.call(this);
  record('headOut', this.req.url);
};
const write = Reflect.get(proto, 'write') as (this: ServerResponse, ...args: unknown[]) => boolean;
const firstWrite = new WeakSet<ServerResponse>();
(proto as unknown as { write: (...args: unknown[]) => boolean }).write = function (
  this: ServerResponse,
  ...args: unknown[]
): boolean {
  const ok = write.apply(this, args);
  if (!firstWrite.has(this)) {
    firstWrite.add(this);
    record('firstWrite', this.req.url);
  }
  return ok;
};

const out = process.env.TRACE_OUT;
if (out !== undefined) process.on('exit', () => writeFileSync(out, JSON.stringify(events)));
