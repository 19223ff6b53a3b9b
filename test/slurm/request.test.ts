import { describe, expect, test } from "vitest";
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
});
