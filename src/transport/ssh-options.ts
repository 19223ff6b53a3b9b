import { unknownKeyProblems } from "../base/option-words.js";
/** How to reach a cluster's login node over SSH. */
export interface SshOptions {
  /** The login node's name or address. */
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** The user on the cluster. */
  readonly username: string;
  /** A private key: its file's path, or the key itself (a Buffer, or a string that starts with `-----BEGIN`). */
  readonly privateKey?: string | Buffer;
  /** The private key's passphrase, if it has one. */
  readonly passphrase?: string;
  /** An ssh-agent socket to authenticate with; `true` for `$SSH_AUTH_SOCK`. */
  readonly agent?: string | true;
  /** The known_hosts file that vouches for the host's key. @default ~/.ssh/known_hosts */
  readonly knownHosts?: string;
  /** How often an idle connection is checked; a check that gets no answer within this long drops it. @default 15_000 */
  readonly keepaliveMs?: number;
  /** How long an operation keeps reconnecting (with backoff) after the connection dropped, before it fails. @default 600_000 */
  readonly reconnectMs?: number;
  /** How long one connection attempt (TCP, handshake, auth) may take. @default 20_000 */
  readonly connectTimeoutMs?: number;
  /** Receives progress lines (connection lost, reconnecting, reconnected). @default one line each on stderr */
  readonly log?: (line: string) => void;
}

/** A key given inline rather than as a file path: a Buffer, or a string that looks like key material. */
export function isInlineKey(key: string | Buffer): boolean {
  return Buffer.isBuffer(key) || /\n|-----BEGIN|PRIVATE KEY|PuTTY-User-Key-File/.test(key) || key.length > 1024;
}

/** The path for a message; something long enough to be key material is not repeated. */
export function describeKeyPath(path: string): string {
  return path.length <= 200 && !/\s/.test(path) ? path : `(a ${path.length}-character value: pass key contents as a Buffer or PEM text, a path otherwise)`;
}

/** Every problem with `ssh` options, one line each; [] when they are fine. */
export function validateSshOptions(o: SshOptions): string[] {
  if (typeof o !== "object" || o === null) return [`Expected \`ssh\` to be an object with host, username and privateKey or agent, got \`${String(o)}\``];
  const problems: string[] = [];
  const known = ["host", "port", "username", "privateKey", "passphrase", "agent", "knownHosts", "keepaliveMs", "reconnectMs", "connectTimeoutMs", "log"] satisfies (keyof SshOptions)[];
  problems.push(...unknownKeyProblems(o, known, "key").map((p) => p.replace(/`([^`]+)`/, "`ssh.$1`")));
  if (typeof o.host !== "string" || o.host === "") problems.push(`Expected \`ssh.host\` to be a host name or address, got \`${String(o.host)}\``);
  if (o.port !== undefined && !(Number.isInteger(o.port) && o.port > 0 && o.port < 65536)) problems.push(`Expected \`ssh.port\` to be a port number (1-65535), got \`${String(o.port)}\``);
  if (typeof o.username !== "string" || o.username === "") problems.push(`Expected \`ssh.username\` to be the user on the cluster, got \`${String(o.username)}\``);
  if (o.privateKey === undefined && o.agent === undefined) problems.push("Expected `ssh.privateKey` (a key file's path or the key) or `ssh.agent` (true, or an agent socket), got neither");
  if (o.privateKey !== undefined && !Buffer.isBuffer(o.privateKey) && (typeof o.privateKey !== "string" || o.privateKey === "")) {
    problems.push("Expected `ssh.privateKey` to be a key file's path, or the key as a Buffer or string");
  }
  if (o.agent !== undefined && o.agent !== true && (typeof o.agent !== "string" || o.agent === ""))
    problems.push(`Expected \`ssh.agent\` to be true or an agent socket's path, got \`${String(o.agent)}\``);
  if (o.knownHosts !== undefined && (typeof o.knownHosts !== "string" || o.knownHosts === "")) problems.push(`Expected \`ssh.knownHosts\` to be a file path, got \`${String(o.knownHosts)}\``);
  for (const k of ["keepaliveMs", "reconnectMs", "connectTimeoutMs"] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) problems.push(`Expected \`ssh.${k}\` to be a positive integer of milliseconds, got \`${String(v)}\``);
  }
  if (o.log !== undefined && typeof o.log !== "function") problems.push("Expected `ssh.log` to be a function that takes a line");
  return problems;
}
