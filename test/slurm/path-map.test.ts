import { describe, expect, test } from "vitest";
import { checkPathMap, mapPath, mapRecords } from "../../src/slurm/path-map.js";
import type { TaskRecord } from "../../src/core/tasks.js";

describe("path maps", () => {
  const map = { "/Users/ada/sweep": "/home/ada/sweep", "/Users/ada/sweep/vendor/": "/scratch/vendor", "/Users/ada/lib": "/opt/lib" };

  test("the longest matching prefix wins, at path-segment boundaries only", () => {
    expect(mapPath("/Users/ada/sweep/tasks.ts", map)).toBe("/home/ada/sweep/tasks.ts");
    expect(mapPath("/Users/ada/sweep", map)).toBe("/home/ada/sweep");
    expect(mapPath("/Users/ada/sweep/vendor/x/y.js", map)).toBe("/scratch/vendor/x/y.js");
    expect(mapPath("/Users/ada/sweeping/tasks.ts", map)).toBe("/Users/ada/sweeping/tasks.ts");
    expect(mapPath("/elsewhere/a.ts", map)).toBe("/elsewhere/a.ts");
    expect(mapPath("/any/thing", { "/": "/mnt/laptop" })).toBe("/mnt/laptop/any/thing");
    expect(mapPath("/a/b", undefined)).toBe("/a/b");
  });

  test("function records get their module URL mapped; command records stay as they are", () => {
    const records: TaskRecord[] = [
      { kind: "function", moduleUrl: "file:///Users/ada/sweep/tasks%20v2.ts", name: "train", arg: 1 },
      { kind: "command", program: "echo", args: ["/Users/ada/sweep"] } as unknown as TaskRecord,
    ];
    const mapped = mapRecords(records, map);
    expect(mapped[0]).toEqual({ kind: "function", moduleUrl: "file:///home/ada/sweep/tasks%20v2.ts", name: "train", arg: 1 });
    expect(mapped[1]).toBe(records[1]);
  });

  test("bad maps are refused, each problem named", () => {
    expect(() => checkPathMap({ "rel/dir": "/x", "/ok": "also/rel" })).toThrow(
      'Invalid executor options: Expected the `pathMap` key `rel/dir` to be an absolute local path\n\nExpected `pathMap["/ok"]` to be an absolute path on the cluster, got `also/rel`',
    );
    expect(() => checkPathMap(["/a"])).toThrow("Expected `pathMap` to be an object from local to cluster paths, got `/a`");
    expect(() => checkPathMap({ "/a": "/b" })).not.toThrow();
  });
});
