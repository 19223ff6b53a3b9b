import { describe, expect, test } from "vitest";
import { parseCpuList, shareSlots } from "../../runner/resources.js";
import { parseParameters, scaleForSlots, toSbatchOptions } from "../../src/slurm/parameters.js";

describe("each slot's share of a worker", () => {
  test("CPU lists", () => {
    expect(parseCpuList("0-3,8,10-11")).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList("5")).toEqual([5]);
    expect(parseCpuList("x")).toEqual([]);
  });

  test("GPUs split evenly between slots; CPUs are pinned only when the process may use exactly the element's CPUs", () => {
    expect(shareSlots(2, 2, "0,1", [4, 5, 6, 7])).toEqual([
      { gpus: ["0"], cpus: [4, 5] },
      { gpus: ["1"], cpus: [6, 7] },
    ]);
    // A node that shows all its CPUs: no pinning, or every element would pin to CPUs 0 and 1.
    expect(shareSlots(2, 1, "0,1,2,3", [0, 1, 2, 3, 4, 5, 6, 7])).toEqual([
      { gpus: ["0", "1"], cpus: undefined },
      { gpus: ["2", "3"], cpus: undefined },
    ]);
    // GPUs that do not divide evenly, or none: left as Slurm set them.
    expect(shareSlots(2, 1, "0,1,2", [0, 1])).toEqual([
      { gpus: undefined, cpus: [0] },
      { gpus: undefined, cpus: [1] },
    ]);
    expect(shareSlots(1, 4, undefined, [0, 1, 2, 3])).toEqual([{ gpus: undefined, cpus: undefined }]);
  });

  test("a worker asks for slots times one task's CPUs, memory and every gres count", () => {
    const p = parseParameters({ cpusPerTask: 3, mem: "2G", gres: "gpu:a100:1,tmpdisk:10G,gpu", gpusPerNode: "a100:2", time: 10 });
    expect(toSbatchOptions(scaleForSlots(p, 2))).toEqual([
      ["cpus-per-task", "6"],
      ["gpus-per-node", "a100:4"],
      ["gres", "gpu:a100:2,tmpdisk:20G,gpu:2"],
      ["time", "00:10:00"],
      ["mem", "4G"],
    ]);
    // Memory per CPU stays as it is: the CPUs it multiplies are scaled.
    expect(toSbatchOptions(scaleForSlots(parseParameters({ cpusPerTask: 3, memPerCpu: 500 }), 2))).toEqual([
      ["cpus-per-task", "6"],
      ["mem-per-cpu", "500M"],
    ]);
    expect(scaleForSlots(p, 1)).toBe(p);
  });
});
