/** Quotes a string for bash so that it stays one word and nothing in it expands. */
export function quoteShell(value: string): string {
  if (value !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Quotes each argument and joins them with spaces. */
export function quoteCommand(args: readonly string[]): string {
  return args.map(quoteShell).join(" ");
}
