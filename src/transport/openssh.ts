// The system's ssh as a transport (issue 25, in progress on this branch):
// every command rides one multiplexed connection, the user's own
// ControlMaster when their configuration has a live one, else one that this
// transport starts on a private socket and closes with close(). Files are
// not done yet: only run() is.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TransportError } from "../base/errors.js";
import { quotePosix } from "../base/shell.js";
import { parseSshDestination, resolveSshConfig, type OpenSshConfig, type SshDestination } from "./openssh-config.js";
import type { RunOptions, RunResult } from "./transport.js";

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
  readonly stdout: string;
  readonly stderr: string;
}

function exec(program: string, args: readonly string[], input: string | undefined, timeoutMs: number | undefined): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { encoding: "utf8", maxBuffer: 1 << 30, ...(timeoutMs ? { timeout: timeoutMs } : {}) }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(error);
      resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/**
 * Runs commands on a login node through the system's ssh, with the user's
 * own configuration: aliases, ProxyJump, ControlMaster, certificates,
 * Kerberos. Host keys are OpenSSH's to check; nothing here turns that off.
 */
export class OpenSshTransport {
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
      child.on("exit", (code) => resolve({ code: code ?? 255, stdout: "", stderr }));
    });
    if (opened.code !== 0) {
      const why = opened.stderr.trim() || `ssh exited with ${opened.code}`;
      const hint = interactive ? "" : `; nothing can answer a prompt here (no terminal): open the connection first, e.g. \`ssh -fN ${dest}\` with ControlMaster and ControlPersist in ~/.ssh/config`;
      throw new TransportError("connect", dest, `the system's ssh could not connect: ${why}${hint}`);
    }
    return ["-S", this.#ownSocket, "-o", "ControlMaster=no"];
  }

  /** Runs `program` with `args` on the login node, each argument intact (quoted for its shell). */
  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const connection = await this.#connection();
    const command = [program, ...args].map(quotePosix).join(" ");
    const r = await exec(this.#ssh, [...this.#base, ...connection, "-o", "BatchMode=yes", "--", this.#destination.destination, command], options.input, options.timeoutMs);
    // 255: ssh itself failed (the connection), not the command.
    if (r.code === 255) {
      this.#master = undefined;
      throw new TransportError("exec", this.#destination.destination, `the connection failed: ${r.stderr.trim()}`, { unreachable: true });
    }
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.code };
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
