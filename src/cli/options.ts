import { UsageError } from "../base/errors.js";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { SshOptions } from "../transport/ssh-options.js";

/** Options every command takes. */
export const COMMON = {
  ssh: { type: "string" },
  identity: { type: "string" },
  "known-hosts": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/** Parsed options: strings and booleans by name. */
export type Values = Readonly<Record<string, string | boolean | undefined>>;

/** Parses a command's arguments strictly; an unknown option or a missing value is a UsageError. */
export function parse(command: string, args: readonly string[], options: NonNullable<ParseArgsConfig["options"]>): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UsageError(`${(error as Error).message.replace(/\. To specify a positional.*$/s, "")} (see slurmkit ${command} --help)`);
  }
}

/**
 * SSH options from `--ssh user@host[:port]`, `--identity FILE` and
 * `--known-hosts FILE`. Without --identity: the ssh-agent when SSH_AUTH_SOCK
 * is set, else the first of ~/.ssh/id_ed25519, id_ecdsa and id_rsa. Host keys
 * are checked against known_hosts (~/.ssh/known_hosts by default), as the SDK does.
 */
export function sshFromFlags(values: Values): SshOptions | undefined {
  const [ssh, identity, knownHosts] = (["ssh", "identity", "known-hosts"] as const).map((k) => values[k] as string | undefined);
  if (ssh === undefined) {
    if (identity !== undefined || knownHosts !== undefined) throw new UsageError("--identity and --known-hosts go with --ssh user@host[:port]");
    return undefined;
  }
  const m = /^([^@\s]+)@(\[[^\]\s]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(ssh);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && !(port > 0 && port < 65536))) throw new UsageError(`Expected --ssh user@host or user@host:port (port 1-65535), got '${ssh}'`);
  const host = m[2]!.replace(/^\[(.*)\]$/, "$1");
  const key = identity ?? (process.env.SSH_AUTH_SOCK ? undefined : ["id_ed25519", "id_ecdsa", "id_rsa"].map((n) => join(homedir(), ".ssh", n)).find((p) => existsSync(p)));
  if (key === undefined && !process.env.SSH_AUTH_SOCK) throw new UsageError("No SSH key: pass --identity FILE, start an ssh-agent, or create ~/.ssh/id_ed25519");
  return {
    host,
    username: m[1]!,
    ...(port !== undefined ? { port } : {}),
    ...(key !== undefined ? { privateKey: key } : { agent: true as const }),
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    log: (line) => process.stderr.write(`slurmkit: ${line}\n`),
  };
}
