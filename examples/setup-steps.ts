// The flat-bug-style preamble, written with typed setup steps (the README's
// "Setup steps" section). Type-checked with the project; run it on a cluster
// with your own module names, wheelhouse and dataset.
import { atRuntime, command, modules, SlurmExecutor, stageIn, stageOut, venvPerNode } from "slurmkit";

export const executor = new SlurmExecutor({
  folder: "runs/compare-models",
  time: "01:00:00",
  gres: "gpu:t4:1",
  cpusPerTask: 12,
  mem: "32GB",
  setup: [
    modules(["python/3.11", "cuda/12.2"], { purge: true }),
    venvPerNode({ path: atRuntime("$SLURM_TMPDIR/env"), wheelhouse: "/project/wheels", requirements: "/project/requirements.txt" }),
    stageIn({ from: "/project/data/fb_yolo.zip", to: atRuntime("$SLURM_TMPDIR/fb_yolo"), unzip: true }),
    stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: "/project/results" }),
  ],
});

export const task = command("python3", ["compare.py", "-i", atRuntime("$SLURM_TMPDIR/fb_yolo/images/val"), "-o", atRuntime("$SLURM_TMPDIR/out")]);
