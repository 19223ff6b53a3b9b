import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { posix } from "node:path";
import type { FileEntryWithStats, SFTPWrapper, Stats } from "ssh2";
import { ParameterError, TransportError } from "../base/errors.js";
import { quotePosix } from "../base/shell.js";
import { execCommand, sftpCall, type SftpCallback } from "./ssh-channels.js";
import type { ConnectSettings } from "./ssh-connect.js";
import { SshLink } from "./ssh-link.js";
import { validateSshOptions, type SshOptions } from "./ssh-options.js";
import { isUnreachable, type RunOptions, type RunResult, type Transport } from "./transport.js";

export type { SshOptions } from "./ssh-options.js";

/** OpenSSH allows 10 sessions per connection; one is the sftp channel. */
const MAX_EXEC_CHANNELS = 8;
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
  readonly #options: ConnectSettings & Required<Pick<SshOptions, "reconnectMs" | "log">>;
  readonly #link: SshLink;
  #execs = 0;
  readonly #execQueue: Array<() => void> = [];

  constructor(options: SshOptions) {
    const problems = validateSshOptions(options);
    if (problems.length) throw new ParameterError("ssh options", problems);
    const port = options.port ?? 22;
    this.destination = `${options.username}@${options.host}:${port}`;
    this.#options = {
      keepaliveMs: 15_000,
      reconnectMs: 600_000,
      connectTimeoutMs: 20_000,
      log: (line: string) => process.stderr.write(`slurmkit: ${line}\n`),
      ...options,
      port,
      knownHostsFile: options.knownHosts ?? posix.join(homedir(), ".ssh", "known_hosts"),
      destination: this.destination,
    };
    this.key = `ssh://${this.destination}#${++transports}`;
    this.#link = new SshLink(this.destination, this.#options);
  }

  /** Opens the connection now (it opens on first use otherwise); rejects with the stage that failed. */
  async connect(): Promise<void> {
    await this.#link.use(async () => undefined);
  }

  /** Closes the connection and stops any reconnect in progress; a later operation opens a new connection. */
  close(): void {
    this.#link.close();
  }

  async run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const argv = [program, ...args];
    // The server kills a command that outlives its timeout: closing the channel would not.
    if (options.timeoutMs !== undefined) argv.unshift("timeout", "-s", "KILL", `${Math.max(1, options.timeoutMs) / 1000}`);
    const command = argv.map(quotePosix).join(" ");
    await this.#execSlot();
    try {
      return await this.#link.use((c) => execCommand(c, this.destination, program, command, options));
    } finally {
      const next = this.#execQueue.shift();
      if (next)
        next(); // the slot passes on as it is
      else this.#execs--;
    }
  }

  readFile(path: string): Promise<Buffer> {
    return this.#sftp<Buffer>("read", path, (sftp, done) => sftp.readFile(path, done));
  }

  readFrom(path: string, offset: number): Promise<Buffer> {
    return this.#sftp<Buffer>("read", path, (sftp, done) => readFromOffset(sftp, path, offset, done));
  }

  /**
   * Writes to a temporary name, flushes it to disk where the server offers
   * OpenSSH's fsync, then renames over `path` (OpenSSH's posix-rename), so
   * readers see the old file or the new one, and a crash never leaves a
   * renamed file without its bytes.
   */
  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const temporary = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      await this.#sftp("write", path, (sftp, done) => writeFlushed(sftp, temporary, bytes, done));
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

  /** Opens with sftp's exclusive-create flags ("wx"), then writes. */
  async createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const handle = await this.#sftp<Buffer | false>(
      "create",
      path,
      (sftp, done) =>
        sftp.open(path, "wx", (error, h) => {
          // SSH_FX_FAILURE (4) is what OpenSSH answers when the file exists; check that it does.
          if (error && (error as { code?: unknown }).code === 4) done(undefined, false);
          else done(error, h);
        }),
      { retry: false },
    );
    if (handle === false) {
      if (await this.#stat(path)) return false;
      throw new TransportError("sftp", this.destination, `create ${path}: the server refused to create it`);
    }
    try {
      await this.#sftp("write", path, (sftp, done) => sftp.write(handle, bytes, 0, bytes.length, 0, (e) => done(e)));
    } finally {
      await this.#sftp("close", path, (sftp, done) => sftp.close(handle, (e) => done(e)), { retry: false }).catch(() => undefined);
    }
    return true;
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
  async #sftp<T>(what: string, path: string, call: (sftp: SFTPWrapper, done: SftpCallback<T>) => void, { retry = true } = {}): Promise<T> {
    const attempt = () => this.#link.use((c) => sftpCall(c, this.destination, what, path, call));
    try {
      return await attempt();
    } catch (error) {
      if (retry && error instanceof TransportError && error.stage === "sftp" && error.unreachable) return attempt();
      throw error;
    }
  }
}

/** Reads `path` from `offset` to its end over sftp, in the chunks the server gives. */
function readFromOffset(sftp: SFTPWrapper, path: string, offset: number, done: SftpCallback<Buffer>): void {
  sftp.open(path, "r", (error, handle) => {
    if (error) return done(error);
    const finish = (failure: Error | undefined, value?: Buffer) => sftp.close(handle, () => (failure ? done(failure) : done(undefined, value)));
    sftp.fstat(handle, (statError, stats) => {
      if (statError) return finish(statError);
      const size = stats.size ?? 0;
      if (size <= offset) return finish(undefined, Buffer.alloc(0));
      const out = Buffer.allocUnsafe(size - offset);
      const next = (at: number) => {
        if (at >= out.length) return finish(undefined, out);
        sftp.read(handle, out, at, Math.min(out.length - at, 256 * 1024), offset + at, (readError, bytesRead) => {
          if (readError) return finish(readError);
          if (bytesRead === 0) return finish(undefined, out.subarray(0, at));
          next(at + bytesRead);
        });
      };
      next(0);
    });
  });
}

/** Opens, writes, fsyncs (when the server has fsync@openssh.com) and closes `path`; the handle is closed whatever fails. */
function writeFlushed(sftp: SFTPWrapper, path: string, bytes: Buffer, done: SftpCallback<void>): void {
  sftp.open(path, "w", (openError, handle) => {
    if (openError) return done(openError);
    const close = (error: Error | null | undefined) => sftp.close(handle, (closeError) => done(error ?? closeError ?? undefined));
    sftp.write(handle, bytes, 0, bytes.length, 0, (writeError) => {
      if (writeError) return close(writeError);
      try {
        sftp.ext_openssh_fsync(handle, (syncError) => close(syncError));
      } catch {
        close(undefined); // the server has no fsync extension: the bytes are written, not flushed
      }
    });
  });
}
