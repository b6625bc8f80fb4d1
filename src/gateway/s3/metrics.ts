/**
 * The gateway's Prometheus metrics: requests by operation and status, bytes, latency, and where
 * an upload's time goes (`strata_s3_upload_phase_seconds`, one observation per phase per upload).
 */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_S } from '../../common/metrics.js';
import type { Registry } from '../../common/metrics.js';

export interface GatewayMetrics {
  requests: Counter<'op' | 'status'>;
  seconds: Histogram<'op'>;
  receivedBytes: Counter<'op'>;
  sentBytes: Counter<'op'>;
  inFlight: Gauge;
  uploadPhases: UploadPhaseObserver;
  getPhases: GetPhaseObserver;
}

/**
 * Phases of a GET: `open` (the object's blocks located and its metadata read: one round trip to
 * the master), `send` (the bytes read and handed to the response, until the last of them
 * was; the socket may still be sending it).
 */
export type GetPhase = 'open' | 'send';

export type GetPhaseObserver = (phase: GetPhase, seconds: number) => void;

/**
 * Phases of an upload (PutObject, UploadPart, CopyObject), in order:
 * - `create`: the temp file is created with its first block placed (master Create);
 * - `receive`: waiting for body bytes after the create (they are read and hashed ahead, also
 *   during it), summed; a hash thread that falls behind shows here too;
 * - `write`: handing the body to the block writer, summed (the worker's staging open happens
 *   in the first write; AddBlock for blocks after the first);
 * - `digest`: waiting for the hash thread after the last byte;
 * - `close`: the writer is closed: the last block is written out, committed and synced by the
 *   worker, and the file completed; for an object, with its metadata and the rename onto the
 *   key in the same master call (CompleteAs);
 * - `meta`: the metadata attribute is set on its own (master SetXattr beside the close: an
 *   upload completed in place, with no key to rename onto).
 */
export type UploadPhase = 'create' | 'receive' | 'write' | 'digest' | 'close' | 'meta';

export type UploadPhaseObserver = (phase: UploadPhase, seconds: number) => void;

/** Times `fn` as `phase` (also when it fails: a slow failure is time spent too). */
export async function timed<T>(
  observe: UploadPhaseObserver | undefined,
  phase: UploadPhase,
  fn: () => Promise<T>,
): Promise<T> {
  if (observe === undefined) return fn();
  const started = performance.now();
  try {
    return await fn();
  } finally {
    observe(phase, (performance.now() - started) / 1000);
  }
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  const phases = new Histogram({
    name: 'strata_s3_upload_phase_seconds',
    help: 'Time of each phase of an upload (create, receive, write, digest, close, meta)',
    labelNames: ['phase'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  const getPhases = new Histogram({
    name: 'strata_s3_get_phase_seconds',
    help: 'Time of each phase of a GetObject (open, send)',
    labelNames: ['phase'],
    buckets: LATENCY_BUCKETS_S,
    registers: [registry],
  });
  return {
    uploadPhases: (phase, seconds) => phases.observe({ phase }, seconds),
    getPhases: (phase, seconds) => getPhases.observe({ phase }, seconds),
    requests: new Counter({
      name: 'strata_s3_requests_total',
      help: 'S3 requests by operation and HTTP status',
      labelNames: ['op', 'status'],
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'strata_s3_request_seconds',
      help: 'S3 request latency by operation (until the response ends)',
      labelNames: ['op'],
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    }),
    receivedBytes: new Counter({
      name: 'strata_s3_received_bytes_total',
      help: 'Request body bytes received (as sent, including aws-chunked framing)',
      labelNames: ['op'],
      registers: [registry],
    }),
    sentBytes: new Counter({
      name: 'strata_s3_sent_bytes_total',
      help: 'Response body bytes sent',
      labelNames: ['op'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'strata_s3_requests_in_flight',
      help: 'S3 requests being served',
      registers: [registry],
    }),
  };
}
