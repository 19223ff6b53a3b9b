/** Quotes a string for bash so that it stays one word and nothing in it expands. */
export function quoteShell(value: string): string {
  if (value !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Quotes a value for an `#SBATCH` line. sbatch reads those lines itself, not
 * through bash, and treats a backslash as an escape even inside single quotes:
 * so `\` is doubled as well as `'` written as `'\''`.
 */
export function quoteSbatch(value: string): string {
  if (value !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", `'\\''`)}'`;
}

/** Quotes each argument and joins them with spaces. */
export function quoteCommand(args: readonly string[]): string {
  return args.map(quoteShell).join(" ");
}
