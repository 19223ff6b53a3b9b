// Each runtime's exact command line for one task, against golden files
// (test/fixtures/containers/<case>.sh) that shellcheck and bash -n check.
// Only podman runs here (test/slurm/container.test.ts): no package of
// apptainer, singularity, enroot or pyxis exists for these machines.
import { execa } from "execa";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { quoteShell } from "../../src/base/shell.js";
import { CONTAINER_RUNTIMES } from "../../src/protocol/container.js";
import { containerBinds, containerLine, physicalGpus, type ContainerCall, type ContainerNode, type NodeContainer } from "../../runner/container-line.js";

const golden = (name: string) => fileURLToPath(new URL(`../fixtures/containers/${name}.sh`, import.meta.url));

/** `python train.py` with one GPU, two binds (one read-only), a task variable, in /project/exp. */
const call: ContainerCall = { program: "python", args: ["train.py", "--lr", "3e-4", "it's $HOME"], env: { FOO: "1 2" }, cwd: "/project/exp" };
const node: ContainerNode = {
  env: { PATH: "/usr/bin:/bin", HOME: "/home/ada", SLURM_JOB_ID: "42", SLURMKIT_WORKER_ID: "42_0", CUDA_VISIBLE_DEVICES: "1", WANDB_API_KEY: "wandb-key-value", SECRET: "s" },
  gpus: ["3"],
  folders: ["/runs/sweep", "/scratch/local/42"],
  host: "gpu-07",
  root: false,
  pidFile: "/scratch/local/42/slurmkit-conmon-Ab12Cd/1.pid",
  cpus: [4, 5],
};
const box = (runtime: NodeContainer["runtime"], more: Partial<NodeContainer> = {}): NodeContainer => ({
  runtime,
  image: runtime === "enroot" || runtime === "pyxis" ? "/images/pytorch.sqsh" : runtime.startsWith("podman") ? "localhost/pytorch:2.3" : "/images/pytorch.sif",
  binds: ["/project", "/datasets:/data:ro"],
  passEnv: ["WANDB_*"],
  ...more,
});

/** The line as a shell would run it: the variables it sets (beyond the node's own), then the command, quoted. */
function rendered(c: NodeContainer, n: ContainerNode = node): string {
  const line = containerLine(c, call, n);
  const set = Object.entries(line.env)
    .filter(([k, v]) => n.env[k] !== v)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${quoteShell(v)}`);
  // One line per option with its value; the image and the command on their own.
  const words = line.args.map(quoteShell);
  const rows: string[] = [...set, line.program];
  for (const [i, w] of words.entries()) {
    const opens = line.args[i]!.startsWith("-") || line.args[i] === c.image || i === line.args.indexOf(call.program, line.args.indexOf(c.image) + 1);
    if (opens || rows.length === set.length + 1) rows.push(w);
    else rows[rows.length - 1] += ` ${w}`;
  }
  // SC2016: single quotes keep $HOME from expanding, on purpose.
  return `#!/bin/sh\n# shellcheck disable=SC2016\n# ${c.runtime}: python train.py in ${c.image}, as slurmkit's runner starts it\n${rows.join(" \\\n  ")}\n`;
}

const cases: Array<[string, NodeContainer, ContainerNode?]> = [
  ...CONTAINER_RUNTIMES.map((r): [string, NodeContainer] => [r, box(r)]),
  ["podman-as-root-writable-no-gpu", box("podman", { writable: true, gpus: false }), { ...node, root: true, gpus: [], cpus: [2, 3], memMb: 4096 }],
  ["apptainer-node-env", box("apptainer", { cleanEnv: false, writable: true, options: ["--no-home"] })],
];

describe("each runtime's command line", () => {
  for (const [name, c, n] of cases) {
    test(`${name}: the golden file's line, which shellcheck and bash -n pass`, async () => {
      const text = rendered(c, n);
      if (process.env.UPDATE_GOLDEN === "1") await writeFile(golden(name), text);
      expect(text).toBe(await readFile(golden(name), "utf8"));
      expect((await execa("bash", ["-n", golden(name)], { reject: false })).exitCode).toBe(0);
      const lint = await execa("shellcheck", ["-s", "sh", golden(name)], { reject: false });
      expect(lint.stdout).toBe("");
    });
  }

  test("values never reach argv: each runtime gets the task's variables through its environment", () => {
    for (const runtime of CONTAINER_RUNTIMES) {
      const line = containerLine(box(runtime), call, node);
      expect(line.args.join(" ")).not.toContain("1 2");
      expect(line.args.join(" ")).not.toContain("wandb-key-value");
      const prefix = runtime === "apptainer" ? "APPTAINERENV_" : runtime === "singularity" ? "SINGULARITYENV_" : "";
      expect(line.env[`${prefix}FOO`]).toBe("1 2");
      expect(line.env[`${prefix}WANDB_API_KEY`]).toBe("wandb-key-value");
      expect(line.env[`${prefix}SLURM_JOB_ID`]).toBe("42");
      // Not asked for: stays out where the runtime starts clean.
      if (prefix) expect(line.env[`${prefix}SECRET`]).toBeUndefined();
      expect(line.passed).not.toContain("SECRET");
    }
  });

  test("binds: each once, the working directory and the node's folders only where no bind holds them", () => {
    const c = box("podman", { binds: ["/project", "/project", "/datasets:/data:ro", "/scratch/local/42"] });
    expect(containerBinds(c, call, node)).toEqual([
      { src: "/project", dst: "/project", ro: false },
      { src: "/datasets", dst: "/data", ro: true },
      { src: "/scratch/local/42", dst: "/scratch/local/42", ro: false },
      { src: "/runs/sweep", dst: "/runs/sweep", ro: false },
    ]);
    // A bind elsewhere does not hold the working directory at its own path.
    expect(containerBinds(box("podman", { binds: ["/project:/p"] }), call, { ...node, folders: [] })).toEqual([
      { src: "/project", dst: "/p", ro: false },
      { src: "/project/exp", dst: "/project/exp", ro: false },
    ]);
  });

  test("a packed task's GPUs are named as the node names them: by position in the element's list, through SLURM_JOB_GPUS", () => {
    // Slurm confines devices and numbers them from 0; the node's GPUs 4-7; this slot has the element's third and fourth.
    expect(physicalGpus({ CUDA_VISIBLE_DEVICES: "2,3", SLURMKIT_ELEMENT_GPUS: "0,1,2,3", SLURM_JOB_GPUS: "4,5,6,7" })).toEqual(["6", "7"]);
    // One task per element: its own list is the element's.
    expect(physicalGpus({ CUDA_VISIBLE_DEVICES: "0,1", SLURM_JOB_GPUS: "2,3" })).toEqual(["2", "3"]);
    // A step's own list first (srun's ranks: the job's spans other nodes).
    expect(physicalGpus({ CUDA_VISIBLE_DEVICES: "0", SLURM_STEP_GPUS: "5", SLURM_JOB_GPUS: "1,5" })).toEqual(["5"]);
    // Without Slurm's list, as they are (UUIDs too); lists that do not match are no guess.
    expect(physicalGpus({ CUDA_VISIBLE_DEVICES: "GPU-a1" })).toEqual(["GPU-a1"]);
    expect(physicalGpus({ CUDA_VISIBLE_DEVICES: "0", SLURM_JOB_GPUS: "1,2" })).toBeUndefined();
    expect(physicalGpus({})).toEqual([]);
    // Inside podman's CDI devices the task's GPUs are numbered from 0.
    const line = containerLine(box("podman"), call, { ...node, gpus: ["6", "7"], env: { ...node.env, CUDA_VISIBLE_DEVICES: "2,3" } });
    expect(line.args.filter((a) => a.startsWith("nvidia.com/gpu="))).toEqual(["nvidia.com/gpu=6", "nvidia.com/gpu=7"]);
    expect(line.env.CUDA_VISIBLE_DEVICES).toBe("0,1");
  });
});
