import { z } from "zod";
import { RunFolderError } from "../base/errors.js";
import { packr } from "../protocol/codec.js";
import { containerProblems, type ContainerRecord } from "../protocol/container.js";
import { isSetupStep, type SetupStep } from "../setup/index.js";
import { step } from "../setup/step.js";
import type { SlurmParametersInput } from "./parameters.js";
import type { PackingOptions } from "./packing.js";

/** What a Slurm submission was asked with, kept in its folder so that its tasks can be run again (`rerun`). */
export interface SubmissionRequest {
  /** The parameters as given (merged, not yet validated). */
  readonly parameters: SlurmParametersInput;
  /** mapArray (an array job) or submit. */
  readonly array: boolean;
  /** mapArray's packing options. */
  readonly packing: PackingOptions;
  /** The node binary and the runner's path on the cluster. */
  readonly runner: readonly [string, string];
}

const REQUEST_VERSION = 1;
const lines = z.array(z.string());
const stepSchema = z.object({
  kind: z.string(),
  batch: lines,
  rank: lines,
  exit: lines,
  wrap: lines,
  container: z.custom<ContainerRecord>((v) => containerProblems(v).length === 0, "not a container record").optional(),
});
const requestSchema = z.object({
  version: z.literal(REQUEST_VERSION),
  parameters: z.record(z.string(), z.unknown()),
  setup: z.array(z.union([z.string(), stepSchema])).optional(),
  array: z.boolean(),
  packing: z.object({ tasksPerElement: z.unknown(), workers: z.unknown(), slots: z.unknown() }).partial(),
  runner: z.tuple([z.string(), z.string()]),
});

/** The request file's bytes; setup steps are kept as their rendered lines. */
export function encodeRequest(request: SubmissionRequest): Buffer {
  const { setup, ...parameters } = request.parameters;
  const steps = setup?.map((s: string | SetupStep) =>
    isSetupStep(s) ? { kind: s.kind, batch: s.batch, rank: s.rank, exit: s.exit, wrap: s.wrap, ...(s.container ? { container: s.container } : {}) } : s,
  );
  return packr.pack({ version: REQUEST_VERSION, parameters, ...(steps ? { setup: steps } : {}), array: request.array, packing: request.packing, runner: request.runner });
}

/** Decodes a request file; a corrupt or foreign one is a RunFolderError naming `path`. */
export function decodeRequest(bytes: Uint8Array, path: string): SubmissionRequest {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (error) {
    throw new RunFolderError(path, `${path} is not a readable slurmkit request file (${(error as Error).message})`, { cause: error });
  }
  const parsed = requestSchema.safeParse(value);
  if (!parsed.success) throw new RunFolderError(path, `${path} is not a slurmkit request file: ${parsed.error.issues[0]?.message ?? "unexpected content"}`);
  const { parameters, setup, array, packing, runner } = parsed.data;
  const steps = setup?.map((s) => (typeof s === "string" ? s : step(s.kind, s)));
  // Before each scheduler had a runner entry, an installed runner (bundle: false) was dist/runner/runner.js; the same package's is now its Slurm entry.
  const entry: readonly [string, string] = [runner[0], runner[1].replace(/\/dist\/runner\/runner\.js$/, "/dist/src/slurm/runner.js")];
  return { parameters: { ...(parameters as SlurmParametersInput), ...(steps ? { setup: steps } : {}) }, array, packing, runner: entry };
}
