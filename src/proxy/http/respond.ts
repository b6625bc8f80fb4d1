/**
 * Writing a response from a body source: byte ranges (single, multipart, 416, If-Range), HEAD,
 * and a body pump that honours the client socket's backpressure and stops cleanly when the
 * client goes away. Whether the bytes come from L1, disk, a fill in progress or assembled slices
 * is the source's business.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { flatten, getHeader } from './headers.js';
import { contentRange, evaluateRange, ifRangeAllows, planMultipart } from './range.js';
import { readBuffers } from '../store/buffer-pool.js';
import type { HeaderPairs } from '../store/types.js';

export interface BodySource {
  /** Total length when known. */
  readonly length: number | undefined;
  /** Bytes [start, end) (end undefined: to the end). */
  read(start: number, end: number | undefined): AsyncIterable<Buffer>;
}

export interface SendOptions {
  method: string;
  /** Honour the client's Range header (only for a 200 whose length is known). */
  ranges: boolean;
  reqHeaders: Record<string, string>;
}

const NO_BODY_STATUS: ReadonlySet<number> = new Set([204, 304]);

export function noBody(status: number): boolean {
  return NO_BODY_STATUS.has(status) || (status >= 100 && status < 200);
}

/** Waits for 'drain'; false when the client went away first. */
function drained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const onDrain = (): void => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = (): void => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/**
 * Bytes a response may hold in its socket's user-space buffer before the pump waits for
 * 'drain': more than the stream's 16 KiB high-water mark, so large bodies are not paced by one
 * event-loop turn per chunk, and still a small bound per client.
 */
export const PUMP_BUFFER_BYTES = 2 * 1024 * 1024;

/**
 * Streams chunks to the client. Returns false when the client left before the end. A chunk
 * read into a pooled buffer (disk hits) goes back to the pool once the socket has taken its
 * bytes (the write callback), so large hits allocate nothing per chunk.
 */
export async function pump(res: ServerResponse, chunks: AsyncIterable<Buffer>): Promise<boolean> {
  for await (const chunk of chunks) {
    if (res.destroyed || res.writableEnded) return false;
    const written = readBuffers.owns(chunk)
      ? res.write(chunk, () => readBuffers.recycle(chunk))
      : res.write(chunk);
    if (!written && res.writableLength >= PUMP_BUFFER_BYTES) {
      if (!(await drained(res))) return false;
    }
  }
  return true;
}

/**
 * What a response to a body source will be: status and headers after the client's Range (206,
 * multipart, 416) and HEAD are applied, and which bytes follow. Computed before any byte goes
 * out, so the head can be sent as soon as it is known (a miss sends it when the origin's
 * headers arrive, before the body is read or stored).
 */
export interface ResponsePlan {
  status: number;
  headers: HeaderPairs;
  /** No body follows the head (HEAD, 204/304/1xx, 416). */
  headOnly: boolean;
  /** Single body range [start, end) (end undefined: to the end of the source). */
  start: number;
  end: number | undefined;
  /** Several ranges: multipart/byteranges parts. */
  multipart: { ranges: [number, number][]; heads: Buffer[]; tail: Buffer } | undefined;
}

export function planResponse(
  status: number,
  headers: HeaderPairs,
  length: number | undefined,
  opts: SendOptions,
): ResponsePlan {
  const out: HeaderPairs = headers.filter(([k]) => k !== 'content-length');
  let start = 0;
  let end: number | undefined = length;
  let outStatus = status;
  let multipart: ResponsePlan['multipart'];
  const rangeHeader = opts.reqHeaders.range;
  if (
    opts.ranges &&
    status === 200 &&
    length !== undefined &&
    rangeHeader !== undefined &&
    ifRangeAllows(
      opts.reqHeaders['if-range'],
      getHeader(headers, 'etag'),
      getHeader(headers, 'last-modified'),
    )
  ) {
    const d = evaluateRange(rangeHeader, length);
    if (d.kind === 'unsatisfiable') {
      const h = out.filter(([k]) => k !== 'content-type' && k !== 'content-range');
      h.push(['content-range', `bytes */${length}`], ['content-length', '0']);
      return { status: 416, headers: h, headOnly: true, start: 0, end: 0, multipart: undefined };
    }
    if (d.kind === 'partial') {
      const ranges = d.ranges.map(([a, b]): [number, number] => [a, b]);
      outStatus = 206;
      if (ranges.length === 1) {
        const r = ranges[0] as [number, number];
        start = r[0];
        end = r[1] + 1;
        out.push(['content-range', contentRange(r, length)]);
      } else {
        const plan = planMultipart(ranges, length, getHeader(headers, 'content-type'));
        for (let i = out.length - 1; i >= 0; i--)
          if ((out[i] as [string, string])[0] === 'content-type') out.splice(i, 1);
        out.push(['content-type', plan.contentType], ['content-length', String(plan.totalBytes)]);
        multipart = { ranges, heads: plan.heads, tail: plan.tail };
      }
    }
  }
  if (
    status === 200 &&
    length !== undefined &&
    getHeader(headers, 'accept-ranges') === undefined &&
    opts.ranges
  )
    out.push(['accept-ranges', 'bytes']);
  const bodyLess = noBody(outStatus);
  if (!bodyLess && multipart === undefined && end !== undefined)
    out.push(['content-length', String(end - start)]);
  return {
    status: outStatus,
    headers: out,
    headOnly: bodyLess || opts.method === 'HEAD',
    start,
    end,
    multipart,
  };
}

/** Writes the planned status line and headers (sent with the first body bytes, or by `flushHeaders`). */
export function writePlannedHead(res: ServerResponse, plan: ResponsePlan): void {
  res.writeHead(plan.status, flatten(plan.headers));
}

/**
 * Sends the planned body after its head was written; ends the response. Errors of the source
 * destroy the connection (a truncated response the client can detect), never a wrong body.
 */
export async function sendPlannedBody(
  res: ServerResponse,
  plan: ResponsePlan,
  source: BodySource | undefined,
): Promise<boolean> {
  if (plan.headOnly || source === undefined) {
    res.end();
    return true;
  }
  try {
    const mp = plan.multipart;
    if (mp !== undefined) {
      for (let i = 0; i < mp.ranges.length; i++) {
        const [a, b] = mp.ranges[i] as [number, number];
        if (!res.write(mp.heads[i]) && !(await drained(res))) return false;
        if (!(await pump(res, source.read(a, b + 1)))) return false;
      }
      res.end(mp.tail);
      return true;
    }
    if (!(await pump(res, source.read(plan.start, plan.end)))) return false;
    res.end();
    return true;
  } catch (err) {
    res.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

/** Sends status, headers and body (see planResponse and sendPlannedBody). */
export async function sendFromSource(
  res: ServerResponse,
  status: number,
  headers: HeaderPairs,
  source: BodySource | undefined,
  opts: SendOptions,
): Promise<boolean> {
  const plan = planResponse(status, headers, source?.length, opts);
  writePlannedHead(res, plan);
  return sendPlannedBody(res, plan, source);
}

/** A small complete response (errors, PURGE results, 504 only-if-cached). */
export function sendText(res: ServerResponse, status: number, body: string, extra: HeaderPairs = []): void {
  const buf = Buffer.from(body);
  const h: HeaderPairs = [
    ['content-type', body.startsWith('{') ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8'],
    ['content-length', String(buf.length)],
    ['cache-control', 'no-store'],
    ...extra,
  ];
  res.writeHead(status, flatten(h));
  res.end(buf);
}

export function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}
