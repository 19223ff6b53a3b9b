import { shellWord, type LateString } from "../protocol/runtime-value.js";
import { type SetupStep, step, check, need } from "./step.js";

/** Options of container(). */
export interface ContainerOptions {
  readonly runtime: "apptainer" | "singularity";
  /** The image: a .sif file or a URI the runtime accepts. */
  readonly image: LateString;
  /** Bind mounts, `src` or `src:dest` (the run folder must be visible inside). */
  readonly binds?: readonly LateString[];
  /** `--nv`: make NVIDIA GPUs visible. @default false */
  readonly nv?: boolean;
}

/**
 * Runs the runner (and so the tasks) inside an Apptainer or Singularity
 * container. The image must have Node.js at `nodeBinary`.
 *
 * @example
 * container({ runtime: "apptainer", image: "/project/env.sif", binds: ["/project"], nv: true })
 */
export function container(options: ContainerOptions): SetupStep {
  const problems: string[] = [];
  if (options.runtime !== "apptainer" && options.runtime !== "singularity") {
    problems.push(`Expected \`runtime\` to be "apptainer" or "singularity", got \`${String(options.runtime)}\``);
  }
  need(problems, "image", options.image);
  for (const [i, b] of (options.binds ?? []).entries()) need(problems, `binds[${i}]`, b, "a bind such as `/project` or `/data:/data`");
  check("container", problems);
  return step("container", {
    wrap: [options.runtime, "exec", ...(options.nv ? ["--nv"] : []), ...(options.binds ?? []).flatMap((b) => ["--bind", shellWord(b)]), shellWord(options.image)],
  });
}
