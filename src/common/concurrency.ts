/**
 * Bounded concurrency for per-item remote calls (attribute reads of a listing page, HEADs of an
 * index page): at most `limit` calls in flight, results in input order.
 */

/**
 * Maps `items` through `fn` with at most `limit` calls at a time; the results keep the items'
 * order. The first failure rejects the whole (calls already started run to their end, no new one
 * starts).
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
