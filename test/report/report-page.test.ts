// `slurmkit report` and report(jobs, path) on a real run folder from the test
// cluster, opened in headless Chromium with the network off: it renders
// without console errors, draws one bar per task, and lists the failed tasks
// with their stderr. A screenshot is kept in test/.output/ for reviewers.
import { execa } from "execa";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser } from "playwright-core";
import { command, LocalTransport, report, SlurmExecutor, type Job } from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { explode } from "../fixtures/tasks.js";
import { useResources } from "../fixtures/usage.js";
import { launchBrowser, offlinePage, testOutput } from "../helpers/browser.js";
import { needCluster } from "../helpers/cluster.js";
import { runsFolder } from "../helpers/runs-folder.js";

const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

beforeAll(() => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
});

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
});

/** The page has drawn everything (a browser-side expression: these tests have no DOM types). */
const READY = "window.slurmkitReport !== undefined && window.slurmkitReport.ready === true";

/** What the page says it drew, once it is ready. */
interface Drawn {
  bars: number;
  attempts: number;
  failures: number;
  ready: boolean;
}

describe("the HTML report, opened in a real browser with the network off", () => {
  let folder: string;
  let jobs: Job<unknown>[];

  test("a run with one-per-element and packed tasks, three of them failed: every task a bar, every failure a row with its stderr", { timeout: 300_000 }, async (ctx) => {
    needCluster(ctx);
    browser = await launchBrowser(ctx);
    folder = await runsFolder();
    const executor = new SlurmExecutor({ folder, time: 2, mem: "200M" });
    const failing = command("/bin/bash", ["-c", "echo 'loading shard 7' >&2; echo 'shard 7 is corrupt: checksum mismatch' >&2; exit 3"]);
    const one = await executor.mapArray([
      useResources.with({ mb: 40, cpuSeconds: 0.5, holdMs: 1000 }),
      failing,
      explode.with("no such column: loss"),
      useResources.with({ mb: 10, cpuSeconds: 0.2, holdMs: 600 }),
    ]);
    const packed = await executor.mapArray([...Array.from({ length: 7 }, (_, i) => useResources.with({ mb: 10 * i, cpuSeconds: 0.1 * i, holdMs: 300 })), explode.with("packed task gave up")], {
      workers: 2,
      slots: 2,
    });
    jobs = [...one, ...packed];
    const states = await Promise.all(jobs.map((j) => j.wait()));
    expect(states.filter((s) => s !== "COMPLETED")).toHaveLength(3);

    const output = join(testOutput, "report.html");
    const r = await execa("node", [bin, "report", folder, "-o", output], { reject: false, env: { SLURM_CONF: process.env.SLURM_CONF, CI: "" } });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^Wrote .*report\.html \(\d+\.\d MiB\): 12 tasks, 3 failed$/);
    const html = await readFile(output, "utf8");
    // Self-contained: no URL it would load (the only http(s) text would be in the data, and there is none).
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);

    const { page, requests, errors } = await offlinePage(browser);
    await page.goto(`file://${output}`);
    await page.waitForFunction(READY, undefined, { timeout: 30_000 });
    const drawn = (await page.evaluate("window.slurmkitReport")) as Drawn;
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(drawn.bars).toBe(12);
    expect(drawn.failures).toBe(3);
    const rows = (await page.evaluate('Array.from(document.querySelectorAll("#failure-table tr.failure"), (tr) => Array.from(tr.querySelectorAll("td"), (td) => td.textContent))')) as string[][];
    expect(rows.map((r) => [r[2], r[3]]).sort()).toEqual([one[1]!, one[2]!, packed[7]!].map((j) => [j.id, "FAILED"]).sort());
    const byId = new Map(rows.map((r) => [r[2], r]));
    expect(byId.get(one[1]!.id)![5]).toBe("3");
    expect(byId.get(one[1]!.id)![7]).toContain("shard 7 is corrupt: checksum mismatch");
    expect(byId.get(one[2]!.id)![6]).toContain("no such column: loss");
    expect(byId.get(packed[7]!.id)![7]).toContain("packed task gave up");
    // The totals and the suggestion are there, and the charts drew on their canvases.
    await expect(page.textContent("#totals")).resolves.toMatch(/9 COMPLETED, 3 FAILED|3 FAILED, 9 COMPLETED/);
    await expect(page.textContent("#suggestions")).resolves.toContain("--slurm time=");
    expect(await page.evaluate('document.querySelectorAll("canvas").length')).toBe(4);
    await page.screenshot({ path: join(testOutput, "report.png"), fullPage: true });
    expect((await stat(join(testOutput, "report.png"))).size).toBeGreaterThan(10_000);
    await page.context().close();
  });

  test("report(jobs, path) from the SDK draws the same jobs", { timeout: 120_000 }, async (ctx) => {
    needCluster(ctx);
    if (!jobs) throw new Error("report(jobs, path) needs the jobs of the test before, which did not finish");
    browser ??= await launchBrowser(ctx);
    const path = join(testOutput, "sdk-report.html");
    const written = await report(jobs, path, { title: "SDK report" });
    expect(written).toMatchObject({ path, tasks: 12, attempts: 0, failures: 3 });
    const { page, requests, errors } = await offlinePage(browser);
    await page.goto(`file://${path}`);
    await page.waitForFunction(READY, undefined, { timeout: 30_000 });
    expect(((await page.evaluate("window.slurmkitReport")) as Drawn).bars).toBe(12);
    expect(await page.textContent("h1")).toBe("SDK report");
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.context().close();
  });
});
