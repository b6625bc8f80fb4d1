/**
 * Reads the workers' `/metrics` for the console's throughput chart. The master sees metadata,
 * not data, so the bytes the workers serve and store come from their own counters. Bounded in
 * every direction: a few scrapes at a time, a deadline each, a cap on the body, and only the
 * workers that are expected to answer (not lost, not decommissioned).
 */
import type { Logger } from '../../common/logging.js';

/** Scrapes running at once. */
export const SCRAPE_CONCURRENCY = 8;
/** Deadline of one scrape. */
export const SCRAPE_TIMEOUT_MS = 2_000;
/** Largest /metrics body read; a worker's is about 20 KiB. */
export const MAX_SCRAPE_BYTES = 4 * 1024 * 1024;

export interface ScrapeTarget {
  id: string;
  url: string;
}

export type ScrapeFn = (url: string, signal: AbortSignal) => Promise<string>;

/** Fetches a /metrics body, refusing bodies above MAX_SCRAPE_BYTES. */
export const fetchMetricsText: ScrapeFn = async (url, signal) => {
  const res = await fetch(url, { signal, headers: { accept: 'text/plain' } });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    // Leaving the loop early cancels the stream (and the connection).
    if (total > MAX_SCRAPE_BYTES) throw new Error(`body larger than ${MAX_SCRAPE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
};

/** Scrapes every target (SCRAPE_CONCURRENCY at a time); failures are logged at debug and left out. */
export async function scrapeAll(
  targets: readonly ScrapeTarget[],
  scrape: ScrapeFn,
  log: Logger,
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < targets.length) {
      const t = targets[next++] as ScrapeTarget;
      try {
        out.set(t.id, await scrape(t.url, AbortSignal.timeout(SCRAPE_TIMEOUT_MS)));
      } catch (err) {
        log.debug(
          { workerId: t.id, url: t.url, err: (err as Error).message },
          'worker metrics scrape failed',
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCRAPE_CONCURRENCY, targets.length) }, run));
  return out;
}
