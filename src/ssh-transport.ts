import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { connect as netConnect, type Socket } from "node:net";
import { homedir } from "node:os";
import { posix } from "node:path";
import { Client, type ConnectConfig, type FileEntryWithStats, type SFTPWrapper, type Stats } from "ssh2";
import { ParameterError } from "./errors.js";
import { checkHostKey, describeHostKeyProblem, hostKeyAlgorithms, knownHostName, knownKeyTypes, parseKnownHosts, type KnownHostEntry } from "./known-hosts.js";
import { quotePosix } from "./shell.js";
import { isUnreachable, TransportError, type RunOptions, type RunResult, type SshStage, type Transport } from "./transport.js";

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

interface Connection {
  readonly client: Client;
  readonly sftp: SFTPWrapper;
  readonly socket: Socket;
  closed: boolean;
  /** When the server last sent anything (ms since epoch). */
  lastData: number;
}

/** sftp status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
/** ssh2's messages when the connection or channel went away under a call. */
const LOST = /No response from server|Not connected|Channel closed|ECONNRESET|EPIPE/i;
/** OpenSSH allows 10 sessions per connection; one is the sftp channel. */
const MAX_EXEC_CHANNELS = 8;
/** A command killed by `timeout -s KILL` exits with 128 + 9 (or `timeout` itself dies by the signal). */
const KILLED = 137;
let transports = 0;

/**
 * Runs commands and moves files on a cluster's login node over one SSH
 * connection (ssh2): commands through exec channels, quoted argument by
 * argument for a POSIX login shell; files through one sftp channel. The host
 * key must be in known_hosts. A dropped connection is reopened with backoff
 * by the next operation. An idle connection does not keep the process alive.
 *
 * @example
 * const transport = new SshTransport({ host: "login.cluster.org", username: "alice", privateKey: "/home/alice/.ssh/id_ed25519" });
 * const { stdout } = await transport.run("squeue", ["--me"]);
 * transport.close();
 */
export class SshTransport implements Transport {
  readonly key: string;
  /** `user@host:port`, for messages. */
  readonly destination: string;
  readonly #options: Required<Pick<SshOptions, "host" | "port" | "username" | "keepaliveMs" | "reconnectMs" | "connectTimeoutMs" | "log">> & SshOptions;
  readonly #knownHosts: string;
  #current: Promise<Connection> | undefined;
  /** The open connection, for the keepalive. */
  #live: Connection | undefined;
  #everConnected = false;
  /** Aborted by close(): stops reconnecting and drops connections that open late. */
  #lifetime = new AbortController();
  #busy = 0;
  #execs = 0;
  readonly #execQueue: Array<() => void> = [];
  #keepalive: NodeJS.Timeout | undefined;

  constructor(options: SshOptions) {
    const problems = validateSshOptions(options);
    if (problems.length) throw new ParameterError("ssh options", problems);
    const port = options.port ?? 22;
    this.#options = {
      keepaliveMs: 15_000,
      reconnectMs: 600_000,
      connectTimeoutMs: 20_000,
      log: (line: string) => process.stderr.write(`slurmkit: ${line}\n`),
      ...options,
      port,
    };
    this.#knownHosts = options.knownHosts ?? posix.join(homedir(), ".ssh", "known_hosts");
    this.destination = `${options.username}@${options.host}:${port}`;
    this.key = `ssh://${this.destination}#${++transports}`;
  }

  /** Opens the connection now (it opens on first use otherwise); rejects with the stage that failed. */
  async connect(): Promise<void> {
    await this.#use(async () => undefined);
  }

  /** Closes the connection and stops any reconnect in progress; a later operation opens a new connection. */
  close(): void {
    this.#lifetime.abort();
    this.#lifetime = new AbortController();
    const current = this.#current;
    this.#current = undefined;
    this.#live = undefined;
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    void current?.then((c) => this.#drop(c), () => undefined);
  }

  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const argv = [program, ...args];
    // The server kills a command that outlives its timeout: closing the channel would not.
    if (options.timeoutMs !== undefined) argv.unshift("timeout", "-s", "KILL", `${Math.max(1, options.timeoutMs) / 1000}`);
    const command = argv.map(quotePosix).join(" ");
    await this.#execSlot();
    try {
      return await this.#use((c) => this.#exec(c, program, command, options));
    } finally {
      const next = this.#execQueue.shift();
      if (next) next(); // the slot passes on as it is
      else this.#execs--;
    }
  }

  readFile(path: string): Promise<Buffer> {
    return this.#sftp<Buffer>("read", path, (sftp, done) => sftp.readFile(path, done));
  }

  /** Writes to a temporary name, then renames over `path` (OpenSSH's posix-rename), so readers see the old file or the new one. */
  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      await this.#sftp("write", path, (sftp, done) => sftp.writeFile(temporary, bytes, done));
    } catch (error) {
      await this.#sftp("remove", temporary, (sftp, done) => sftp.unlink(temporary, done), { retry: false }).catch(() => undefined);
      throw error;
    }
    const rename = () =>
      this.#sftp(
        "rename",
        path,
        (sftp, done) => {
          try {
            sftp.ext_openssh_rename(temporary, path, done);
          } catch {
            // Not OpenSSH: plain sftp rename will not replace a file, so move the old one out of the way first.
            sftp.rename(temporary, path, (error) => (error ? sftp.unlink(path, () => sftp.rename(temporary, path, done)) : done(undefined)));
          }
        },
        { retry: false },
      );
    try {
      await rename();
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      // The connection dropped: did the rename happen before it did?
      if (await this.#stat(temporary)) await rename();
      else if (!(await this.#stat(path))) throw error;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      const entries = await this.#sftp<FileEntryWithStats[]>("list", path, (sftp, done) => sftp.readdir(path, done));
      return entries.map((e) => e.filename).filter((n) => n !== "." && n !== "..");
    } catch (error) {
      if ((error as TransportError).code === "ENOENT") return [];
      throw error;
    }
  }

  async mkdir(path: string): Promise<void> {
    const mkdirOnce = () => this.#sftp<true>("mkdir", path, (sftp, done) => sftp.mkdir(path, (e) => done(e ?? undefined, true)));
    const isDir = async () => (await this.#stat(path))?.isDirectory();
    const made = await mkdirOnce().catch((e: unknown) => e as TransportError);
    if (made === true) return;
    if (made.unreachable) throw made;
    const existing = await isDir();
    if (existing === true) return;
    if (existing === false) throw new TransportError("sftp", this.destination, `cannot make folder ${path}: a file is in the way`, { code: "EEXIST" });
    const parent = posix.dirname(path);
    if (parent === path) throw made;
    await this.mkdir(parent);
    await mkdirOnce().catch(async (e: unknown) => {
      if ((await isDir()) !== true) throw e; // unless made meanwhile by someone else
    });
  }

  /** A file's stats; undefined when it does not exist. */
  #stat(path: string): Promise<Stats | undefined> {
    return this.#sftp<Stats>("stat", path, (sftp, done) => sftp.stat(path, done)).catch((e: TransportError) => {
      if (e.code === "ENOENT") return undefined;
      throw e;
    });
  }

  /** Waits for one of the exec channels OpenSSH allows per connection. */
  async #execSlot(): Promise<void> {
    if (this.#execs < MAX_EXEC_CHANNELS) {
      this.#execs++;
      return;
    }
    await new Promise<void>((resolve) => this.#execQueue.push(resolve));
  }

  /** One sftp call. With `retry` (idempotent calls), a dropped connection is reopened and the call made once more. */
  async #sftp<T>(
    what: string,
    path: string,
    call: (sftp: SFTPWrapper, done: (error: Error | undefined | null, value?: T) => void) => void,
    { retry = true } = {},
  ): Promise<T> {
    const attempt = () =>
      this.#use(
        (c) =>
          new Promise<T>((resolve, reject) => {
            const done = (error: Error | undefined | null, value?: T) => {
              if (!error) return resolve(value as T);
              const code = (error as { code?: unknown }).code;
              if (c.closed || LOST.test(error.message)) {
                reject(new TransportError("sftp", this.destination, `connection lost during ${what} ${path}`, { unreachable: true, cause: error }));
              } else if (code === SFTP_NO_SUCH_FILE) {
                reject(new TransportError("sftp", this.destination, `${what} ${path}: no such file or folder`, { code: "ENOENT", cause: error }));
              } else {
                reject(new TransportError("sftp", this.destination, `${what} ${path}: ${error.message}`, { cause: error }));
              }
            };
            try {
              call(c.sftp, done);
            } catch (error) {
              done(error as Error);
            }
          }),
      );
    try {
      return await attempt();
    } catch (error) {
      if (retry && error instanceof TransportError && error.stage === "sftp" && error.unreachable) return attempt();
      throw error;
    }
  }

  #exec(c: Connection, program: string, command: string, options: RunOptions): Promise<RunResult> {
    const started = Date.now();
    return new Promise<RunResult>((resolve, reject) => {
      const cannotStart = (error: Error) =>
        reject(new TransportError("exec", this.destination, `cannot start ${program}: ${error.message}`, { unreachable: c.closed || LOST.test(error.message), cause: error }));
      try {
        c.client.exec(command, (error, stream) => {
          if (error) {
            cannotStart(error);
            return;
          }
          const stdout: Buffer[] = [];
          const stderr: Buffer[] = [];
          let exitCode: number | undefined;
          let signal: string | undefined;
          let eof = false;
          stream.on("data", (b: Buffer) => stdout.push(b));
          stream.stderr.on("data", (b: Buffer) => stderr.push(b));
          stream.on("end", () => (eof = true));
          stream.on("exit", (code: number | null, sig?: string) => {
            if (typeof code === "number") exitCode = code;
            if (sig) signal = sig;
          });
          stream.on("close", () => {
            const out = { stdout: Buffer.concat(stdout).toString().replace(/\n$/, ""), stderr: Buffer.concat(stderr).toString().replace(/\n$/, "") };
            const ended = exitCode !== undefined || signal !== undefined;
            if (!ended || (c.closed && !eof)) {
              reject(new TransportError("exec", this.destination, `connection lost while ${program} ran; it may or may not have finished`, { unreachable: true }));
            } else if (options.timeoutMs !== undefined && (exitCode === KILLED || signal === "KILL" || signal === "SIGKILL") && Date.now() - started >= options.timeoutMs) {
              reject(new TransportError("exec", this.destination, `${program} timed out after ${options.timeoutMs} ms and was killed`));
            } else {
              resolve({ ...out, exitCode: exitCode ?? -1 });
            }
          });
          stream.end(options.input ?? undefined);
        });
      } catch (error) {
        cannotStart(error as Error);
      }
    });
  }

  /** Runs `work` on an open connection, keeping the process alive meanwhile. */
  async #use<T>(work: (c: Connection) => Promise<T>): Promise<T> {
    this.#busy++;
    let c: Connection | undefined;
    try {
      c = await this.#connection();
      c.socket.ref();
      return await work(c);
    } finally {
      this.#busy--;
      if (this.#busy === 0) this.#live?.socket.unref();
    }
  }

  #connection(): Promise<Connection> {
    const current = this.#current;
    if (!current) {
      const opening = this.#establish(this.#lifetime.signal);
      this.#current = opening;
      opening.catch(() => {
        if (this.#current === opening) this.#current = undefined;
      });
      return opening;
    }
    return current.then((c) => {
      if (!c.closed) return c;
      if (this.#current === current) this.#current = undefined;
      return this.#connection();
    });
  }

  /** The first connection fails at once; after a drop, reconnects with backoff (0.5 s doubling to 30 s) for up to `reconnectMs`. */
  async #establish(lifetime: AbortSignal): Promise<Connection> {
    const closed = () => new TransportError("connect", this.destination, "the transport was closed");
    const open = async () => {
      const c = await this.#connectOnce();
      if (lifetime.aborted) {
        this.#drop(c);
        throw closed();
      }
      this.#live = c;
      this.#startKeepalive();
      return c;
    };
    if (!this.#everConnected) return open();
    const started = Date.now();
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await open();
        this.#options.log(`ssh ${this.destination}: reconnected after ${((Date.now() - started) / 1000).toFixed(1)} s (attempt ${attempt})`);
        return c;
      } catch (error) {
        const e = error as TransportError;
        if (lifetime.aborted) throw closed();
        if (e.stage !== "connect") {
          this.#options.log(`ssh ${this.destination}: reconnect refused: ${e.shortMessage}`);
          throw e;
        }
        if (Date.now() - started + delay > this.#options.reconnectMs) throw e;
        this.#options.log(`ssh ${this.destination}: reconnect attempt ${attempt} failed (${e.shortMessage.replace(/^ssh \S+ \(connect\): /, "")}); next in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay, undefined, { signal: lifetime }).catch(() => undefined);
        if (lifetime.aborted) throw closed();
        delay = Math.min(30_000, delay * 2);
      }
    }
  }

  #drop(c: Connection): void {
    c.closed = true;
    c.client.end();
    c.socket.unref();
  }

  async #connectOnce(): Promise<Connection> {
    const o = this.#options;
    const fail = (stage: SshStage, message: string, detail?: string) =>
      new TransportError(stage, this.destination, message, { unreachable: true, ...(detail === undefined ? {} : { detail }) });

    let knownText: string | undefined;
    try {
      knownText = await readFile(this.#knownHosts, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw fail("host key", `cannot read known_hosts file ${this.#knownHosts}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const entries: KnownHostEntry[] = knownText === undefined ? [] : parseKnownHosts(knownText, this.#knownHosts);
    const algorithms = hostKeyAlgorithms(knownKeyTypes(entries, o.host, o.port));

    let privateKey: Buffer | string | undefined;
    if (o.privateKey !== undefined) {
      if (isInlineKey(o.privateKey)) privateKey = o.privateKey;
      else {
        try {
          privateKey = await readFile(o.privateKey as string);
        } catch (error) {
          // No `cause`: the fs error repeats the value, which may be a key pasted in the wrong form.
          throw fail("auth", `cannot read the private key file ${describeKeyPath(o.privateKey as string)}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
        }
      }
    }
    const agent = o.agent === true ? process.env.SSH_AUTH_SOCK : o.agent;
    if (o.agent === true && !agent) throw fail("auth", "`agent: true` but SSH_AUTH_SOCK is not set: start ssh-agent, or pass the agent's socket path or a privateKey");

    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: o.host, port: o.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(fail("connect", `no TCP connection to ${o.host}:${o.port} within ${o.connectTimeoutMs} ms`));
      }, o.connectTimeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        s.removeAllListeners("error");
        resolve(s);
      });
      s.once("error", (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(fail("connect", `cannot reach ${o.host}:${o.port}: ${error.code ?? error.message}`));
      });
    });
    socket.setKeepAlive(true, o.keepaliveMs);

    let hostKeyProblem: string | undefined;
    let handshakeDone = false;
    const agentProblems: string[] = [];
    const client = new Client();
    const config: ConnectConfig = {
      sock: socket,
      username: o.username,
      readyTimeout: o.connectTimeoutMs,
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }),
      ...(agent === undefined ? {} : { agent }),
      ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as NonNullable<NonNullable<ConnectConfig["algorithms"]>["serverHostKey"]> & string[] } } : {}),
      hostVerifier: (key: Buffer) => {
        const check = checkHostKey(entries, o.host, o.port, key);
        if (check.status === "trusted") return true;
        hostKeyProblem = describeHostKeyProblem(check, {
          host: o.host,
          port: o.port,
          username: o.username,
          knownHostsFile: this.#knownHosts,
          fileExists: knownText !== undefined,
          customFile: this.#knownHosts !== posix.join(homedir(), ".ssh", "known_hosts"),
          blob: key,
        });
        return false;
      },
    };

    const failure = (error: Error & { level?: string }): TransportError => {
      if (hostKeyProblem !== undefined) {
        const [first, ...rest] = hostKeyProblem.split("\n");
        return fail("host key", first ?? "host key refused", rest.join("\n"));
      }
      const tried = [privateKey !== undefined ? "the private key" : "", agent ? "the agent" : ""].filter(Boolean).join(" and ");
      const agentNote = agentProblems.length ? ` The agent failed: ${agentProblems.join("; ")}.` : "";
      if (error.level === "client-authentication") {
        return fail("auth", `${o.username} was refused: ${error.message}`, `Tried ${tried}.${agentNote} Check that its public key is in ~/.ssh/authorized_keys on ${o.host}.`);
      }
      if (/privateKey|passphrase|private key/i.test(error.message)) {
        return fail("auth", `the private key cannot be used: ${error.message.replace(/^Cannot parse privateKey: /, "")}`);
      }
      if (/host key/i.test(error.message) && algorithms.length) {
        return fail("host key", `${error.message}: ${this.#knownHosts} only has keys of type ${knownKeyTypes(entries, o.host, o.port).join(", ")} for this host, and the server offers none of them`);
      }
      if (handshakeDone && error.level !== "client-socket" && error.level !== "client-timeout") {
        // The server hung up during authentication (too many keys offered, say).
        return fail("auth", `${o.username} was refused: ${error.message}`, `Tried ${tried}.${agentNote}`);
      }
      return fail("connect", error.message);
    };

    await new Promise<void>((resolve, reject) => {
      let settled = false;
      client.on("handshake", () => (handshakeDone = true));
      client.once("ready", () => {
        settled = true;
        resolve();
      });
      // One listener for the client's whole life: an 'error' without one would crash the process.
      client.on("error", (error: Error & { level?: string }) => {
        if (error.level === "agent") {
          agentProblems.push(error.message); // ssh2 goes on with the other methods
          return;
        }
        if (settled) return; // "close" follows; operations in flight see it
        settled = true;
        socket.destroy();
        reject(failure(error));
      });
      try {
        client.connect(config);
      } catch (error) {
        settled = true;
        socket.destroy();
        reject(failure(error as Error));
      }
    });

    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.destroy();
        reject(fail("sftp", `no sftp channel within ${o.connectTimeoutMs} ms`));
      }, o.connectTimeoutMs);
      client.sftp((error, s) => {
        clearTimeout(timer);
        if (error) {
          client.end();
          reject(fail("sftp", `cannot open an sftp channel: ${error.message}`, "The login node must allow sftp (sshd's `Subsystem sftp`)."));
        } else resolve(s);
      });
    });
    const c: Connection = { client, sftp, socket, closed: false, lastData: Date.now() };
    socket.on("data", () => (c.lastData = Date.now()));
    const lost = (why: string) => {
      const expected = c.closed;
      c.closed = true;
      if (this.#live === c) this.#live = undefined;
      if (!expected) {
        client.end();
        this.#options.log(`ssh ${this.destination}: ${why}; the next operation reconnects`);
      }
    };
    client.once("close", () => lost("connection lost"));
    sftp.once("close", () => lost("sftp channel closed"));
    this.#everConnected = true;
    if (this.#busy === 0) socket.unref();
    return c;
  }

  /**
   * While the connection lives: when the server has been quiet for
   * `keepaliveMs`, ask it something cheap; when it stays quiet for three
   * times that, drop the connection so the next operation reconnects.
   */
  #startKeepalive(): void {
    clearInterval(this.#keepalive);
    const every = this.#options.keepaliveMs;
    this.#keepalive = setInterval(() => {
      const c = this.#live;
      if (!c || c.closed) return;
      const quiet = Date.now() - c.lastData;
      if (quiet >= 3 * every) {
        c.closed = true;
        this.#live = undefined;
        this.#options.log(`ssh ${this.destination}: no answer for ${Math.round(quiet / 1000)} s; dropping the connection`);
        c.client.destroy();
      } else if (quiet >= every) {
        c.sftp.stat("/", () => undefined);
      }
    }, Math.max(100, Math.floor(every / 3)));
    this.#keepalive.unref();
  }
}

/** A key given inline rather than as a file path: a Buffer, or a string that looks like key material. */
function isInlineKey(key: string | Buffer): boolean {
  return Buffer.isBuffer(key) || /\n|-----BEGIN|PRIVATE KEY|PuTTY-User-Key-File/.test(key) || key.length > 1024;
}

/** The path for a message; something long enough to be key material is not repeated. */
function describeKeyPath(path: string): string {
  return path.length <= 200 && !/\s/.test(path) ? path : `(a ${path.length}-character value: pass key contents as a Buffer or PEM text, a path otherwise)`;
}

function validateSshOptions(o: SshOptions): string[] {
  if (typeof o !== "object" || o === null) return [`Expected \`ssh\` to be an object with host, username and privateKey or agent, got \`${String(o)}\``];
  const problems: string[] = [];
  const known = new Set(["host", "port", "username", "privateKey", "passphrase", "agent", "knownHosts", "keepaliveMs", "reconnectMs", "connectTimeoutMs", "log"]);
  for (const k of Object.keys(o)) if (!known.has(k)) problems.push(`Unknown key \`ssh.${k}\`; accepted: ${[...known].join(", ")}`);
  if (typeof o.host !== "string" || o.host === "") problems.push(`Expected \`ssh.host\` to be a host name or address, got \`${String(o.host)}\``);
  if (o.port !== undefined && !(Number.isInteger(o.port) && o.port > 0 && o.port < 65536)) problems.push(`Expected \`ssh.port\` to be a port number (1-65535), got \`${String(o.port)}\``);
  if (typeof o.username !== "string" || o.username === "") problems.push(`Expected \`ssh.username\` to be the user on the cluster, got \`${String(o.username)}\``);
  if (o.privateKey === undefined && o.agent === undefined) problems.push("Expected `ssh.privateKey` (a key file's path or the key) or `ssh.agent` (true, or an agent socket), got neither");
  if (o.privateKey !== undefined && !Buffer.isBuffer(o.privateKey) && (typeof o.privateKey !== "string" || o.privateKey === "")) {
    problems.push("Expected `ssh.privateKey` to be a key file's path, or the key as a Buffer or string");
  }
  if (o.agent !== undefined && o.agent !== true && (typeof o.agent !== "string" || o.agent === "")) problems.push(`Expected \`ssh.agent\` to be true or an agent socket's path, got \`${String(o.agent)}\``);
  if (o.knownHosts !== undefined && (typeof o.knownHosts !== "string" || o.knownHosts === "")) problems.push(`Expected \`ssh.knownHosts\` to be a file path, got \`${String(o.knownHosts)}\``);
  for (const k of ["keepaliveMs", "reconnectMs", "connectTimeoutMs"] as const) {
    const v = o[k];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) problems.push(`Expected \`ssh.${k}\` to be a positive integer of milliseconds, got \`${String(v)}\``);
  }
  if (o.log !== undefined && typeof o.log !== "function") problems.push("Expected `ssh.log` to be a function that takes a line");
  return problems;
}
