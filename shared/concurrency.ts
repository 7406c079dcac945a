/**
 * Runs `fn` over `items` with at most `limit` calls in flight, and returns the results in the items'
 * order. The one bounded-parallelism helper (chain verification, the benchmark's writers, test seeding).
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
