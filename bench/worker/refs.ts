/**
 * Reference measurements the worker benchmark prints beside its own figures: fio sequential
 * reads and writes of a file in the same directory, and iperf3 over loopback.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

export interface RunOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<RunOutput> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface FioOptions {
  file: string;
  rw: 'read' | 'write';
  sizeBytes: number;
  /** Sync the file at the end of a write (Strata syncs each block it publishes). */
  endFsync?: boolean;
}

/**
 * fio drops the file's page cache before it starts (`invalidate=1`) unless told not to; reads are
 * compared warm on both sides (Strata's blocks were just written), so the cache is kept.
 */
const FIO_KEEP_CACHE = '--invalidate=0';

/** fio with 1 MiB blocks, one job, psync; returns bytes per second. */
export async function fio(o: FioOptions): Promise<number> {
  const args = [
    '--name=ref',
    `--filename=${o.file}`,
    `--rw=${o.rw}`,
    '--bs=1M',
    `--size=${o.sizeBytes}`,
    '--ioengine=psync',
    '--numjobs=1',
    '--output-format=json',
    FIO_KEEP_CACHE,
    ...(o.endFsync === true ? ['--end_fsync=1'] : []),
  ];
  const r = await run('fio', args);
  if (r.code !== 0) throw new Error(`fio failed (${r.code}): ${r.stderr || r.stdout}`);
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as {
    jobs: { read: { bw_bytes: number }; write: { bw_bytes: number } }[];
  };
  const job = json.jobs[0];
  if (job === undefined) throw new Error('fio printed no job');
  return o.rw === 'read' ? job.read.bw_bytes : job.write.bw_bytes;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** iperf3 over loopback for `seconds`; returns received bytes per second. */
export async function iperf3(seconds: number): Promise<number> {
  const port = await freePort();
  const server = spawn('iperf3', ['-s', '-1', '-p', String(port)], { stdio: 'ignore' });
  try {
    let last: RunOutput | undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      last = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J']);
      if (last.code === 0) {
        const json = JSON.parse(last.stdout) as { end: { sum_received: { bits_per_second: number } } };
        return json.end.sum_received.bits_per_second / 8;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`iperf3 failed: ${last?.stderr ?? ''}${last?.stdout ?? ''}`);
  } finally {
    server.kill('SIGKILL');
  }
}

export function gbps(bytesPerSecond: number): string {
  return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
}
