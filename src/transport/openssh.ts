// The system's ssh as a transport (issue 25, in progress on this branch):
// every command rides one multiplexed connection, the user's own
// ControlMaster when their configuration has a live one, else one that this
// transport starts on a private socket and closes with close(). Files move
// as commands on the same connection (cat, mv, sync), so no second channel
// or subsystem is needed.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TransportError } from "../base/errors.js";
import { quotePosix } from "../base/shell.js";
import { parseSshDestination, resolveSshConfig, type OpenSshConfig, type SshDestination } from "./openssh-config.js";
import type { RunOptions, RunResult, Transport } from "./transport.js";

/** Options of OpenSshTransport. */
export interface OpenSshOptions {
  /** An ssh_config to read instead of ~/.ssh/config (`ssh -F`). */
  readonly configFile?: string;
  /** The ssh program. @default "ssh" */
  readonly ssh?: string;
  /** Whether ssh may prompt (MFA, a passphrase) on this terminal. @default whether stdin is a terminal */
  readonly interactive?: boolean;
  /** Where the transport says what it does (a connection opened, a reconnect). @default stderr */
  readonly log?: (line: string) => void;
}

interface Exited {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** A command killed by `timeout -s KILL` exits with 128 + 9. */
const KILLED = 137;

function exec(program: string, args: readonly string[], input: string | Uint8Array | undefined, timeoutMs: number | undefined): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { encoding: "buffer", maxBuffer: 1 << 30, ...(timeoutMs ? { timeout: timeoutMs } : {}) }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr: stderr.toString() });
    });
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input ?? undefined);
  });
}

/**
 * Runs commands on a login node through the system's ssh, with the user's
 * own configuration: aliases, ProxyJump, ControlMaster, certificates,
 * Kerberos. Host keys are OpenSSH's to check; nothing here turns that off.
 */
export class OpenSshTransport implements Transport {
  readonly key: string;
  readonly #destination: SshDestination;
  readonly #options: OpenSshOptions;
  #config: Promise<OpenSshConfig> | undefined;
  /** The socket of the connection this transport started, when it started one. */
  #ownSocket: string | undefined;
  #master: Promise<string[]> | undefined;

  constructor(destination: string, options: OpenSshOptions = {}) {
    this.#destination = parseSshDestination(destination);
    this.#options = options;
    this.key = `openssh:${this.#destination.destination}${this.#destination.port !== undefined ? `:${this.#destination.port}` : ""}`;
  }

  get #ssh(): string {
    return this.#options.ssh ?? "ssh";
  }

  /** ssh's options common to every call: the config file and the port. */
  get #base(): string[] {
    return [...(this.#options.configFile ? ["-F", this.#options.configFile] : []), ...(this.#destination.port !== undefined ? ["-p", String(this.#destination.port)] : [])];
  }

  #log(line: string): void {
    (this.#options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  /** The options that make a call ride the connection: the user's live master, or one this transport starts. */
  #connection(): Promise<string[]> {
    this.#master ??= this.#open().catch((error: unknown) => {
      this.#master = undefined;
      throw error;
    });
    return this.#master;
  }

  async #open(): Promise<string[]> {
    this.#config ??= resolveSshConfig(this.#destination, { ...(this.#options.configFile ? { configFile: this.#options.configFile } : {}), ssh: this.#ssh });
    const config = await this.#config;
    const dest = this.#destination.destination;
    // The user's own ControlMaster, when it is up: every call rides it, and no one is asked anything.
    if (config.controlPath !== undefined && config.controlMaster !== "no") {
      const check = await exec(this.#ssh, [...this.#base, "-S", config.controlPath, "-O", "check", "--", dest], undefined, 10_000);
      if (check.code === 0) return ["-S", config.controlPath, "-o", "ControlMaster=no"];
    }
    const interactive = this.#options.interactive ?? process.stdin.isTTY === true;
    this.#ownSocket ??= join(mkdtempSync(join(tmpdir(), "slurmkit-ssh-")), "master");
    const args = [...this.#base, "-M", "-S", this.#ownSocket, "-o", "ControlPersist=yes", "-o", `BatchMode=${interactive ? "no" : "yes"}`, "-fN", "--", dest];
    this.#log(`slurmkit: connecting to ${dest} (${config.user}@${config.hostname}:${config.port})${interactive ? "; answer any prompt on this terminal" : ""}`);
    const opened = await new Promise<Exited>((resolve, reject) => {
      // With a terminal, ssh asks on it (MFA, a passphrase); -f puts the master in the background once it is up.
      const child = spawn(this.#ssh, args, { stdio: interactive ? "inherit" : ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("exit", (code) => resolve({ code: code ?? 255, stdout: Buffer.alloc(0), stderr }));
    });
    if (opened.code !== 0) {
      const why = opened.stderr.trim() || `ssh exited with ${opened.code}`;
      const hint = interactive ? "" : `; nothing can answer a prompt here (no terminal): open the connection first, e.g. \`ssh -fN ${dest}\` with ControlMaster and ControlPersist in ~/.ssh/config`;
      throw new TransportError("connect", dest, `the system's ssh could not connect: ${why}${hint}`);
    }
    return ["-S", this.#ownSocket, "-o", "ControlMaster=no"];
  }

  /** Runs a command line on the login node; ssh's own failure (exit 255) is an unreachable TransportError. */
  async #exec(argv: readonly string[], input: string | Uint8Array | undefined, timeoutMs?: number): Promise<Exited> {
    const connection = await this.#connection();
    const command = argv.map(quotePosix).join(" ");
    // The server kills a command that outlives its timeout (closing the channel would not); ssh gets a margin over it.
    // `; exit $?`: the login shell must not exec timeout, which kills its own process group, or ssh would see a signal (255), not 137.
    const remote = timeoutMs === undefined ? command : `timeout -s KILL ${Math.max(1, timeoutMs) / 1000} ${command}; exit $?`;
    const r = await exec(
      this.#ssh,
      [...this.#base, ...connection, "-o", "BatchMode=yes", "--", this.#destination.destination, remote],
      input,
      timeoutMs === undefined ? undefined : timeoutMs + 30_000,
    );
    if (r.code === 255) {
      this.#master = undefined;
      throw new TransportError("exec", this.#destination.destination, `the connection failed: ${r.stderr.trim()}`, { unreachable: true });
    }
    return r;
  }

  /** Runs `program` with `args` on the login node, each argument intact (quoted for its shell). */
  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const started = Date.now();
    const r = await this.#exec([program, ...args], options.input, options.timeoutMs);
    if (options.timeoutMs !== undefined && r.code === KILLED && Date.now() - started >= options.timeoutMs) {
      throw new TransportError("exec", this.#destination.destination, `${program} timed out after ${options.timeoutMs} ms and was killed`);
    }
    return { stdout: r.stdout.toString().replace(/\n$/, ""), stderr: r.stderr.replace(/\n$/, ""), exitCode: r.code };
  }

  /** A failed file command as a TransportError, with ENOENT or EEXIST when its stderr says so. */
  #fileError(what: string, path: string, r: Exited): TransportError {
    const code = /No such file or directory|Directory nonexistent/.test(r.stderr)
      ? "ENOENT"
      : /File exists|Not a directory/.test(r.stderr)
        ? /Not a directory/.test(r.stderr)
          ? "ENOTDIR"
          : "EEXIST"
        : undefined;
    return new TransportError("exec", this.#destination.destination, `${what} ${path}: ${r.stderr.trim() || `exit code ${r.code}`}`, code ? { code } : {});
  }

  /** Reads a file; a missing one rejects with code ENOENT. */
  async readFile(path: string): Promise<Buffer> {
    const r = await this.#exec(["cat", "--", path], undefined);
    if (r.code !== 0) throw this.#fileError("read", path, r);
    return r.stdout;
  }

  /** Writes a file atomically: a temporary name beside it, flushed, renamed, and its folder flushed. */
  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const script = 'set -e; t="$1.slurmkit-tmp.$$"; cat > "$t" || { rm -f -- "$t"; exit 1; }; sync -- "$t"; mv -f -- "$t" "$1"; sync -- "$(dirname -- "$1")" 2>/dev/null || true';
    const r = await this.#exec(["sh", "-c", script, "sh", path], data);
    if (r.code !== 0) throw this.#fileError("write", path, r);
  }

  /** Creates a file that must not exist yet (the shell's noclobber: O_CREAT | O_EXCL); true if this call created it. */
  async createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
    // The empty file is the claim; its content follows (>| past noclobber). Exit 3: it existed. Otherwise the second try says why it failed.
    const script = 'set -C; if (: > "$1") 2>/dev/null; then cat >| "$1"; sync -- "$1"; exit 0; fi; [ -e "$1" ] && exit 3; : > "$1"';
    const r = await this.#exec(["sh", "-c", script, "sh", path], data);
    if (r.code === 3) return false;
    if (r.code !== 0) throw this.#fileError("create", path, r);
    return true;
  }

  /** Lists a folder's entry names; [] if it does not exist. */
  async list(path: string): Promise<string[]> {
    const r = await this.#exec(["find", path, "-mindepth", "1", "-maxdepth", "1", "-printf", "%f\\0"], undefined);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return [];
      throw this.#fileError("list", path, r);
    }
    return r.stdout
      .toString()
      .split("\0")
      .filter((n) => n !== "");
  }

  /** Makes a folder and its parents. */
  async mkdir(path: string): Promise<void> {
    const r = await this.#exec(["mkdir", "-p", "--", path], undefined);
    if (r.code !== 0) throw this.#fileError("mkdir", path, r);
  }

  /** Closes the connection this transport started (the user's own stays up). */
  close(): void {
    const socket = this.#ownSocket;
    this.#master = undefined;
    this.#ownSocket = undefined;
    if (!socket) return;
    spawn(this.#ssh, [...this.#base, "-S", socket, "-O", "exit", "--", this.#destination.destination], { stdio: "ignore" }).on("exit", () =>
      rmSync(join(socket, ".."), { recursive: true, force: true }),
    );
  }
}
