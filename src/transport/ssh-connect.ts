import { TransportError, type SshStage } from "../base/errors.js";
import { readFile } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { homedir } from "node:os";
import { posix } from "node:path";
import type { Client, ConnectConfig, SFTPWrapper } from "ssh2";
import { checkHostKey, describeHostKeyProblem, hostKeyAlgorithms, knownKeyTypes, parseKnownHosts, type KnownHostEntry } from "./known-hosts.js";
import { describeKeyPath, isInlineKey, type SshOptions } from "./ssh-options.js";

/** One open SSH connection with its sftp channel. */
export interface Connection {
  readonly client: Client;
  readonly sftp: SFTPWrapper;
  readonly socket: Socket;
  closed: boolean;
  /** When the server last sent anything (ms since epoch). */
  lastData: number;
}

/** What opening a connection needs: the options with their defaults, and where known_hosts is. */
export interface ConnectSettings extends SshOptions {
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly keepaliveMs: number;
  /** The known_hosts file to check the host key against. */
  readonly knownHostsFile: string;
  /** `user@host:port`, for messages. */
  readonly destination: string;
}

/** known_hosts as read: its entries, and whether the file exists. */
interface KnownHosts {
  readonly entries: KnownHostEntry[];
  readonly exists: boolean;
}

type Fail = (stage: SshStage, message: string, detail?: string) => TransportError;

/**
 * Opens one connection: known_hosts and the key are read, TCP connects, the
 * host key is checked, the user authenticates, and an sftp channel opens.
 * Every failure is a TransportError tagged with its stage, and unreachable.
 * `onLost` is called once if the connection or its sftp channel closes.
 */
export async function openConnection(s: ConnectSettings, onLost: (c: Connection, why: string) => void): Promise<Connection> {
  const fail: Fail = (stage, message, detail) => new TransportError(stage, s.destination, message, { unreachable: true, ...(detail === undefined ? {} : { detail }) });
  const known = await readKnownHosts(s.knownHostsFile, fail);
  const privateKey = await loadPrivateKey(s, fail);
  const agent = s.agent === true ? process.env.SSH_AUTH_SOCK : s.agent;
  if (s.agent === true && !agent) throw fail("auth", "`agent: true` but SSH_AUTH_SOCK is not set: start ssh-agent, or pass the agent's socket path or a privateKey");
  // Loaded on the first connection (before the socket opens): a command that stays on this machine never needs ssh2.
  const ssh2 = await import("ssh2");
  const socket = await openSocket(s, fail);
  const client = await handshake(ssh2, s, socket, known, { privateKey, agent }, fail);
  const sftp = await openSftp(s, client, fail);
  const c: Connection = { client, sftp, socket, closed: false, lastData: Date.now() };
  socket.on("data", () => (c.lastData = Date.now()));
  client.once("close", () => onLost(c, "connection lost"));
  sftp.once("close", () => onLost(c, "sftp channel closed"));
  return c;
}

async function readKnownHosts(file: string, fail: Fail): Promise<KnownHosts> {
  try {
    return { entries: parseKnownHosts(await readFile(file, "utf8"), file), exists: true };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { entries: [], exists: false };
    throw fail("host key", `cannot read known_hosts file ${file}: ${code ?? (error as Error).message}`);
  }
}

async function loadPrivateKey(s: ConnectSettings, fail: Fail): Promise<Buffer | string | undefined> {
  if (s.privateKey === undefined || isInlineKey(s.privateKey)) return s.privateKey;
  try {
    return await readFile(s.privateKey as string);
  } catch (error) {
    // No `cause`: the fs error repeats the value, which may be a key pasted in the wrong form.
    throw fail("auth", `cannot read the private key file ${describeKeyPath(s.privateKey as string)}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
}

function openSocket(s: ConnectSettings, fail: Fail): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ host: s.host, port: s.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(fail("connect", `no TCP connection to ${s.host}:${s.port} within ${s.connectTimeoutMs} ms`));
    }, s.connectTimeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      socket.setKeepAlive(true, s.keepaliveMs);
      resolve(socket);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(fail("connect", `cannot reach ${s.host}:${s.port}: ${error.code ?? error.message}`));
    });
  });
}

/** SSH handshake and authentication on an open socket, with the host key checked against known_hosts. */
async function handshake(
  ssh2: typeof import("ssh2"),
  s: ConnectSettings,
  socket: Socket,
  known: KnownHosts,
  auth: { privateKey: Buffer | string | undefined; agent: string | undefined },
  fail: Fail,
): Promise<Client> {
  const algorithms = hostKeyAlgorithms(knownKeyTypes(known.entries, s.host, s.port));
  let hostKeyProblem: string | undefined;
  let handshakeDone = false;
  const agentProblems: string[] = [];
  const client = new ssh2.Client();
  const config: ConnectConfig = {
    sock: socket,
    username: s.username,
    readyTimeout: s.connectTimeoutMs,
    ...(auth.privateKey === undefined ? {} : { privateKey: auth.privateKey }),
    ...(s.passphrase === undefined ? {} : { passphrase: s.passphrase }),
    ...(auth.agent === undefined ? {} : { agent: auth.agent }),
    ...(algorithms.length ? { algorithms: { serverHostKey: algorithms as NonNullable<NonNullable<ConnectConfig["algorithms"]>["serverHostKey"]> & string[] } } : {}),
    hostVerifier: (key: Buffer) => {
      const check = checkHostKey(known.entries, s.host, s.port, key);
      if (check.status === "trusted") return true;
      hostKeyProblem = describeHostKeyProblem(check, {
        host: s.host,
        port: s.port,
        username: s.username,
        knownHostsFile: s.knownHostsFile,
        fileExists: known.exists,
        customFile: s.knownHostsFile !== posix.join(homedir(), ".ssh", "known_hosts"),
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
    const tried = [auth.privateKey !== undefined ? "the private key" : "", auth.agent ? "the agent" : ""].filter(Boolean).join(" and ");
    const agentNote = agentProblems.length ? ` The agent failed: ${agentProblems.join("; ")}.` : "";
    if (error.level === "client-authentication") {
      return fail("auth", `${s.username} was refused: ${error.message}`, `Tried ${tried}.${agentNote} Check that its public key is in ~/.ssh/authorized_keys on ${s.host}.`);
    }
    if (/privateKey|passphrase|private key/i.test(error.message)) {
      return fail("auth", `the private key cannot be used: ${error.message.replace(/^Cannot parse privateKey: /, "")}`);
    }
    if (/host key/i.test(error.message) && algorithms.length) {
      return fail(
        "host key",
        `${error.message}: ${s.knownHostsFile} only has keys of type ${knownKeyTypes(known.entries, s.host, s.port).join(", ")} for this host, and the server offers none of them`,
      );
    }
    if (handshakeDone && error.level !== "client-socket" && error.level !== "client-timeout") {
      // The server hung up during authentication (too many keys offered, say).
      return fail("auth", `${s.username} was refused: ${error.message}`, `Tried ${tried}.${agentNote}`);
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
  return client;
}

function openSftp(s: ConnectSettings, client: Client, fail: Fail): Promise<SFTPWrapper> {
  return new Promise<SFTPWrapper>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.destroy();
      reject(fail("sftp", `no sftp channel within ${s.connectTimeoutMs} ms`));
    }, s.connectTimeoutMs);
    client.sftp((error, sftp) => {
      clearTimeout(timer);
      if (error) {
        client.end();
        reject(fail("sftp", `cannot open an sftp channel: ${error.message}`, "The login node must allow sftp (sshd's `Subsystem sftp`)."));
      } else resolve(sftp);
    });
  });
}
