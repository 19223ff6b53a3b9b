// The system's ssh as a transport: every command rides one multiplexed connection, the user's own
// ControlMaster when their configuration has a live one, else one that this
// transport starts on a private socket and closes with close(). Files move
// as commands on the same connection (cat, mv, sync), so no second channel
// or subsystem is needed.
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TransportError } from "../base/errors.js";
import { quotePosix } from "../base/shell.js";
import { parseSshDestination, resolveSshConfig, type OpenSshConfig, type SshDestination } from "./openssh-config.js";
import { BATCH_READ_SCRIPT, parseBatchRead, ReadBatcher, type BatchedRead } from "./read-batch.js";
import type { RunOptions, RunResult, Transport } from "./transport.js";

/** Options of OpenSshTransport. */
export interface OpenSshOptions {
  /** An ssh_config to read instead of ~/.ssh/config (`ssh -F`). */
  readonly configFile?: string;
  /** The ssh program. @default "ssh" */
  readonly ssh?: string;
  /** Whether ssh may prompt (MFA, a passphrase): on this terminal, or through SSH_ASKPASS. @default whether stdin is a terminal, or SSH_ASKPASS_REQUIRE=force */
  readonly interactive?: boolean;
  /** Where the transport says what it does (a connection opened, a reconnect). @default stderr */
  readonly log?: (line: string) => void;
}

interface Exited {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** ssh itself was killed (its timeout passed) or died of a signal. */
  readonly killed?: boolean;
}

/** A command killed by `timeout -s KILL` exits with 128 + 9. */
const KILLED = 137;

/** Numbers transports, so that two of them to one destination never share a watcher (their configs may differ). */
let transports = 0;

/** Printed before a command's output, so that whatever a login shell's rc file prints first is dropped. */
const BEGIN = "SLURMKIT-OUTPUT-BEGINS";

/** Sessions at once on the connection: sshd refuses more than MaxSessions (10 by default), and the user's own sessions may share it. */
const SESSIONS = 8;

/** How long the connection this transport starts stays up idle after its last use, if close() is never called. */
const PERSIST = "10m";

/** Connections started here and not closed yet: the process's end closes them (ControlPersist would keep them up). */
const started = new Map<string, readonly string[]>();
let exitHook = false;
function closeAtExit(socket: string, exitArgs: readonly string[]): void {
  started.set(socket, exitArgs);
  if (exitHook) return;
  exitHook = true;
  process.once("exit", () => {
    for (const [socket, args] of started) {
      spawnSync(args[0]!, args.slice(1), { stdio: "ignore", timeout: 5000 });
      rmSync(join(socket, ".."), { recursive: true, force: true });
    }
  });
}

/** The output after BEGIN: what a login shell's rc files print first is dropped. */
function withoutPreamble(r: Exited): Exited {
  const marker = Buffer.from(`${BEGIN}\n`);
  const at = r.stdout.indexOf(marker);
  return at < 0 ? r : { ...r, stdout: r.stdout.subarray(at + marker.length) };
}

/** What to do about a failed connection, after ssh's own words. */
function connectHint(why: string, dest: string, interactive: boolean): string {
  if (/Host key verification failed|No \S+ host key is known|host key for .* has changed/i.test(why)) {
    return `; OpenSSH does not trust this host's key. Run \`ssh ${dest}\` once in a terminal, compare the fingerprint it shows with the one your site publishes, and answer yes (or add the key to known_hosts)`;
  }
  if (!interactive && /Permission denied|passphrase|password|keyboard-interactive|Authentication failed/i.test(why)) {
    return `; nothing can answer a prompt here (no terminal): open the connection first in a terminal, with \`slurmkit connect ${dest}\` (or \`ssh -fN ${dest}\` with ControlMaster and ControlPersist in ~/.ssh/config), then run this again`;
  }
  return "";
}

function exec(program: string, args: readonly string[], input: string | Uint8Array | undefined, timeoutMs: number | undefined): Promise<Exited> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { encoding: "buffer", maxBuffer: 1 << 30, ...(timeoutMs ? { timeout: timeoutMs } : {}) }, (error, stdout, stderr) => {
      if (error && typeof error.code === "string") return reject(error); // ssh could not start (ENOENT)
      if (error && typeof error.code !== "number") return resolve({ code: -1, stdout, stderr: stderr.toString(), killed: true });
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
  /** The destination and port as given. */
  readonly #where: string;
  /** How the login node was named: the alias or `user@host[:port]`. */
  get destination(): string {
    return this.#where;
  }
  #config: Promise<OpenSshConfig> | undefined;
  /** The socket of the connection this transport started, when it started one. */
  #ownSocket: string | undefined;
  #master: Promise<string[]> | undefined;
  /** Connections this transport has opened (the first, then reconnects). */
  #opened = 0;
  /** Sessions running, and the calls waiting for one. */
  #sessions = 0;
  readonly #waiting: (() => void)[] = [];
  /** Reads asked for at the same moment go in one command. */
  readonly #reads = new ReadBatcher(
    (path) => this.#readOne(path),
    (paths) => this.#readMany(paths),
    (path, error) => this.#fileError("read", path, { code: 1, stdout: Buffer.alloc(0), stderr: error }),
  );

  constructor(destination: string, options: OpenSshOptions = {}) {
    checkOptions("OpenSshTransport options", options, {
      configFile: accepts.string,
      ssh: accepts.string,
      interactive: accepts.boolean,
      log: accepts.function,
    } satisfies OptionShape<OpenSshOptions>);
    this.#destination = parseSshDestination(destination);
    this.#options = options;
    this.#where = `${this.#destination.destination}${this.#destination.port !== undefined ? `:${this.#destination.port}` : ""}`;
    this.key = `openssh:${this.#where}#${++transports}`;
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
    if (this.#master) return this.#master;
    const opening: Promise<string[]> = this.#open().catch((error: unknown) => {
      if (this.#master === opening) this.#master = undefined;
      throw error;
    });
    this.#master = opening;
    return opening;
  }

  /** The connection `used` failed: the next call opens a new one (once, however many calls saw it fail). */
  #dropped(used: Promise<string[]>): void {
    if (this.#master === used) this.#master = undefined;
  }

  /** True when a connection listens on `socket`. */
  async #live(socket: string): Promise<boolean> {
    return (await exec(this.#ssh, [...this.#base, "-S", socket, "-O", "check", "--", this.#destination.destination], undefined, 10_000)).code === 0;
  }

  async #open(): Promise<string[]> {
    this.#config ??= resolveSshConfig(this.#destination, { ...(this.#options.configFile ? { configFile: this.#options.configFile } : {}), ssh: this.#ssh }).catch((error: unknown) => {
      this.#config = undefined;
      throw new TransportError("connect", this.#destination.destination, `ssh -G could not read the configuration: ${(error as Error).message}`, { cause: error });
    });
    const config = await this.#config;
    const dest = this.#destination.destination;
    // A connection already up, so no one is asked anything: the user's own ControlMaster, or one `slurmkit connect` opened.
    for (const socket of [config.controlMaster !== "no" ? config.controlPath : undefined, this.sharedSocket]) {
      if (socket !== undefined && (await this.#live(socket))) return ["-S", socket, "-o", "ControlMaster=no"];
    }
    const interactive = this.#options.interactive ?? (process.stdin.isTTY === true || process.env.SSH_ASKPASS_REQUIRE === "force");
    // A new socket for each connection: a master that died may have left its socket behind.
    if (this.#ownSocket) {
      started.delete(this.#ownSocket);
      rmSync(join(this.#ownSocket, ".."), { recursive: true, force: true });
    }
    const socket = join(mkdtempSync(join(tmpdir(), "slurmkit-ssh-")), "master");
    this.#ownSocket = socket;
    // ControlPersist: the master outlives a process that never called close() by at most this idle time.
    // ServerAlive: a connection that stopped answering (a laptop that slept) is dropped within 45 s, not when TCP gives up.
    const args = [
      ...this.#base,
      ...["-M", "-S", socket, "-o", `ControlPersist=${PERSIST}`, "-o", `BatchMode=${interactive ? "no" : "yes"}`],
      ...["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "ConnectTimeout=30", "-fN", "--", dest],
    ];
    const again = this.#opened++ > 0 ? "the connection dropped; reconnecting" : "connecting";
    this.#log(`slurmkit: ${again} to ${dest} (${config.user}@${config.hostname}:${config.port})${interactive ? "; answer any prompt on this terminal" : ""}`);
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
      throw new TransportError("connect", dest, `the system's ssh could not connect: ${why}${connectHint(why, dest, interactive)}`);
    }
    closeAtExit(socket, this.#exitArgs(socket));
    return ["-S", socket, "-o", "ControlMaster=no"];
  }

  /** The command that stops the connection on `socket`. */
  #exitArgs(socket: string): string[] {
    return [this.#ssh, ...this.#base, "-S", socket, "-O", "exit", "--", this.#destination.destination];
  }

  /** Where `slurmkit connect` keeps this destination's connection, for every later process on this machine. */
  get sharedSocket(): string {
    const id = createHash("sha256")
      .update(`${this.#options.configFile ? resolve(this.#options.configFile) : ""}\0${this.#where}`)
      .digest("hex")
      .slice(0, 16);
    return join(process.env.SLURMKIT_SSH_DIR ?? join(homedir(), ".slurmkit", "ssh"), id);
  }

  /**
   * Opens a connection that later processes on this machine use (`slurmkit
   * connect`): prompts on this terminal, then stays up until `persist` of idle
   * time has passed or disconnect() closes it. Resolves to whether it was already up.
   */
  async connect(persist = "12h"): Promise<boolean> {
    const socket = this.sharedSocket;
    if (await this.#live(socket)) return true;
    mkdirSync(join(socket, ".."), { recursive: true, mode: 0o700 });
    const dest = this.#destination.destination;
    await new Promise<void>((resolve, reject) => {
      const child = spawn(this.#ssh, [...this.#base, "-M", "-S", socket, "-o", `ControlPersist=${persist}`, "-fN", "--", dest], { stdio: ["inherit", "inherit", "pipe"] });
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
        process.stderr.write(d);
      });
      child.on("error", reject);
      child.on("exit", (code) =>
        code === 0 ? resolve() : reject(new TransportError("connect", dest, `the system's ssh could not connect: ${stderr.trim() || `exit ${code}`}${connectHint(stderr, dest, true)}`)),
      );
    });
    return false;
  }

  /** Closes the connection `connect()` opened; false if none was up. */
  async disconnect(): Promise<boolean> {
    const socket = this.sharedSocket;
    if (!(await this.#live(socket))) return false;
    await exec(this.#ssh, [...this.#base, "-S", socket, "-O", "exit", "--", this.#destination.destination], undefined, 10_000);
    return true;
  }

  /** Runs a command line on the login node; ssh's own failure (exit 255) is an unreachable TransportError. */
  async #exec(argv: readonly string[], input: string | Uint8Array | undefined, timeoutMs?: number, own = false): Promise<Exited> {
    const used = this.#connection();
    const connection = await used;
    // Our own file commands run in the C locale, so that their error messages read the same on every server.
    const command = [...(own ? ["env", "LC_ALL=C"] : []), ...argv].map(quotePosix).join(" ");
    // The server kills a command that outlives its timeout (closing the channel would not); ssh gets a margin over it.
    // `; exit $?`: the login shell must not exec timeout, which kills its own process group, or ssh would see a signal (255), not 137.
    const body = timeoutMs === undefined ? command : `timeout -s KILL ${Math.max(1, timeoutMs) / 1000} ${command}; exit $?`;
    const remote = `printf '%s\\n' ${BEGIN}; ${body}`;
    // ProxyCommand=false: if the connection is gone, ssh must fail (255) rather than log in anew on its own, with a prompt nobody sees.
    const args = [...this.#base, ...connection, "-o", "BatchMode=yes", "-o", "ProxyCommand=false", "--", this.#destination.destination, remote];
    // A session ending hands its slot to the next waiting call.
    if (this.#sessions < SESSIONS) this.#sessions++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    let r: Exited;
    try {
      r = await exec(this.#ssh, args, input, timeoutMs === undefined ? undefined : timeoutMs + 30_000);
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#sessions--;
    }
    if (r.code === 255 || r.killed) {
      // 255 is also a command's own exit code: the connection failed only if its master is gone.
      const socket = connection[connection.indexOf("-S") + 1]!;
      const alive = await this.#live(socket);
      if (alive && !r.killed) return withoutPreamble(r);
      if (!alive) this.#dropped(used);
      const why = r.killed ? "ssh got no answer in time and was stopped" : r.stderr.trim();
      throw new TransportError("exec", this.#destination.destination, `the connection failed: ${why}`, { unreachable: true });
    }
    return withoutPreamble(r);
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
  readFile(path: string): Promise<Buffer> {
    return this.#reads.read(path);
  }

  async #readOne(path: string): Promise<Buffer> {
    const r = await this.#exec(["cat", "--", path], undefined, undefined, true);
    if (r.code !== 0) throw this.#fileError("read", path, r);
    return r.stdout;
  }

  /** Several files in one command (read-batch.ts). */
  async #readMany(paths: readonly string[]): Promise<BatchedRead[]> {
    const r = await this.#exec(["sh", "-c", BATCH_READ_SCRIPT], `${paths.join("\n")}\n`, undefined, true);
    if (r.code !== 0) throw new TransportError("exec", this.#destination.destination, `reading ${paths.length} files: ${r.stderr.trim() || `exit code ${r.code}`}`);
    try {
      return parseBatchRead(r.stdout, paths.length);
    } catch (error) {
      throw new TransportError("exec", this.#destination.destination, (error as Error).message);
    }
  }

  /** Reads a file from byte `offset` on (`tail -c +N`, POSIX); a missing one rejects with code ENOENT. */
  async readFrom(path: string, offset: number): Promise<Buffer> {
    const r = await this.#exec(["tail", "-c", `+${Math.max(0, Math.floor(offset)) + 1}`, "--", path], undefined, undefined, true);
    if (r.code !== 0) throw this.#fileError("read", path, r);
    return r.stdout;
  }

  /** Writes a file atomically: a temporary name beside it, flushed, renamed, and its folder flushed. */
  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    // dd conv=fsync flushes the file (sync FILE needs coreutils 8.24); the folder is flushed where sync takes a file.
    const script = [
      't="$1.slurmkit-tmp.$$"',
      'dd of="$t" bs=65536 conv=fsync status=none || { rm -f -- "$t"; exit 1; }',
      'mv -f -- "$t" "$1" || { rm -f -- "$t"; exit 1; }',
      'case $(sync --help 2>&1) in *FILE*) sync -- "$(dirname -- "$1")" 2>/dev/null ;; esac',
      "exit 0",
    ].join("\n");
    const r = await this.#exec(["sh", "-c", script, "sh", path], data, undefined, true);
    if (r.code !== 0) throw this.#fileError("write", path, r);
  }

  /** Creates a file that must not exist yet (the shell's noclobber: O_CREAT | O_EXCL); true if this call created it. */
  async createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
    // The empty file is the claim; its content follows. Exit 3: it existed. Otherwise say why it could not be made.
    const script = [
      "set -C",
      'if (: > "$1") 2>/dev/null; then dd of="$1" bs=65536 conv=fsync status=none || exit 1; exit 0; fi',
      '[ -e "$1" ] && exit 3',
      'd=$(dirname -- "$1")',
      '[ -d "$d" ] || { printf \'%s: No such file or directory\\n\' "$d" >&2; exit 1; }',
      "printf '%s: Permission denied\\n' \"$1\" >&2",
      "exit 1",
    ].join("\n");
    const r = await this.#exec(["sh", "-c", script, "sh", path], data, undefined, true);
    if (r.code === 3) return false;
    if (r.code !== 0) throw this.#fileError("create", path, r);
    return true;
  }

  /** Lists a folder's entry names; [] if it does not exist. */
  async list(path: string): Promise<string[]> {
    // POSIX sh, not GNU find: cd follows a folder that is a symlink (~/runs to /scratch/...), as readdir does.
    const script = [
      '[ -e "$1" ] || { printf \'%s: No such file or directory\\n\' "$1" >&2; exit 1; }',
      'cd -- "$1" || exit 1',
      'for f in * .[!.]* ..?*; do if [ -e "$f" ] || [ -L "$f" ]; then printf \'%s\\0\' "$f"; fi; done',
    ].join("\n");
    const r = await this.#exec(["sh", "-c", script, "sh", path], undefined, undefined, true);
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
    const r = await this.#exec(["mkdir", "-p", "--", path], undefined, undefined, true);
    if (r.code !== 0) throw this.#fileError("mkdir", path, r);
  }

  /** Closes the connection this transport started (the user's own stays up). */
  close(): void {
    const socket = this.#ownSocket;
    this.#master = undefined;
    this.#ownSocket = undefined;
    if (!socket) return;
    started.delete(socket);
    const [program, ...args] = this.#exitArgs(socket);
    spawn(program!, args, { stdio: "ignore" }).on("exit", () => rmSync(join(socket, ".."), { recursive: true, force: true }));
  }
}
