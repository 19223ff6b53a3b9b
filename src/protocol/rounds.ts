// Rounds of workers of a packed submission. Round 0 is what the client
// submitted first; round n > 0 is submitted by whoever creates `rounds/<n>`
// first (an exclusive create): a worker whose time ran out with tasks left,
// or the client. So exactly one sbatch goes out per round, and its workers'
// element numbers (n × the manifest's workers, then up) are never shared.

/** The environment variable that tells a worker its round (absent: 0). */
export const ROUND_VARIABLE = "SLURMKIT_ROUND";

/** The environment variable that tells a later worker array its first element number. */
export const ELEMENT_OFFSET_VARIABLE = "SLURMKIT_ELEMENT_OFFSET";

/** The first element number of round `round`'s workers: each round has at most `workers` elements. */
export function roundOffset(round: number, workers: number): number {
  return round * workers;
}

/** A worker's round, from its environment; 0 when unset or not a number. */
export function roundOf(env: NodeJS.ProcessEnv): number {
  const n = Number(env[ROUND_VARIABLE]);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** The rounds numbered in a listing of `rounds/` (other names, such as `no-sbatch` or temporary files, left out). */
export function roundNumbers(names: readonly string[]): number[] {
  return names.filter((n) => /^[1-9]\d*$/.test(n)).map(Number);
}

/** sbatch's options for a round: its array, its parallelism, and the variables that tell its workers where they are. */
export function roundSbatchArgs(round: number, firstElement: number, elements: number, parallelism: number | undefined): string[] {
  const limit = parallelism !== undefined ? `%${parallelism}` : "";
  return [`--array=0-${elements - 1}${limit}`, `--export=ALL,${ELEMENT_OFFSET_VARIABLE}=${firstElement},${ROUND_VARIABLE}=${round}`];
}
