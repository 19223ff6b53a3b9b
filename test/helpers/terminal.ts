import { execa } from "execa";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** A program running in a real terminal (a detached tmux session), whose screen tests can read. */
export interface Terminal {
  /** The visible screen now: tmux capture-pane -p (plain text, trailing blank lines trimmed; lines right-trimmed). */
  screen(): Promise<string>;
  /** Waits until the screen matches (string: includes; RegExp: test; function: returns true), polling every 200 ms; throws after timeoutMs (default 60_000) with the last screen in the message. Returns the screen. */
  waitFor(match: string | RegExp | ((screen: string) => boolean), timeoutMs?: number): Promise<string>;
  /**
   * Waits until the program exited (the pane is dead) and returns its exit status (128 + n if signal n killed it);
   * throws after timeoutMs (default 120_000) with the last screen.
   */
  exited(timeoutMs?: number): Promise<number>;
  /** Kills the session (idempotent). */
  close(): Promise<void>;
}

/** Options of {@link startTerminal}. */
export interface TerminalOptions {
  /** The program's working directory (default: this process's). */
  cwd?: string;
  /** Variables added to the program's environment (which has neither CI nor TMUX unless set here). */
  env?: Record<string, string>;
  /** The terminal's size (default 120×30). */
  cols?: number;
  rows?: number;
}

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

let sessions = 0;

/**
 * Starts `argv` in a new detached tmux session of `cols`×`rows` (default 120×30) on a private tmux server (`tmux -L <unique name> -f /dev/null`),
 * with no status line, `remain-on-exit on`, and CI and TMUX unset for the program unless `env` sets them.
 */
export async function startTerminal(argv: readonly string[], options: TerminalOptions = {}): Promise<Terminal> {
  const { cwd = process.cwd(), env = {}, cols = 120, rows = 30 } = options;
  const socket = `test-terminal-${process.pid}-${++sessions}-${Date.now().toString(36)}`;
  const clientEnv: Record<string, string | undefined> = { ...process.env, TMUX: undefined, TMUX_PANE: undefined, CI: undefined };
  const tmux = async (...args: string[]): Promise<string> => (await execa("tmux", ["-L", socket, "-f", "/dev/null", ...args], { env: clientEnv, extendEnv: false, stdin: "ignore" })).stdout;
  const assignments = Object.entries(env).map(([key, value]) => shellQuote(`${key}=${value}`));
  // The shell outlives the program a little: tmux 3.3a closes the pane's pty, unread output and all, as soon as it reaps the pane's process,
  // which loses the output of a program that exits within milliseconds of starting. It exits with the program's status (128 + n for signal n).
  const command = `${["env", "-u", "CI", "-u", "TMUX", ...assignments, ...argv.map(shellQuote)].join(" ")}; s=$?; sleep 0.2; exit $s`;
  // The pane first runs `sleep`, so remain-on-exit is in effect before the program starts.
  await tmux(
    "new-session",
    "-d",
    "-s",
    "t",
    "-x",
    String(cols),
    "-y",
    String(rows),
    "-c",
    cwd,
    "sleep 2147483647",
    ";",
    "set-option",
    "-g",
    "status",
    "off",
    ";",
    "set-option",
    "-g",
    "remain-on-exit",
    "on",
    ";",
    "set-option",
    "-g",
    "default-shell",
    "/bin/sh",
    ";",
    "respawn-pane",
    "-k",
    "-t",
    "t",
    "-c",
    cwd,
    command,
  ).catch(async (error: unknown) => {
    await tmux("kill-server").catch(() => undefined);
    throw error;
  });
  const [socketPath = "", pid = ""] = (await tmux("display-message", "-p", "-t", "t", "#{socket_path}\n#{pid}")).split("\n");
  const serverPid = Number(pid);
  let closed = false;
  let last = "";

  const screen = async (): Promise<string> => {
    // One tmux invocation, so the pane cannot die between the commands. Once the exit status is in (#{pane_dead_time} is set then, not
    // #{pane_dead}, which is set earlier, at the pty's EOF), tmux has scrolled the screen up one line and written "Pane is dead" on the bottom
    // line: undo that by taking the line scrolled into the history and dropping the bottom line.
    const [state, scrolled = "", ...visible] = (
      await tmux("display-message", "-p", "-t", "t", "#{?pane_dead_time,1,0}#{pane_dead}", ";", "capture-pane", "-p", "-t", "t", "-S", "-1", "-E", "-1", ";", "capture-pane", "-p", "-t", "t")
    ).split("\n");
    const lines = (state === "11" ? [scrolled, ...visible.slice(0, -1)] : visible).map((line) => line.trimEnd());
    // tmux uses libutempter, whose own SIGCHLD handler can swallow the program's SIGCHLD as the pty closes (tmux/tmux#311): then tmux never
    // collects the exit status. Nudge it while the pty is closed (#{pane_dead}) but no status is in.
    if (state === "01") process.kill(serverPid, "SIGCHLD");
    while (lines.length > 0 && lines.at(-1) === "") lines.pop();
    last = lines.join("\n");
    return last;
  };

  const poll = async <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await check();
      if (result !== undefined) return result;
      if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; the screen was:\n${last}`);
      await sleep(200);
    }
  };

  return {
    screen,
    waitFor: (match, timeoutMs = 60_000) =>
      poll(`the screen to match ${String(match)}`, timeoutMs, async () => {
        const now = await screen();
        return (typeof match === "string" ? now.includes(match) : typeof match === "function" ? match(now) : match.test(now)) ? now : undefined;
      }),
    exited: (timeoutMs = 120_000) =>
      poll("the program to exit", timeoutMs, async () => {
        await screen();
        const format = "#{?pane_dead_time,1,0} #{pane_dead_status} #{pane_dead_signal}";
        const [dead, status, signal] = (await tmux("display-message", "-p", "-t", "t", format)).split(" ");
        if (dead !== "1") return undefined;
        return status ? Number(status) : 128 + Number(signal);
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      await tmux("kill-server").catch(() => undefined);
      if (socketPath !== "") await rm(socketPath, { force: true });
    },
  };
}
