/**
 * Prometheus metrics. Each process owns one Registry (never the global one, so several roles can
 * live in one process — `strata local`, tests — without name clashes) with the default process
 * metrics and a `role` label on everything.
 */
import { Registry, collectDefaultMetrics, Counter, Gauge, Histogram } from 'prom-client';

export { Registry, Counter, Gauge, Histogram };

export function createRegistry(role: string, extraLabels: Record<string, string> = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role, ...extraLabels });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Latency buckets in seconds from 50 µs to 10 s: RPCs on loopback land in the low buckets. */
export const LATENCY_BUCKETS_S = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
