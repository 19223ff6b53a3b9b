// flat-bug's compare-models flow in TypeScript. One "compare model" task per
// model runs as an array; a finalizer runs after all of them (afterok) and
// writes a summary; the results come back through the job futures.
//
//   npx tsx compare-models.ts -i work/fb_yolo/images/val -o out            # here, no Slurm
//   npx tsx compare-models.ts -i '$SLURM_TMPDIR/fb_yolo/images/val' -o out \
//     --slurm slurm_setup=setup.txt cpus_per_task=1 mem=500M time=00:10:00
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { atRuntime, command, executorFromFlags, parseSlurmFlags, progress, stageOut, type LateString } from "slurmkit";

const here = dirname(fileURLToPath(import.meta.url));
const MODELS = ["yolov8n", "yolov8s", "yolov8m", "flatbug-l"];

const flags = parseSlurmFlags(process.argv.slice(2));
const { values } = parseArgs({
  args: flags.rest,
  options: {
    input: { type: "string", short: "i" },
    output: { type: "string", short: "o", default: "out" },
    runs: { type: "string", default: "runs" },
  },
});
if (!values.input) throw new Error("Expected -i <images folder>, such as -i '$SLURM_TMPDIR/fb_yolo/images/val'");
const onSlurm = flags.parameters !== undefined;
const output = resolve(values.output);

// -i arrives as the literal text `$SLURM_TMPDIR/...` (single-quoted in the shell).
// atRuntime() makes it a runtime value on purpose: expanded by the runner on the
// node, passed as one argv element, never through a shell.
const input: LateString = onSlurm ? atRuntime(values.input) : resolve(values.input);
// On Slurm, tasks write to node-local scratch and stageOut copies it back to
// <output>/<job id>/results/ when each array element ends.
const results: LateString = onSlurm ? atRuntime("$SLURM_TMPDIR/results") : join(output, "local", "results");

const executor = executorFromFlags(flags, {
  folder: values.runs,
  jobName: "compare-models",
  ...(onSlurm ? { setup: [stageOut({ from: results, to: output })] } : {}),
});
// On a node the setup file activates the venv it built; here, prepare.ts made work/env.
const python = onSlurm ? "python3" : join(here, "work", "env", "bin", "python3");
const compare = MODELS.map((model) => command(python, [join(here, "compare_model.py"), "--model", model, "-i", input, "-o", results]));
console.log(`Comparing ${MODELS.length} models ${onSlurm ? "on Slurm" : "on this machine"}; run folder ${executor.folder}`);
const jobs = await executor.mapArray(compare);

const summaryFile = join(output, "summary.json");
// As flat-bug's finalizer: no GPU, one CPU, an hour; no setup file, and no dependency but its own.
const { gres: _gres, gpusPerNode: _gpus, dependency: _dependency, ...shared } = flags.parameters ?? {};
const finalizer = executorFromFlags(
  { ...flags, parameters: onSlurm ? { ...shared, cpusPerTask: 1, time: "01:00:00" } : undefined, setup: [] },
  { folder: values.runs, jobName: "compare-models-summary" },
);
const staged = onSlurm ? jobs.map((job) => join(output, job.id)) : [join(output, "local")];
const summary = await finalizer.submit(command(python, [join(here, "summarize.py"), summaryFile, ...staged]), { after: jobs });
progress([...jobs, summary]);

interface Comparison {
  model: string;
  images: number;
  score: number;
  input: string;
  node: string;
  python: string;
}
const rows: Comparison[] = [];
for (const job of jobs) {
  await job.result(); // throws TaskFailedError (with the log path) if the task failed
  const lastLine = (await job.stdout()).trim().split("\n").at(-1)!;
  rows.push(JSON.parse(lastLine) as Comparison);
}
await summary.result();
console.log(`${(await summary.stdout()).trim()} (${summaryFile})`);

console.log(["job", "model", "images", "score", "node", "input (bound on the node)"].join("\t"));
for (const [i, r] of rows.entries()) console.log([jobs[i]!.id, r.model, r.images, r.score.toFixed(4), r.node, r.input].join("\t"));
