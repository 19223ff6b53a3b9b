import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, test } from "vitest";
import { startTerminal, type Terminal } from "./terminal.js";

const opened: Terminal[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((terminal) => terminal.close()));
});

/** Starts a node program in a terminal that is closed after the test. */
async function node(source: string, options?: Parameters<typeof startTerminal>[1]): Promise<Terminal> {
  const terminal = await startTerminal([process.execPath, "-e", source], options);
  opened.push(terminal);
  return terminal;
}

/** Whether a process is gone (or a zombie nobody reaped). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true;
  }
}

describe("startTerminal", () => {
  test("shows a line redrawn in place while running and the final screen and exit status after exit", async () => {
    const terminal = await node(`
      const pause = () => new Promise((resolve) => setTimeout(resolve, 2000)); // long enough for a capture under load
      (async () => {
        process.stderr.write("progress 1/3");
        await pause();
        process.stderr.write("\\r\\x1b[Kprogress 2/3");
        await pause();
        process.stderr.write("\\r\\x1b[Kprogress 3/3\\n");
        await pause();
        console.log("done");
        process.exitCode = 4;
      })();
    `);
    const running = await terminal.waitFor("progress 2/3", 30_000);
    expect(running.split("\n").filter((line) => line.startsWith("progress"))).toEqual(["progress 2/3"]);
    expect(await terminal.exited(30_000)).toBe(4);
    const final = await terminal.screen();
    expect(final).toBe("progress 3/3\ndone");
    expect(final).not.toContain("progress 1/3");
    expect(final).not.toContain("Pane is dead");
  });

  test("gives the program a TTY, no CI and no TMUX unless asked, the env and the cwd", async () => {
    const saved = process.env.CI;
    process.env.CI = "true";
    let terminal: Terminal;
    try {
      terminal = await node(
        `console.log(process.stderr.isTTY + " " + (process.env.CI ?? "unset"));
         console.log("tmux=" + (process.env.TMUX ?? "unset"), process.env.GREETING, process.cwd());`,
        { env: { GREETING: "it's 'quoted' $HOME" }, cwd: "/tmp", cols: 80, rows: 5 },
      );
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
    expect(await terminal.exited(10_000)).toBe(0);
    expect(await terminal.screen()).toBe("true unset\ntmux=unset it's 'quoted' $HOME /tmp");

    const withCi = await node(`console.log(process.env.CI ?? "unset")`, { env: { CI: "1" } });
    expect(await withCi.exited(10_000)).toBe(0);
    expect(await withCi.screen()).toBe("1");
  });

  test("close() kills a long-running program and can be called twice", async () => {
    const terminal = await startTerminal(["sh", "-c", "echo pid=$$; exec sleep 1000"]);
    opened.push(terminal);
    const pid = Number(/pid=(\d+)/.exec(await terminal.waitFor(/pid=\d+/, 10_000))?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(gone(pid)).toBe(false);
    await terminal.close();
    for (let i = 0; i < 50 && !gone(pid); i++) await sleep(100);
    expect(gone(pid)).toBe(true);
    await expect(terminal.close()).resolves.toBeUndefined();
    await expect(terminal.screen()).rejects.toThrow();
  });

  test("keeps the screen of a program that exits at once", async () => {
    const terminal = await startTerminal(["sh", "-c", "printf 'a\\nb\\n'; exit 7"], { rows: 3 });
    opened.push(terminal);
    expect(await terminal.exited(10_000)).toBe(7);
    expect(await terminal.screen()).toBe("a\nb");
  });
});
