/** The fio reference: run a job with JSON output and read bandwidth, IOPS and latency from it. */
import { requireTool, runOk } from './proc.js';

export interface FioSide {
  bytesPerSecond: number;
  iops: number;
  /** Mean completion latency in microseconds. */
  meanLatencyUs: number;
}

export interface FioResult {
  read: FioSide;
  write: FioSide;
}

/** Runs fio with the given arguments (plus --output-format=json). */
export async function runFio(args: readonly string[], timeoutMs = 300_000): Promise<FioResult> {
  const bin = requireTool('fio', 'fio');
  return parseFioJson(await runOk(bin, [...args, '--output-format=json'], timeoutMs));
}

interface FioJobSide {
  bw_bytes?: number;
  iops?: number;
  clat_ns?: { mean?: number };
}

export function parseFioJson(json: string): FioResult {
  // fio may print warnings before the JSON document.
  const start = json.indexOf('{');
  const doc = JSON.parse(start > 0 ? json.slice(start) : json) as {
    jobs?: { read?: FioJobSide; write?: FioJobSide }[];
  };
  const jobs = doc.jobs ?? [];
  if (jobs.length === 0) throw new Error('fio JSON has no jobs');
  const sum = (pick: (j: { read?: FioJobSide; write?: FioJobSide }) => FioJobSide | undefined): FioSide => {
    let bytesPerSecond = 0;
    let iops = 0;
    let lat = 0;
    for (const j of jobs) {
      const s = pick(j);
      bytesPerSecond += s?.bw_bytes ?? 0;
      iops += s?.iops ?? 0;
      lat += (s?.clat_ns?.mean ?? 0) / 1000;
    }
    return { bytesPerSecond, iops, meanLatencyUs: lat / jobs.length };
  };
  return { read: sum((j) => j.read), write: sum((j) => j.write) };
}
