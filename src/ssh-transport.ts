import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { homedir } from "node:os";
import { posix } from "node:path";
import { Client, type ConnectConfig, type FileEntryWithStats, type SFTPWrapper, type Stats } from "ssh2";
import { ParameterError } from "./errors.js";
import { checkHostKey, describeHostKeyProblem, hostKeyAlgorithms, knownHostName, knownKeyTypes, parseKnownHosts, type KnownHostEntry } from "./known-hosts.js";
import { quoteShell } from "./shell.js";
import { TransportError, type RunOptions, type RunResult, type SshStage, type Transport } from "./transport.js";

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
}

/** sftp status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
/** ssh2's messages when the connection or channel went away under a call. */
const LOST = /No response from server|Not connected|Channel closed|ECONNRESET|EPIPE/i;
/** OpenSSH allows 10 sessions per connection; one is the sftp channel. */
const MAX_EXEC_CHANNELS = 8;
let transports = 0;

/**
 * Runs commands and moves files on a cluster's login node over one SSH
 * connection (ssh2): commands through exec channels, quoted argument by
 * argument; files through one sftp channel. The host key must be in
 * known_hosts. A dropped connection is reopened with backoff on the next
 * operation. The connection does not keep the process alive while idle.
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
  #everConnected = false;
  #closed = false;
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

  /** Closes the connection; a later operation opens a new one. */
  close(): void {
    this.#closed = true;
    const current = this.#current;
    this.#current = undefined;
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    void current?.then((c) => {
      c.closed = true;
      c.client.end();
    }, () => undefined);
  }

  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const command = [program, ...args].map(quoteShell).join(" ");
    await this.#execSlot();
    try {
      return await this.#use((c) => this.#exec(c, program, command, options));
    } finally {
      this.#execs--;
      this.#execQueue.shift()?.();
    }
  }

  readFile(path: string): Promise<Buffer> {
    return this.#sftp<Buffer>("read", path, (sftp, done) => sftp.readFile(path, done));
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    await this.#sftp("write", path, (sftp, done) => sftp.writeFile(temporary, bytes, done));
    try {
      await this.#sftp("rename", path, (sftp, done) => {
        try {
          sftp.ext_openssh_rename(temporary, path, done);
        } catch {
          // Not OpenSSH: plain sftp rename refuses to replace, so remove the old file first.
          sftp.unlink(path, () => sftp.rename(temporary, path, done));
        }
      });
    } catch (error) {
      await this.#sftp("remove", temporary, (sftp, done) => sftp.unlink(temporary, done)).catch(() => undefined);
      throw error;
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
    const made = await this.#sftp<true>("mkdir", path, (sftp, done) => sftp.mkdir(path, (e) => done(e ?? undefined, true))).catch((e: unknown) => e as TransportError);
    if (made === true) return;
    if (made.unreachable) throw made;
    const isDir = await this.#sftp<Stats>("stat", path, (sftp, done) => sftp.stat(path, done)).then(
      (s) => s.isDirectory(),
      () => undefined,
    );
    if (isDir === true) return;
    if (isDir === false) throw new TransportError("sftp", this.destination, `cannot make folder ${path}: a file is in the way`);
    const parent = posix.dirname(path);
    if (parent === path) throw made;
    await this.mkdir(parent);
    await this.#sftp<true>("mkdir", path, (sftp, done) => sftp.mkdir(path, (e) => done(e ?? undefined, true))).catch(async (e: unknown) => {
      // Made meanwhile by someone else?
      const s = await this.#sftp<Stats>("stat", path, (sftp, done) => sftp.stat(path, done)).catch(() => undefined);
      if (!s?.isDirectory()) throw e;
    });
  }

  /** Waits for one of the exec channels OpenSSH allows per connection. */
  async #execSlot(): Promise<void> {
    if (this.#execs >= MAX_EXEC_CHANNELS) await new Promise<void>((resolve) => this.#execQueue.push(resolve));
    this.#execs++;
  }

  /** One sftp call; a dropped connection is reopened and the call made once more (every call here is idempotent). */
  async #sftp<T>(what: string, path: string, call: (sftp: SFTPWrapper, done: (error: Error | undefined | null, value?: T) => void) => void): Promise<T> {
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
      if (error instanceof TransportError && error.stage === "sftp" && error.unreachable && !this.#closed) return attempt();
      throw error;
    }
  }

  #exec(c: Connection, program: string, command: string, options: RunOptions): Promise<RunResult> {
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
          let settled = false;
          const settle = (f: () => void) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            f();
          };
          const timer =
            options.timeoutMs === undefined
              ? undefined
              : setTimeout(() => {
                  settle(() => reject(new TransportError("exec", this.destination, `${program} timed out after ${options.timeoutMs} ms and was killed`)));
                  stream.signal("KILL");
                  stream.close();
                }, options.timeoutMs);
          stream.on("data", (b: Buffer) => stdout.push(b));
          stream.stderr.on("data", (b: Buffer) => stderr.push(b));
          stream.on("exit", (code: number | null, sig?: string) => {
            if (typeof code === "number") exitCode = code;
            if (sig) signal = sig;
          });
          stream.on("close", () => {
            const out = { stdout: Buffer.concat(stdout).toString().replace(/\n$/, ""), stderr: Buffer.concat(stderr).toString().replace(/\n$/, "") };
            if (exitCode !== undefined) settle(() => resolve({ ...out, exitCode: exitCode! }));
            else if (signal !== undefined) settle(() => resolve({ ...out, exitCode: -1 }));
            else {
              const error = new TransportError("exec", this.destination, `connection lost while ${program} ran; it may or may not have finished`, { unreachable: true });
              settle(() => reject(error));
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
    if (this.#closed) this.#closed = false;
    this.#busy++;
    let c: Connection | undefined;
    try {
      c = await this.#connection();
      c.socket.ref();
      return await work(c);
    } finally {
      this.#busy--;
      if (this.#busy === 0) c?.socket.unref();
    }
  }

  #connection(): Promise<Connection> {
    this.#current ??= this.#establish().catch((error: unknown) => {
      this.#current = undefined;
      throw error;
    });
    const current = this.#current;
    return current.then((c) => {
      if (!c.closed) return c;
      if (this.#current === current) this.#current = undefined;
      return this.#connection();
    });
  }

  /** The first connection fails at once; after a drop, reconnects with backoff (0.5 s doubling to 30 s) for up to `reconnectMs`. */
  async #establish(): Promise<Connection> {
    if (!this.#everConnected) return this.#connectOnce();
    const started = Date.now();
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await this.#connectOnce();
        this.#options.log(`ssh ${this.destination}: reconnected after ${((Date.now() - started) / 1000).toFixed(1)} s (attempt ${attempt})`);
        return c;
      } catch (error) {
        const e = error as TransportError;
        if (e.stage !== "connect" || Date.now() - started + delay > this.#options.reconnectMs) throw e;
        this.#options.log(`ssh ${this.destination}: reconnect attempt ${attempt} failed (${e.shortMessage.replace(/^ssh \S+ \(connect\): /, "")}); next in ${(delay / 1000).toFixed(1)} s`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(30_000, delay * 2);
      }
    }
  }

  async #connectOnce(): Promise<Connection> {
    const o = this.#options;
    const fail = (stage: SshStage, message: string, cause?: unknown, detail?: string) =>
      new TransportError(stage, this.destination, message, { ...(cause === undefined ? {} : { cause }), ...(detail === undefined ? {} : { detail }) });

    let knownText: string | undefined;
    try {
      knownText = await readFile(this.#knownHosts, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw fail("host key", `cannot read known_hosts file ${this.#knownHosts}: ${(error as Error).message}`, error);
    }
    const entries: KnownHostEntry[] = knownText === undefined ? [] : parseKnownHosts(knownText, this.#knownHosts);
    const algorithms = hostKeyAlgorithms(knownKeyTypes(entries, o.host, o.port));

    let privateKey: Buffer | string | undefined;
    if (o.privateKey !== undefined) {
      const inline = Buffer.isBuffer(o.privateKey) || o.privateKey.trimStart().startsWith("-----BEGIN");
      try {
        privateKey = inline ? o.privateKey : await readFile(o.privateKey as string);
      } catch (error) {
        throw fail("auth", `cannot read the private key file ${String(o.privateKey)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, error);
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
        reject(fail("connect", `cannot reach ${o.host}:${o.port}: ${error.code ?? error.message}`, error));
      });
    });
    socket.setKeepAlive(true, o.keepaliveMs);

    let hostKeyProblem: string | undefined;
    const client = new Client();
    const config: ConnectConfig = {
      sock: socket,
      username: o.username,
      readyTimeout: o.connectTimeoutMs,
      ...(privateKey === undefined ? {} : { privateKey }),
      ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }),
      ...(agent === undefined ? {} : { agent }),
      ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as NonNullable<ConnectConfig["algorithms"]>["serverHostKey"] & string[] } } : {}),
      hostVerifier: (key: Buffer) => {
        const check = checkHostKey(entries, o.host, o.port, key);
        if (check.status === "trusted") return true;
        hostKeyProblem = describeHostKeyProblem(check, {
          host: o.host,
          port: o.port,
          username: o.username,
          knownHostsFile: this.#knownHosts,
          fileExists: knownText !== undefined,
          blob: key,
        });
        return false;
      },
    };

    const ready = new Promise<void>((resolve, reject) => {
      client.once("ready", () => resolve());
      client.once("error", (error: Error & { level?: string }) => {
        socket.destroy();
        if (hostKeyProblem !== undefined) {
          const [first, ...rest] = hostKeyProblem.split("\n");
          reject(fail("host key", first ?? "host key refused", undefined, rest.join("\n")));
        } else if (error.level === "client-authentication") {
          reject(
            fail(
              "auth",
              `${o.username} was refused: ${error.message}`,
              undefined,
              `Tried ${[privateKey !== undefined ? "the private key" : "", agent ? "the agent" : ""].filter(Boolean).join(" and ")}. Check that its public key is in ~/.ssh/authorized_keys on ${o.host}.`,
            ),
          );
        } else if (/host key/i.test(error.message) && algorithms.length) {
          reject(
            fail("host key", `${error.message}: ${this.#knownHosts} only has keys of type ${knownKeyTypes(entries, o.host, o.port).join(", ")} for this host, and the server offers none of them`),
          );
        } else if (/privateKey|passphrase|private key/i.test(error.message)) {
          reject(fail("auth", `the private key cannot be used: ${error.message.replace(/^Cannot parse privateKey: /, "")}`));
        } else {
          reject(fail("connect", error.message, error));
        }
      });
    });
    try {
      client.connect(config);
    } catch (error) {
      socket.destroy();
      const message = (error as Error).message;
      throw /privateKey|passphrase|private key/i.test(message)
        ? fail("auth", `the private key cannot be used: ${message.replace(/^Cannot parse privateKey: /, "")}`)
        : fail("connect", message, error);
    }
    await ready;

    const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
      client.sftp((error, s) => {
        if (error) {
          client.end();
          reject(fail("sftp", `cannot open an sftp channel: ${error.message}`, error));
        } else resolve(s);
      }),
    );
    const c: Connection = { client, sftp, socket, closed: false };
    client.on("error", () => undefined); // "close" follows; operations in flight see it
    client.once("close", () => {
      const expected = c.closed;
      c.closed = true;
      if (!expected && !this.#closed) this.#options.log(`ssh ${this.destination}: connection lost; the next operation reconnects`);
    });
    this.#everConnected = true;
    if (this.#busy === 0) socket.unref();
    this.#startKeepalive();
    return c;
  }

  /** Checks an idle connection now and then (a cheap sftp stat), and drops it if the server does not answer. */
  #startKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = setInterval(() => {
      const current = this.#current;
      if (!current || this.#busy > 0) return;
      void current.then((c) => {
        if (c.closed) return;
        const timer = setTimeout(() => c.client.destroy(), this.#options.keepaliveMs);
        timer.unref();
        c.sftp.stat(".", () => clearTimeout(timer));
      }, () => undefined);
    }, this.#options.keepaliveMs);
    this.#keepalive.unref();
  }
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
