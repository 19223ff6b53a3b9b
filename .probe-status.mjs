import { readFileSync } from "node:fs";
const t0 = performance.now();
const { loadJobs } = await import("./dist/src/sdk/load-jobs.js");
const { reloadOf } = await import("./dist/src/sdk/schedulers.js");
const { LocalTransport } = await import("./dist/src/transport/local.js");
const { summaryOf } = await import("./dist/src/report/views.js");
const lap = (s) => console.log(s, (performance.now() - t0).toFixed(0));
lap("import");
const folder = readFileSync("/tmp/mfolder", "utf8").trim();
const transport = new LocalTransport();
const jobs = await loadJobs(folder, { transport });
lap(`loadJobs ${jobs.length}`);
const { watcher } = reloadOf("slurm", transport, folder);
await watcher.pollNow(); lap("poll1");
await watcher.pollNow(); lap("poll2");
const s = summaryOf(jobs); lap("summary");
console.log(JSON.stringify(s).slice(0, 200));
process.exit(0)
