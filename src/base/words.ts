/** `n` and the word, singular for 1 and plural otherwise: "1 task", "3 tasks", "2 matches" (with `plural` given). */
export function plural(n: number, word: string, plural = `${word}s`): string {
  return `${n} ${n === 1 ? word : plural}`;
}
