// nvidia-smi's answers, parsed as the runner parses them while a task runs.
// No GPU here: the inputs are real outputs recorded on GPUs and published
// (test/fixtures/nvidia-smi/README.md says where each comes from).
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { GpuTally, parseGpuFigure, parseGpuLine, visibleGpus } from "../../runner/gpu.js";

const recorded = (name: string) =>
  readFileSync(new URL(`../fixtures/nvidia-smi/${name}`, import.meta.url), "utf8")
    .split("\n")
    .filter((l) => l !== "");

/** The 8 TITAN X lines cut to the columns slurmkit asks for: index, uuid, utilization.gpu, memory.used (columns 0, 1, 4, 5 of that query). */
const titans = recorded("titan-x-8.csv").map((line) => {
  const f = line.split(", ");
  return [f[0], f[1], f[4], f[5]].join(", ");
});

describe("nvidia-smi samples of a task's GPUs", () => {
  test("a line of the query reads as index, uuid, utilisation and memory in use", () => {
    expect(parseGpuLine(titans[1]!)).toEqual({ index: "1", uuid: "GPU-86fe97db-bf54-a056-4e8d-9b07e1a298e7", utilPct: 86, memMb: 10032 });
    expect(titans.map(parseGpuLine).map((s) => s?.utilPct)).toEqual([0, 86, 85, 60, 84, 83, 83, 82]);
  });

  test("a task's GPUs, named by index or by UUID as CUDA_VISIBLE_DEVICES names them, are told from the others", () => {
    for (const devices of [
      ["1", "2"],
      ["GPU-86fe97db-bf54-a056-4e8d-9b07e1a298e7", "GPU-2090c509-a97a-e2fe-68f4-cf9e874c36f2"],
    ]) {
      const tally = new GpuTally(devices);
      // Two samples of the 8 GPUs, as -lms prints one line per GPU each time.
      for (const line of [...titans, ...titans]) tally.add(parseGpuLine(line)!);
      expect(tally.usage()).toEqual({ count: 2, utilPct: 85.5, memMb: 10032 + 6442, samples: 2 });
    }
    expect(new GpuTally(["9"]).usage()).toBeUndefined();
  });

  test("units, and the bracketed words nvidia-smi prints for a figure it cannot give, read as a number or as unknown", () => {
    const [header, first] = recorded("gtx-1080-units.csv").map((l) => l.split(", "));
    const column = (name: string) => header!.indexOf(name);
    expect(parseGpuFigure(first![column("utilization.gpu [%]")]!)).toBe(36);
    expect(parseGpuFigure(first![column("memory.used [MiB]")]!)).toBe(2856);
    const [migHeader, mig] = recorded("a100-mig.csv").map((l) => l.split(", "));
    expect(parseGpuFigure(mig![migHeader!.indexOf("utilization.gpu [%]")]!)).toBeUndefined();
    expect(parseGpuFigure(mig![migHeader!.indexOf("memory.used [MiB]")]!)).toBeUndefined();
    for (const word of ["[N/A]", "[Not Supported]", "[Unknown Error]", "[GPU is lost]", ""]) expect(parseGpuFigure(word)).toBeUndefined();
  });

  test("a GPU whose utilisation nvidia-smi cannot show (MIG) has its memory, and no utilisation, rather than 0 %", () => {
    const tally = new GpuTally(["0"]);
    tally.add({ index: "0", uuid: "MIG-1", utilPct: parseGpuFigure("[N/A]"), memMb: 512 });
    expect(tally.usage()).toEqual({ count: 1, memMb: 512, samples: 1 });
  });

  test("what is not a sample line is passed over: headers, errors, blank lines", () => {
    for (const line of [
      recorded("gtx-1080-units.csv")[0]!,
      "",
      "No devices were found",
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
      "0, GPU-1, 5",
    ]) {
      expect(parseGpuLine(line)).toBeUndefined();
    }
  });

  test("CUDA_VISIBLE_DEVICES: indices or UUIDs; unset, empty or Slurm's NoDevFiles means none", () => {
    expect(visibleGpus("0,1")).toEqual(["0", "1"]);
    expect(visibleGpus("GPU-86fe97db-bf54-a056-4e8d-9b07e1a298e7")).toEqual(["GPU-86fe97db-bf54-a056-4e8d-9b07e1a298e7"]);
    for (const none of [undefined, "", "NoDevFiles", "-1"]) expect(visibleGpus(none)).toEqual([]);
  });
});
