/** The gateway's Prometheus metrics: requests by operation and status, bytes, latency. */
import { Counter, Gauge, Histogram, LATENCY_BUCKETS_S } from '../../common/metrics.js';
import type { Registry } from '../../common/metrics.js';

export interface GatewayMetrics {
  requests: Counter<'op' | 'status'>;
  seconds: Histogram<'op'>;
  receivedBytes: Counter<'op'>;
  sentBytes: Counter<'op'>;
  inFlight: Gauge;
}

export function createGatewayMetrics(registry: Registry): GatewayMetrics {
  return {
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
