/** The iperf3 reference: a one-shot iperf3 server on a free port and a client run against it. */
import { freePort, requireTool, runOk, startBackground, waitForOutput } from './proc.js';

export interface Iperf3Server {
  port: number;
  stop(): Promise<void>;
}

export async function startIperf3Server(): Promise<Iperf3Server> {
  const bin = requireTool('iperf3', 'iperf3');
  const port = await freePort();
  const bg = await startBackground(
    bin,
    ['-s', '-p', String(port), '-B', '127.0.0.1', '--forceflush'],
    (out) => waitForOutput(out, /Server listening/).then(() => undefined),
  );
  return { port, stop: () => bg.stop() };
}

export interface Iperf3Result {
  /** Received bytes per second (decimal: 1 GB = 1e9 bytes). */
  bytesPerSecond: number;
}

/** `iperf3 -c 127.0.0.1 -p <port> -t <seconds> -J`; `reverse` makes the server send. */
export async function runIperf3Client(port: number, seconds: number, reverse = false): Promise<Iperf3Result> {
  const bin = requireTool('iperf3', 'iperf3');
  const args = ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'];
  if (reverse) args.push('-R');
  return parseIperf3Json(await runOk(bin, args, (seconds + 30) * 1000));
}

export function parseIperf3Json(json: string): Iperf3Result {
  const doc = JSON.parse(json) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  if (doc.error !== undefined) throw new Error(`iperf3: ${doc.error}`);
  const bits = doc.end?.sum_received?.bits_per_second;
  if (typeof bits !== 'number') throw new Error('iperf3 JSON has no end.sum_received.bits_per_second');
  return { bytesPerSecond: bits / 8 };
}
