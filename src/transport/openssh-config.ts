// The system's OpenSSH, as slurmkit will use it (issue 25): a destination
// string, and what `ssh -G` says the user's own configuration makes of it.
import { execFile } from "node:child_process";
import { ParameterError } from "../base/errors.js";

/** A destination for the system's ssh: a Host alias from ~/.ssh/config, or `user@host[:port]`. */
export interface SshDestination {
  /** What ssh is given: the alias, or `user@host`. */
  readonly destination: string;
  /** A port given as `:port`; otherwise the configuration's. */
  readonly port?: number | undefined;
}

/** Parses `ssh: "cedar"` or `ssh: "ada@cedar.example.org:2200"`; a bad one is a ParameterError naming what is accepted. */
export function parseSshDestination(text: unknown): SshDestination {
  const accepted = 'a Host alias from ~/.ssh/config ("cedar") or user@host[:port] ("ada@cedar.example.org:2200")';
  if (typeof text !== "string" || text === "") throw new ParameterError("ssh", [`Expected ${accepted}, got \`${String(text)}\``]);
  // Nothing that ssh could read as an option, and only what names a host and a user: no spaces, quotes or shell characters.
  if (text.startsWith("-") || !/^[\w.@:+-]+$/.test(text)) throw new ParameterError("ssh", [`Expected ${accepted}, without spaces, quotes or a leading -, got \`${text}\``]);
  const m = /^(?:([^@:]+)@)?([^@:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new ParameterError("ssh", [`Expected ${accepted}, got \`${text}\``]);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new ParameterError("ssh", [`Expected a port from 1 to 65535 in \`${text}\`, got ${port}`]);
  return { destination: m[1] ? `${m[1]}@${m[2]}` : m[2]!, ...(port !== undefined ? { port } : {}) };
}

/** What the user's OpenSSH configuration makes of a destination (`ssh -G`), as far as slurmkit cares. */
export interface OpenSshConfig {
  readonly hostname: string;
  readonly user: string;
  readonly port: number;
  /** `ControlMaster`: "no", "yes", "auto", "ask" or "autoask". */
  readonly controlMaster: string;
  /** `ControlPath`, expanded; undefined for none. */
  readonly controlPath: string | undefined;
  /** `ControlPersist` in seconds; 0 for no, undefined when unset. */
  readonly controlPersist: number | undefined;
  /** `ProxyJump`; undefined for none. */
  readonly proxyJump: string | undefined;
  readonly batchMode: boolean;
}

/** Reads `ssh -G`'s output (one `keyword value` a line, keywords in lower case). */
export function parseSshG(text: string): OpenSshConfig {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9]+) (.*)$/.exec(line.trim());
    if (m && !values.has(m[1]!)) values.set(m[1]!, m[2]!);
  }
  const need = (key: string) => {
    const value = values.get(key);
    if (value === undefined) throw new Error(`ssh -G printed no ${key}: ${text.slice(0, 200)}`);
    return value;
  };
  const none = (value: string | undefined) => (value === undefined || value === "none" ? undefined : value);
  const persist = values.get("controlpersist");
  return {
    hostname: need("hostname"),
    user: need("user"),
    port: Number(need("port")),
    controlMaster: values.get("controlmaster") ?? "no",
    controlPath: none(values.get("controlpath")),
    controlPersist: persist === undefined ? undefined : persist === "no" ? 0 : persist === "yes" ? Number.POSITIVE_INFINITY : Number(persist),
    proxyJump: none(values.get("proxyjump")),
    batchMode: values.get("batchmode") === "yes",
  };
}

/** Asks the system's ssh what it would do for `destination` (`ssh -G`: reads the configuration, connects nowhere). */
export function resolveSshConfig(d: SshDestination, options: { readonly configFile?: string; readonly ssh?: string } = {}): Promise<OpenSshConfig> {
  const args = [...(options.configFile ? ["-F", options.configFile] : []), ...(d.port !== undefined ? ["-p", String(d.port)] : []), "-G", "--", d.destination];
  return new Promise((resolve, reject) => {
    execFile(options.ssh ?? "ssh", args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`ssh -G ${d.destination} failed: ${(stderr || error.message).trim()}`));
      try {
        resolve(parseSshG(stdout));
      } catch (e) {
        reject(e);
      }
    });
  });
}
