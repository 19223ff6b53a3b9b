import { ParameterError } from "../base/errors.js";
import { containerProblems, containerRecord, type ContainerRecord } from "../protocol/container.js";
import { shellWord } from "../protocol/runtime-value.js";
import { type SetupStep, step } from "./step.js";

/** Options of container(): the container (see ContainerRecord), and where slurmkit's runner runs. */
export interface ContainerOptions extends ContainerRecord {
  /**
   * Run slurmkit's runner inside the image too, for images that hold Node.js
   * at `nodeBinary` (apptainer and singularity only). Function tasks then
   * run inside; the run folder must be bound, and the node's environment
   * passes in (the runner needs Slurm's variables). @default false: the runner
   * stays on the node's Node.js and starts each command task in the image.
   */
  readonly runnerInside?: boolean;
}

/**
 * Runs the submission's command tasks in a container: apptainer,
 * singularity, podman, podman-hpc, enroot, or enroot through pyxis (`srun
 * --container-image`). slurmkit's runner stays outside, on the node's
 * Node.js (the image needs none): it starts each command through the
 * runtime, and keeps time limits, signals, requeues, logs, results and usage
 * as for any task. Function tasks run in the runner; they reach the image
 * through `ctx.container.exec()`. A command's own `container` option
 * replaces this one for that task.
 *
 * @example
 * container({ runtime: "apptainer", image: "/project/pytorch.sif", binds: ["/project", "/datasets:/data:ro"] })
 */
export function container(options: ContainerOptions): SetupStep {
  const problems = containerProblems(options);
  if (options?.runnerInside && options.runtime !== "apptainer" && options.runtime !== "singularity") {
    problems.push(`\`runnerInside\` works with apptainer and singularity only, got runtime \`${String(options.runtime)}\``);
  }
  if (problems.length) throw new ParameterError("container step", problems);
  if (!options.runnerInside) return step("container", { container: containerRecord(options) });
  return step("container", {
    wrap: [
      options.runtime,
      "exec",
      ...(options.gpus ? ["--nv"] : []),
      ...(options.writable ? ["--writable-tmpfs"] : []),
      ...(options.binds ?? []).flatMap((b) => ["--bind", shellWord(b)]),
      ...(options.options ?? []).map((o) => shellWord(o)),
      shellWord(options.image),
    ],
  });
}
