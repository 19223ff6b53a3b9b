/** `f` over `items`, `size` at a time (each chunk at once, the chunks in turn), results in order. */
export async function inChunks<T, U>(items: readonly T[], size: number, f: (item: T, index: number) => Promise<U>): Promise<U[]> {
  const out: U[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map((item, k) => f(item, i + k)))));
  return out;
}
