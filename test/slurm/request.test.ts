import { describe, expect, test } from "vitest";
import { atRuntime, container, modules } from "../../src/index.js";
import { packr } from "../../src/protocol/codec.js";
import { decodeRequest, encodeRequest } from "../../src/slurm/request.js";

describe("a submission's request, kept for reruns", () => {
  const request = { parameters: { time: 5, mem: "100M" }, array: true, packing: { workers: 2 }, runner: ["/usr/bin/node", "/home/ada/sweep/node_modules/slurmkit/dist/src/slurm/runner.js"] as const };

  test("round-trips its parameters, packing and runner", () => {
    expect(decodeRequest(encodeRequest(request), "/runs/x/request")).toEqual(request);
  });

  test("the installed runner of an older slurmkit (dist/runner/runner.js) is read as the same package's Slurm entry; a bundled one is kept", () => {
    const old = { ...request, runner: ["/usr/bin/node", "/home/ada/sweep/node_modules/slurmkit/dist/runner/runner.js"] as const };
    expect(decodeRequest(encodeRequest(old), "/runs/x/request").runner).toEqual(request.runner);
    const bundled = { ...request, runner: ["node", "/runs/code/runner-0123456789abcdef.mjs"] as const };
    expect(decodeRequest(encodeRequest(bundled), "/runs/x/request").runner).toEqual(bundled.runner);
  });

  test("a container step keeps its container, runtime values included, so that a rerun's tasks run in the same image; a corrupt one is refused", () => {
    const step = container({ runtime: "podman", image: "localhost/pytorch:2.3", binds: [atRuntime("$SLURM_TMPDIR/data"), "/project:/p:ro"], passEnv: ["WANDB_*"], gpus: false });
    const withSetup = { ...request, parameters: { ...request.parameters, setup: [modules(["cuda/12"]), step] } };
    const back = decodeRequest(encodeRequest(withSetup), "/runs/x/request");
    const steps = back.parameters.setup as (typeof step)[];
    expect(steps[1]!.container).toEqual(step.container);
    expect(steps[0]!.container).toBeUndefined();
    const bytes = packr.pack({
      version: 1,
      parameters: {},
      setup: [{ kind: "container", batch: [], rank: [], exit: [], wrap: [], container: { runtime: "docker", image: "x" } }],
      array: true,
      packing: {},
      runner: ["n", "r"],
    });
    expect(() => decodeRequest(bytes, "/runs/x/request")).toThrow("/runs/x/request is not a slurmkit request file");
  });
});
