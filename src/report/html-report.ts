// One self-contained HTML file: uPlot (the charting library: canvas, made for
// large series, 52 KB), the page's script and the data, all inlined, so that it
// opens offline on a laptop or a login node.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { PAGE_CSS, PAGE_SCRIPT } from "./page.js";
import type { ReportData } from "./report-data.js";

let uplot: { js: string; css: string } | undefined;

/** uPlot's script and style, read once from its package. */
function uplotAssets(): { js: string; css: string } {
  if (!uplot) {
    const require = createRequire(import.meta.url);
    const js = readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
    const css = readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
    uplot = { js, css };
  }
  return uplot;
}

/** Text inside a `<script>` element: nothing in it may close the element. */
function scriptText(text: string): string {
  return text.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** The report's HTML. */
export function renderReport(data: ReportData): string {
  const { js, css } = uplotAssets();
  // JSON with every `<` escaped: the data cannot end its script element, whatever a task's stderr holds.
  const json = JSON.stringify(data)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
  const title = escapeHtml(data.title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${title}: slurmkit report</title>
<style>${css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<h1>${title}</h1>
<div class="sub">slurmkit report, made ${escapeHtml(data.generatedAt)}. Times and usage were measured on the nodes by slurmkit's runner.</div>
<h2>Totals</h2>
<div id="totals"></div>
<h2>What to ask for next time</h2>
<div id="suggestions"></div>
<h2>Timeline</h2>
<div class="sub">A lane per node and worker slot (packed) or per node track (one task per element). Drag to zoom; double-click to zoom out.</div>
<div id="timeline" class="chart"></div>
<h2>Distributions</h2>
<div class="grid"><div id="h-time"></div><div id="h-cpu"></div><div id="h-mem"></div></div>
<h2>Failures</h2>
<div id="failures"></div>
<div id="tip" class="tip"></div>
<script id="slurmkit-data" type="application/json">${json}</script>
<script>${scriptText(js)}</script>
<script>${scriptText(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}
