// The report page's own style and script, inlined into the HTML with uPlot
// (the charting library) and the data. The script runs in the browser: plain
// ES2020, no imports, no network. It sets `window.slurmkitReport` to what it
// drew (bars per task, attempts, failure rows), for tests and for the curious.

/** The page's CSS (uPlot's own is inlined beside it). */
export const PAGE_CSS = `
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d232a; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #dde2e7; padding-bottom: 4px; }
.sub { color: #5b6670; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { font-weight: 600; color: #3b4650; border-bottom: 1px solid #dde2e7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { margin: 2px 0; font-size: 12px; background: #f5f7f9; padding: 4px 6px; max-width: 900px; overflow-x: auto; white-space: pre-wrap; }
code { background: #f5f7f9; padding: 1px 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; }
.note { color: #8a5a00; }
.tip { position: fixed; pointer-events: none; background: #1d232a; color: #fff; font-size: 12px; padding: 4px 8px; border-radius: 3px; display: none; z-index: 10; white-space: pre; }
.chart { margin: 4px 0; }
`;

/** The page's script: reads the data, fills the totals, draws the charts with uPlot, lists the failures. */
export const PAGE_SCRIPT = String.raw`
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("slurmkit-data").textContent);
  var T = data.tasks, n = T.start.length;
  var COLORS = { COMPLETED: "#2e9e5b", FAILED: "#d1453b", CANCELLED: "#8a8f98", TIMEOUT: "#e08a1e", OUT_OF_MEMORY: "#9c3bd1", NODE_FAIL: "#5a3d2b", PREEMPTED: "#3b7dd8", BOOT_FAIL: "#5a3d2b", DEADLINE: "#e08a1e", UNKNOWN: "#444" };
  var drawn = { bars: 0, attempts: 0, failures: 0 };
  window.slurmkitReport = drawn;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmtDur(s) {
    if (!isFinite(s)) return "";
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.round((s % 3600) / 60)).padStart(2, "0") + " min";
  }
  function fmtMb(mb) { return mb >= 10240 ? (mb / 1024).toFixed(1) + " GiB" : Math.round(mb) + " MiB"; }
  function pct(x) { return Math.round(x * 100) + "%"; }
  function cpusOf(sub) { var r = data.submissions[sub].requested; return r ? r.cpus : 1; }

  // Totals.
  var byState = {}, cpuMs = 0, heldCpu = 0, heldGpu = 0, end = 0, final = 0;
  for (var i = 0; i < n; i++) {
    if (T.end[i] > end) end = T.end[i];
    if (T.attempt[i] !== 0) continue;
    final++;
    var st = data.states[T.state[i]];
    byState[st] = (byState[st] || 0) + 1;
    var wall = (T.end[i] - T.start[i]) / 1000, req = data.submissions[T.sub[i]].requested;
    // CPU held counts the measured tasks only, as their CPU time does.
    if (T.cpu[i] >= 0) { cpuMs += T.cpu[i]; heldCpu += wall * (req ? req.cpus : 1); }
    heldGpu += wall * (req && req.gpus ? req.gpus : 0);
  }
  for (var s in data.notRun) byState[s] = data.notRun[s];
  var totals = document.getElementById("totals");
  var tt = el("table");
  function row(k, v) { var r = el("tr"); r.appendChild(el("th", {}, k)); r.appendChild(el("td", {}, v)); tt.appendChild(r); }
  row("Tasks", Object.keys(byState).map(function (k) { return byState[k] + " " + k; }).join(", ") || "none");
  row("Wall time", fmtDur(end / 1000) + " from the first start to the last end");
  row("CPU time", heldCpu ? fmtDur(cpuMs / 1000) + " used of " + fmtDur(heldCpu) + " held: wall time × the CPUs asked for (" + pct(cpuMs / 1000 / heldCpu) + ")" : "not measured");
  row("GPU time", heldGpu ? fmtDur(heldGpu) + " held: wall time × the GPUs asked for" : "none asked for");
  totals.appendChild(tt);
  var sugg = document.getElementById("suggestions");
  data.submissions.forEach(function (sub) {
    var g = sub.suggestion;
    sugg.appendChild(el("h3", {}, sub.id + ": " + g.tasks + " ended, " + g.measured + " measured"));
    if (g.flags.length) {
      var p = el("p");
      p.appendChild(el("code", {}, "--slurm " + g.flags.join(" ")));
      sugg.appendChild(p);
    }
    g.notes.forEach(function (note) { sugg.appendChild(el("p", { class: "note" }, note)); });
  });

  // Timeline: a lane per node and worker slot (or node track), each task a bar coloured by how it ended.
  var lanes = data.lanes;
  var states = data.states;
  // Rectangles each series drew in the last draw (by series index): what the timeline shows, counted.
  var rects = {};
  function barPaths(match) {
    return function (u, seriesIdx) {
      var p = new Path2D(), xmin = u.scales.x.min, xmax = u.scales.x.max, added = 0;
      var h = Math.max(1, Math.min(18, (u.bbox.height / lanes.length) * 0.8));
      for (var i = 0; i < n; i++) {
        if (!match(i)) continue;
        var a = T.start[i] / 1000, b = T.end[i] / 1000;
        if (b < xmin || a > xmax) continue;
        var x0 = u.valToPos(Math.max(a, xmin), "x", true), x1 = u.valToPos(Math.min(b, xmax), "x", true);
        var y = u.valToPos(T.lane[i], "y", true);
        // A pixel's gap at each bar's end, so that back-to-back tasks on one lane stay apart.
        p.rect(x0, y - h / 2, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), h);
        added++;
      }
      rects[seriesIdx] = added;
      return { fill: p, stroke: null };
    };
  }
  var timelineSeries = [{}];
  states.forEach(function (st, k) {
    timelineSeries.push({ label: st, fill: COLORS[st] || "#444", stroke: COLORS[st] || "#444", width: 0, points: { show: false },
      paths: barPaths(function (i) { return T.attempt[i] === 0 && T.state[i] === k; }) });
  });
  var hasAttempts = T.attempt.some(function (a) { return a > 0; });
  if (hasAttempts) {
    timelineSeries.push({ label: "earlier attempt (requeued)", fill: "rgba(59,125,216,0.35)", stroke: "#3b7dd8", width: 0, points: { show: false },
      paths: barPaths(function (i) { return T.attempt[i] > 0; }) });
  }
  var xmax = Math.max(1, end / 1000);
  var tlData = [[0, xmax]];
  for (var s2 = 1; s2 < timelineSeries.length; s2++) tlData.push([null, null]);
  var tlEl = document.getElementById("timeline");
  var laneHeight = Math.max(180, Math.min(900, lanes.length * 18 + 60));
  var timeline = new uPlot({
    width: Math.min(1400, window.innerWidth - 60), height: laneHeight,
    legend: { live: false },
    cursor: { drag: { x: true, y: false }, points: { show: false } },
    scales: { x: { time: false }, y: { range: [-0.5, lanes.length - 0.5] } },
    axes: [
      { label: "seconds from the first start" },
      { size: 170, splits: function () { var out = [], step = Math.max(1, Math.ceil(lanes.length / 40)); for (var i = 0; i < lanes.length; i += step) out.push(i); return out; },
        values: function (u, splits) { return splits.map(function (v) { return lanes[v] || ""; }); } },
    ],
    series: timelineSeries,
    hooks: { draw: [function () {
      var bars = 0;
      for (var k = 1; k <= states.length; k++) bars += rects[k] || 0;
      drawn.bars = bars;
      drawn.attempts = hasAttempts ? rects[states.length + 1] || 0 : 0;
    }] },
  }, tlData, tlEl);
  // Which task is under the cursor: the bars of its lane, searched in time.
  var byLane = lanes.map(function () { return []; });
  for (var i2 = 0; i2 < n; i2++) byLane[T.lane[i2]].push(i2);
  var tip = document.getElementById("tip");
  timeline.over.addEventListener("mousemove", function (ev) {
    var lane = Math.round(timeline.posToVal(ev.offsetY, "y")), t = timeline.posToVal(ev.offsetX, "x") * 1000, hit = -1;
    var list = byLane[lane] || [];
    for (var j = 0; j < list.length; j++) { var q = list[j]; if (T.start[q] <= t && t <= T.end[q]) { hit = q; break; } }
    if (hit < 0) { tip.style.display = "none"; return; }
    var sub = data.submissions[T.sub[hit]];
    tip.textContent = sub.id + " task " + T.task[hit] + (T.attempt[hit] ? " (attempt " + (T.attempt[hit] - 1) + ", requeued)" : "") + "\n" + states[T.state[hit]] + " on " + data.nodes[T.node[hit]] +
      "\nwall " + fmtDur((T.end[hit] - T.start[hit]) / 1000) + (T.cpu[hit] >= 0 ? ", CPU " + fmtDur(T.cpu[hit] / 1000) : "") + (T.mem[hit] >= 0 ? ", peak " + fmtMb(T.mem[hit] / 1024) : "");
    tip.style.left = ev.clientX + 14 + "px"; tip.style.top = ev.clientY + 14 + "px"; tip.style.display = "block";
  });
  timeline.over.addEventListener("mouseleave", function () { tip.style.display = "none"; });

  // Distributions, with the limits the tasks asked for drawn on them.
  function limitsOf(get) {
    var out = [];
    data.submissions.forEach(function (s) { var v = s.requested ? get(s.requested) : undefined; if (v !== undefined && out.indexOf(v) < 0) out.push(v); });
    return out;
  }
  function histogram(target, title, unit, values, limits, limitLabel, clip) {
    var box = document.getElementById(target);
    var clipped = 0;
    if (clip) for (var c = 0; c < values.length; c++) if (values[c] > clip) { values[c] = clip; clipped++; }
    box.appendChild(el("div", { class: "sub" }, title + " (" + values.length + " tasks" + (clipped ? "; " + clipped + " above " + clip + " in the last bar" : "") + ")"));
    if (values.length === 0) { box.appendChild(el("p", { class: "sub" }, "nothing measured")); return; }
    var max = 0;
    for (var i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
    limits.forEach(function (l) { if (l > max) max = l; });
    max = max > 0 ? max * 1.02 : 1;
    var bins = 40, width = max / bins, xs = [], ys = [];
    for (var b = 0; b < bins; b++) { xs.push((b + 0.5) * width); ys.push(0); }
    for (var j = 0; j < values.length; j++) ys[Math.min(bins - 1, Math.floor(values[j] / width))]++;
    new uPlot({
      width: 420, height: 230, legend: { show: false }, cursor: { points: { show: false } },
      scales: { x: { time: false, range: [0, max] }, y: { range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.1]; } } },
      axes: [{ label: unit }, { label: "tasks", size: 50, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] }],
      series: [{}, { fill: "#4c78a8", stroke: "#4c78a8", points: { show: false }, paths: uPlot.paths.bars({ size: [0.9, 60], align: 0 }) }],
      hooks: { draw: [function (u) {
        var ctx = u.ctx;
        limits.forEach(function (l) {
          var x = u.valToPos(l, "x", true);
          ctx.save(); ctx.strokeStyle = "#d1453b"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2 * devicePixelRatio;
          ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
          ctx.fillStyle = "#d1453b"; ctx.font = 12 * devicePixelRatio + "px system-ui"; ctx.textAlign = "right";
          ctx.fillText(limitLabel(l), x - 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
          ctx.restore();
        });
      }] },
    }, [xs, ys], box);
  }
  var walls = [], effs = [], mems = [];
  for (var i3 = 0; i3 < n; i3++) {
    if (T.attempt[i3] !== 0) continue;
    var w = (T.end[i3] - T.start[i3]) / 1000;
    walls.push(w);
    if (T.cpu[i3] >= 0 && w > 0) effs.push((T.cpu[i3] / 1000 / (w * cpusOf(T.sub[i3]))) * 100);
    if (T.mem[i3] >= 0) mems.push(T.mem[i3] / 1024);
  }
  histogram("h-time", "Run time", "seconds", walls, limitsOf(function (r) { return r.timeSeconds; }), function (l) { return "time " + fmtDur(l); });
  // Tasks of a few ms show hundreds of percent (CPU time counts in 10 ms ticks): they go in the last bar.
  histogram("h-cpu", "CPU efficiency", "% of the CPUs asked for", effs, [100], function () { return "100%"; }, 200);
  histogram("h-mem", "Peak memory", "MiB", mems, limitsOf(function (r) { return r.memMb; }), function (l) { return "mem " + fmtMb(l); });

  // Failures.
  var ft = document.getElementById("failures");
  if (data.failures.length === 0) ft.appendChild(el("p", { class: "sub" }, "No task failed."));
  else {
    var table = el("table", { id: "failure-table" });
    var head = el("tr");
    ["submission", "task", "id", "state", "node", "exit", "error", "last lines of stderr"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(head);
    data.failures.forEach(function (f) {
      var r = el("tr", { class: "failure" });
      r.appendChild(el("td", {}, f.submission));
      r.appendChild(el("td", { class: "n" }, String(f.task)));
      r.appendChild(el("td", {}, f.id));
      var s = el("td", {}, f.state); s.style.color = COLORS[f.state] || "#444"; r.appendChild(s);
      r.appendChild(el("td", {}, f.node));
      r.appendChild(el("td", { class: "n" }, f.exitCode !== null ? String(f.exitCode) : f.signal || ""));
      r.appendChild(el("td", {}, f.message));
      var c = el("td"); if (f.tail) c.appendChild(el("pre", {}, f.tail)); r.appendChild(c);
      table.appendChild(r);
      drawn.failures++;
    });
    ft.appendChild(table);
  }
  drawn.ready = true;
})();
`;
