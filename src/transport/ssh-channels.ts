import { TransportError } from "../base/errors.js";
import type { SFTPWrapper } from "ssh2";
import type { Connection } from "./ssh-connect.js";
import type { RunOptions, RunResult } from "./transport.js";

/** sftp status codes (draft-ietf-secsh-filexfer-02). */
const SFTP_NO_SUCH_FILE = 2;
/** ssh2's messages when the connection or channel went away under a call. */
export const LOST = /No response from server|Not connected|Channel closed|ECONNRESET|EPIPE/i;
/** A command killed by `timeout -s KILL` exits with 128 + 9 (or `timeout` itself dies by the signal). */
const KILLED = 137;

/** ssh2's sftp callback. */
export type SftpCallback<T> = (error: Error | undefined | null, value?: T) => void;

/**
 * One sftp request on a connection. A dropped connection is an unreachable
 * TransportError, a missing file one with code ENOENT.
 */
export function sftpCall<T>(c: Connection, destination: string, what: string, path: string, call: (sftp: SFTPWrapper, done: SftpCallback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done: SftpCallback<T> = (error, value) => {
      if (!error) return resolve(value as T);
      const code = (error as { code?: unknown }).code;
      if (c.closed || LOST.test(error.message)) {
        reject(new TransportError("sftp", destination, `connection lost during ${what} ${path}`, { unreachable: true, cause: error }));
      } else if (code === SFTP_NO_SUCH_FILE) {
        reject(new TransportError("sftp", destination, `${what} ${path}: no such file or folder`, { code: "ENOENT", cause: error }));
      } else {
        reject(new TransportError("sftp", destination, `${what} ${path}: ${error.message}`, { cause: error }));
      }
    };
    try {
      call(c.sftp, done);
    } catch (error) {
      done(error as Error);
    }
  });
}

/**
 * Runs a quoted command line on an exec channel and collects its output. A
 * connection that drops before the exit status arrives is an unreachable
 * TransportError: the command may or may not have finished.
 */
export function execCommand(c: Connection, destination: string, program: string, command: string, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise<RunResult>((resolve, reject) => {
    const cannotStart = (error: Error) =>
      reject(new TransportError("exec", destination, `cannot start ${program}: ${error.message}`, { unreachable: c.closed || LOST.test(error.message), cause: error }));
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
            reject(new TransportError("exec", destination, `connection lost while ${program} ran; it may or may not have finished`, { unreachable: true }));
          } else if (options.timeoutMs !== undefined && (exitCode === KILLED || signal === "KILL" || signal === "SIGKILL") && Date.now() - started >= options.timeoutMs) {
            reject(new TransportError("exec", destination, `${program} timed out after ${options.timeoutMs} ms and was killed`));
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
