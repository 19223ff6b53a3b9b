import { UsageError } from "../base/errors.js";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { SshTarget } from "../transport/ssh-target.js";

/** Options every command takes. */
export const COMMON = {
  ssh: { type: "string" },
  "ssh-config": { type: "string" },
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
 * Where `--ssh DEST` points. By default the system's ssh with the user's own
 * configuration (`--ssh-config FILE` for another than ~/.ssh/config): DEST is
 * a Host alias or user@host[:port]. With `--identity FILE` or `--known-hosts
 * FILE`, the built-in client with that key (DEST is then user@host[:port]);
 * host keys are checked against known_hosts either way.
 */
export function sshFromFlags(values: Values): SshTarget | undefined {
  const [ssh, config, identity, knownHosts] = (["ssh", "ssh-config", "identity", "known-hosts"] as const).map((k) => values[k] as string | undefined);
  if (ssh === undefined) {
    if (identity !== undefined || knownHosts !== undefined || config !== undefined) throw new UsageError("--ssh-config, --identity and --known-hosts go with --ssh DEST");
    return undefined;
  }
  const log = (line: string) => process.stderr.write(line.startsWith("slurmkit: ") ? `${line}\n` : `slurmkit: ${line}\n`);
  if (identity === undefined && knownHosts === undefined) {
    if (ssh.startsWith("-") || !/^[\w.@:+-]+$/.test(ssh)) throw new UsageError(`Expected --ssh to be a Host alias from ~/.ssh/config or user@host[:port], got '${ssh}'`);
    return { destination: ssh, ...(config !== undefined ? { configFile: config } : {}), log };
  }
  if (config !== undefined) throw new UsageError("--ssh-config is for the system's ssh; --identity and --known-hosts are for the built-in client: give one or the other");
  const m = /^([^@\s]+)@(\[[^\]\s]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(ssh);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && !(port > 0 && port < 65536))) throw new UsageError(`Expected --ssh user@host or user@host:port (port 1-65535) with --identity or --known-hosts, got '${ssh}'`);
  const host = m[2]!.replace(/^\[(.*)\]$/, "$1");
  const key = identity ?? (process.env.SSH_AUTH_SOCK ? undefined : ["id_ed25519", "id_ecdsa", "id_rsa"].map((n) => join(homedir(), ".ssh", n)).find((p) => existsSync(p)));
  if (key === undefined && !process.env.SSH_AUTH_SOCK) throw new UsageError("No SSH key: pass --identity FILE, start an ssh-agent, or create ~/.ssh/id_ed25519");
  return {
    host,
    username: m[1]!,
    ...(port !== undefined ? { port } : {}),
    ...(key !== undefined ? { privateKey: key } : { agent: true as const }),
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    log,
  };
}
