import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { inject, type TestContext } from "vitest";

/** The headless Chromium the global setup found (or installed). */
export interface BrowserInfo {
  available: boolean;
  reason: string;
  path: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    browser: BrowserInfo;
  }
}

/** Where tests keep what reviewers may want to see (screenshots); not committed. */
export const testOutput = fileURLToPath(new URL("../.output/", import.meta.url));

/** Chromium, or a skip (a failure with CI=true) that says why there is none. */
export async function launchBrowser(ctx: TestContext): Promise<Browser> {
  const info = inject("browser");
  if (!info.available) {
    if (process.env.CI === "true") throw new Error(`No headless Chromium: ${info.reason}`);
    ctx.skip(`no headless Chromium: ${info.reason}`);
  }
  await mkdir(testOutput, { recursive: true });
  // As root in a container, Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: info.path, args: ["--no-sandbox"] });
}

/** A page with the network off: the context is offline, and any request but for the file itself is refused and counted. */
export async function offlinePage(browser: Browser): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, offline: true });
  const requests: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    requests.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => {
    if (!r.url().startsWith("file:")) requests.push(r.url());
  });
  return { page, requests, errors };
}
