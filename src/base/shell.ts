/**
 * Quotes a string for bash so that it stays one word and nothing in it
 * expands. Strings with control characters use ANSI-C quoting (`$'...\x0d'`),
 * which expands no variables or commands either: sbatch refuses scripts with a
 * carriage return, and escapes keep the script one line per command.
 */
export function quoteShell(value: string): string {
  // A NUL would cut the word short in bash (and a path with it).
  if (value.includes("\0")) throw new TypeError(`Cannot put a NUL byte into a shell word: ${JSON.stringify(value)}`);
  // "=" is quoted too: a first word X=1 would be an assignment.
  if (value !== "" && /^[A-Za-z0-9_@%+:,./-]+$/.test(value)) return value;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point: they get ANSI-C escapes.
  if (/[\x00-\x1f\x7f]/.test(value)) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: as above.
    const escaped = value.replace(/[\\'\x00-\x1f\x7f]/g, (c) => (c === "\\" ? "\\\\" : c === "'" ? "\\'" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`));
    return `$'${escaped}'`;
  }
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Quotes a word for any POSIX shell (sh, dash, bash, zsh), as a remote login
 * shell may be any of them: plain single quotes, newlines and all, no `$'...'`.
 */
export function quotePosix(value: string): string {
  if (value.includes("\0")) throw new TypeError(`Cannot put a NUL byte into a shell word: ${JSON.stringify(value)}`);
  if (value !== "" && /^[A-Za-z0-9_@%+:,./-]+$/.test(value)) return value;
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
