function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The candidates closest to `word` (case and `-`/`_` ignored), best first. */
export function closeMatches(word: string, candidates: readonly string[], max = 3): string[] {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  const w = norm(word);
  return candidates
    .map((c) => ({ c, d: distance(w, norm(c)) }))
    .filter(({ c, d }) => d <= Math.max(2, Math.floor(norm(c).length / 3)) || norm(c).includes(w) || w.includes(norm(c)))
    .sort((x, y) => x.d - y.d)
    .slice(0, max)
    .map(({ c }) => c);
}
