import { createHash, createHmac } from "node:crypto";
import { quoteShell } from "../base/shell.js";

// Host key checks against OpenSSH known_hosts files, for ssh2's hostVerifier.
// Everything here is pure: the caller reads the files and decides what to do
// with the result. No key is ever accepted without a matching entry.

/** One valid line of a known_hosts file. */
export interface KnownHostEntry {
  /** The file the line came from. */
  readonly file: string;
  /** 1-based line number in that file. */
  readonly line: number;
  /** The `@cert-authority` or `@revoked` marker, without the `@`. */
  readonly marker: "cert-authority" | "revoked" | undefined;
  /** The raw host field: comma-separated patterns, or one `|1|salt|hash`. */
  readonly hosts: string;
  /** The key type field, e.g. `ssh-ed25519`. */
  readonly keyType: string;
  /** The decoded key blob (SSH wire format). */
  readonly key: Buffer;
}

/** What the known_hosts entries say about the key a server offered. */
export type HostKeyCheck =
  /** A plain entry for this host lists exactly this key. */
  | { readonly status: "trusted"; readonly entry: KnownHostEntry }
  /** No plain entry for this host has a key of this type; `knownTypes` are the types it does have. */
  | { readonly status: "unknown"; readonly knownTypes: readonly string[] }
  /** Plain entries for this host have keys of this type, but none is this key. */
  | { readonly status: "changed"; readonly entries: readonly KnownHostEntry[] }
  /** A `@revoked` entry for this host lists this key. */
  | { readonly status: "revoked"; readonly entry: KnownHostEntry };

const strictBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Parses the text of a known_hosts file. Blank lines, `#` comments and lines
 * OpenSSH would reject (too few fields, an unknown `@` marker, bad base64, or a
 * blob whose key type differs from the key type field) are skipped. Fields
 * after the key are a comment and ignored.
 */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const trimmed = lines[i]!.replace(/\r$/, "").trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const fields = trimmed.split(/[ \t]+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]!.startsWith("@")) {
      const word = fields.shift();
      if (word === "@cert-authority") marker = "cert-authority";
      else if (word === "@revoked") marker = "revoked";
      else continue;
    }
    const [hosts, keyType, base64] = fields;
    if (hosts === undefined || keyType === undefined || base64 === undefined) continue;
    if (!strictBase64.test(base64)) continue;
    const key = Buffer.from(base64, "base64");
    // OpenSSH rejects a line whose blob is of another type than its type field.
    if (blobType(key) !== keyType) continue;
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return entries;
}

/**
 * The name OpenSSH writes and looks up for a host: the lowercased host for
 * port 22, `[host]:port` for any other port.
 */
export function knownHostName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/**
 * Whether a known_hosts host field matches a host and port. The field is a
 * comma-separated list of patterns: hashed names (`|1|salt|hash`), plain names
 * with `*` and `?` wildcards (compared without regard to case), each of them
 * optionally negated with `!`. A matching negated pattern makes the whole field
 * not match.
 */
export function hostMatches(hostsField: string, host: string, port: number): boolean {
  const name = knownHostName(host, port);
  let matched = false;
  for (const raw of hostsField.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === "") continue;
    const hit = pattern.startsWith("|") ? hashedMatches(pattern, name) : globMatches(pattern.toLowerCase(), name);
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}

// `|1|salt|hash`: hash is HMAC-SHA1 of the name, keyed with the salt.
function hashedMatches(pattern: string, name: string): boolean {
  const parts = pattern.split("|");
  if (parts.length !== 4 || parts[1] !== "1") return false;
  const [, , salt, hash] = parts as [string, string, string, string];
  if (!strictBase64.test(salt) || !strictBase64.test(hash) || salt === "") return false;
  const expected = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
  return expected.equals(Buffer.from(hash, "base64"));
}

// `*` matches any run of characters, `?` any one; nothing else is special.
function globMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === "*") {
      starP = p++;
      starT = t;
    } else if (c !== undefined && (c === "?" || c === text[t])) {
      p++;
      t++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

// The leading length-prefixed string of a blob, or undefined if it does not fit.
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > blob.length - 4) return undefined;
  return blob.toString("latin1", 4, 4 + length);
}

/**
 * The key type a host key blob starts with (its leading uint32-length-prefixed
 * string), e.g. `ssh-ed25519`. Throws if the blob is too short to hold it.
 */
export function keyTypeOf(blob: Buffer): string {
  const type = blobType(blob);
  if (type === undefined) {
    throw new Error(`Malformed SSH host key: ${blob.length} bytes do not start with a key type (uint32 length, then the name)`);
  }
  return type;
}

/** The SHA256 fingerprint of a key blob, as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Checks the key a server offered against known_hosts entries. A `@revoked`
 * entry for the host with this key wins; then a plain entry with this exact
 * key makes it trusted; then plain entries with keys of the same type but not
 * this one mean it changed; else it is unknown. `@cert-authority` entries are
 * ignored: host certificates are not supported. Throws if the blob is malformed.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyCheck {
  const type = keyTypeOf(blob);
  const forHost = entries.filter((e) => e.marker !== "cert-authority" && hostMatches(e.hosts, host, port));
  const revoked = forHost.find((e) => e.marker === "revoked" && e.key.equals(blob));
  if (revoked) return { status: "revoked", entry: revoked };
  const plain = forHost.filter((e) => e.marker === undefined);
  const trusted = plain.find((e) => e.key.equals(blob));
  if (trusted) return { status: "trusted", entry: trusted };
  const sameType = plain.filter((e) => e.keyType === type);
  if (sameType.length > 0) return { status: "changed", entries: sameType };
  return { status: "unknown", knownTypes: knownKeyTypes(entries, host, port) };
}

/** The distinct key types of the plain (unmarked) entries for a host, in file order. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const types = new Set<string>();
  for (const e of entries) {
    if (e.marker === undefined && hostMatches(e.hosts, host, port)) types.add(e.keyType);
  }
  return [...types];
}

const algorithmsByType: Readonly<Record<string, readonly string[]>> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  // An RSA key signs with SHA-2 where the server can; ssh-rsa (SHA-1) is the fallback.
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/**
 * The ssh2 `algorithms.serverHostKey` names for known key types, so that the
 * server is asked for a key we can check. Types slurmkit does not verify (DSA,
 * security keys, certificates, anything unknown) are dropped; the result is
 * distinct and in the order of `keyTypes`.
 */
export function hostKeyAlgorithms(keyTypes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const type of keyTypes) {
    if (!Object.hasOwn(algorithmsByType, type)) continue;
    for (const algorithm of algorithmsByType[type]!) out.add(algorithm);
  }
  return [...out];
}

/** Where a host key check happened, for {@link describeHostKeyProblem}. */
export interface HostKeyCheckContext {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  /** The file the user should add the key to. */
  readonly knownHostsFile: string;
  readonly fileExists: boolean;
  /** True when knownHostsFile is not ssh's default (~/.ssh/known_hosts): the ssh command then names it. */
  readonly customFile?: boolean;
  /** The key blob the server offered. */
  readonly blob: Buffer;
}

/**
 * A multi-line message that explains why a host key was refused and how to
 * trust the right key: for an unknown key, the `ssh` command or the line to
 * add; for a changed key, a warning, the expected and offered fingerprints and
 * the `ssh-keygen -R` command; for a revoked key, the entry that revokes it.
 */
export function describeHostKeyProblem(check: Exclude<HostKeyCheck, { status: "trusted" }>, where: HostKeyCheckContext): string {
  const name = knownHostName(where.host, where.port);
  const type = keyTypeOf(where.blob);
  const offered = `The server offered ${article(type)} ${type} key with fingerprint ${fingerprint(where.blob)}`;
  const sshCommand = [
    "ssh",
    ...(where.customFile ? ["-o", `UserKnownHostsFile=${where.knownHostsFile}`] : []),
    ...(where.port === 22 ? [] : ["-p", String(where.port)]),
    `${where.username}@${where.host}`,
  ];
  const trust =
    `trust it by connecting once with \`${sshCommand.map(quoteShell).join(" ")}\` and answering yes, ` +
    `or by adding this line to ${where.knownHostsFile}:\n${name} ${type} ${where.blob.toString("base64")}`;
  switch (check.status) {
    case "unknown": {
      const missing = where.fileExists ? "" : " (the file does not exist)";
      const others = check.knownTypes.length > 0 ? `; the file only has keys of type ${check.knownTypes.join(", ")} for this host.` : ".";
      return [
        `The host key of ${name} is not in ${where.knownHostsFile}${missing}, so slurmkit refuses to connect.`,
        `${offered}${others}`,
        `If that is the cluster's key (compare it with the fingerprint your admins publish), ${trust}`,
      ].join("\n");
    }
    case "changed": {
      const files = [...new Set(check.entries.map((e) => e.file))];
      const remove = files.map((f) => `\`${["ssh-keygen", "-R", name, "-f", f].map(quoteShell).join(" ")}\``).join(" and ");
      return [
        `WARNING: THE HOST KEY OF ${name} HAS CHANGED, so slurmkit refuses to connect.`,
        ...check.entries.map((e) => `${e.file}:${e.line} has ${article(e.keyType)} ${e.keyType} key with fingerprint ${fingerprint(e.key)}.`),
        `${offered}.`,
        "Someone may be intercepting the connection (a man-in-the-middle attack), or the server was reinstalled and has a new key.",
        `Ask the cluster's admins whether its key changed. Once they confirm the new fingerprint, remove the old key with ${remove}, then ${trust}`,
      ].join("\n");
    }
    case "revoked":
      return [
        `The host key of ${name} is revoked by ${check.entry.file}:${check.entry.line}, so slurmkit refuses to connect.`,
        `${offered}.`,
        "A revoked key is never trusted: ask the cluster's admins for the server's current key.",
      ].join("\n");
  }
}

// "an ssh-rsa key", "a dsa key": key types read as letters.
function article(word: string): string {
  return /^[aefhilmnorsx]/i.test(word) ? "an" : "a";
}
