import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePbsId, parseQstatJson, parseQstatText, parseQsubOutput, pbsQueueEntries, toPbsId } from "../../src/pbs/parse.js";
import { pbsJobState } from "../../src/pbs/states.js";

// Recorded from the OpenPBS 23.06.06 test server (test/pbs/pbs.sh): job 0 ran and ended 0, array 1[] ran
// three subjobs, 2[] one (-J 0-1:2), 3 exited 3, 4 went over its walltime, 5 was deleted while it ran,
// 6 was held.
const fixture = (name: string) => readFileSync(new URL(`../fixtures/pbs/${name}`, import.meta.url), "utf8");

describe("PBS ids", () => {
  it("reads jobs, arrays and subjobs, with or without the server", () => {
    expect(parsePbsId("12.pbshost")).toEqual({ jobId: "12", array: false });
    expect(parsePbsId("12[].polaris-pbs-01.hsn.cm.polaris.alcf.anl.gov")).toEqual({ jobId: "12", index: undefined, array: true });
    expect(parsePbsId("12[7]")).toEqual({ jobId: "12", index: 7, array: true });
    expect(parsePbsId("qsub: illegal -J value")).toBeUndefined();
  });
  it("writes slurmkit's ids back as PBS's", () => {
    expect(toPbsId("12", false)).toBe("12");
    expect(toPbsId("12", true)).toBe("12[]");
    expect(toPbsId("12_7", true)).toBe("12[7]");
  });
  it("reads qsub's answer", () => {
    expect(parseQsubOutput("3.pbshost\n")).toBe("3");
    expect(parseQsubOutput("1[].pbshost\n")).toBe("1");
    expect(parseQsubOutput("usage: qsub ...")).toBeUndefined();
  });
});

describe("qstat -f", () => {
  const json = parseQstatJson(fixture("qstat-x-f-t-json.json"));
  const text = parseQstatText(fixture("qstat-x-f-t.txt"));
  const wide = parseQstatText(fixture("qstat-x-f-w-t.txt"));

  it("reads every job of the JSON, nested attributes by dotted names", () => {
    expect(json.map((j) => j.id)).toEqual([
      "0.pbshost",
      "1[].pbshost",
      "1[0].pbshost",
      "1[1].pbshost",
      "1[2].pbshost",
      "2[].pbshost",
      "2[0].pbshost",
      "3.pbshost",
      "4.pbshost",
      "5.pbshost",
      "6.pbshost",
    ]);
    const zero = json[0]!.attributes;
    expect(zero.get("Resource_List.walltime")).toBe("00:01:00");
    expect(zero.get("resources_used.mem")).toBeDefined();
    expect(zero.get("Exit_status")).toBe("0");
    expect(zero.get("Variable_List.PBS_O_WORKDIR")).toBe("/tmp/pbsx");
  });

  it("reads the same attributes from the text, folded or wide", () => {
    for (const parsed of [text, wide]) {
      expect(parsed.map((j) => j.id)).toEqual(["0.pbshost", "1[].pbshost", "1[0].pbshost", "1[1].pbshost", "1[2].pbshost", "3.pbshost", "4.pbshost", "5.pbshost", "6.pbshost"]);
      for (const job of parsed) {
        const same = json.find((j) => j.id === job.id)!.attributes;
        for (const key of ["job_state", "substate", "Exit_status", "Resource_List.walltime", "Output_Path", "exec_host", "Variable_List.PBS_O_WORKDIR"])
          expect([job.id, key, job.attributes.get(key)]).toEqual([job.id, key, same.get(key)]);
      }
    }
    // A value folded over lines is joined again.
    const comment = json.find((j) => j.id === "4.pbshost")!.attributes.get("comment")!;
    expect(comment.length).toBeGreaterThan(70);
    expect(text.find((j) => j.id === "4.pbshost")!.attributes.get("comment")).toBe(comment);
  });

  it("gives the watcher each job's and subjob's state in slurmkit's ids and words", () => {
    const entries = pbsQueueEntries(json);
    expect(entries.map((e) => [e.jobId, e.indices?.[0], e.state])).toEqual([
      ["0", undefined, "COMPLETED"],
      ["1", 0, "COMPLETED"],
      ["1", 1, "COMPLETED"],
      ["1", 2, "COMPLETED"],
      ["2", 0, "COMPLETED"],
      ["3", undefined, "FAILED"],
      ["4", undefined, "TIMEOUT"],
      ["5", undefined, "CANCELLED"],
      ["6", undefined, "PENDING"],
    ]);
    expect(entries.find((e) => e.jobId === "3")!.rawState).toBe("F (Exit_status 3)");
    expect(pbsQueueEntries(text)).toEqual(entries.filter((e) => e.jobId !== "2"));
  });

  it("takes an array's own line when its subjobs are not listed", () => {
    const parents = json.filter((j) => !/\[\d+\]/.test(j.id));
    expect(pbsQueueEntries(parents).find((e) => e.jobId === "1")).toMatchObject({ jobId: "1", state: "COMPLETED" });
  });
});

describe("PBS states", () => {
  it.each([
    [{ state: "Q" }, "PENDING"],
    [{ state: "H" }, "PENDING"],
    [{ state: "W" }, "PENDING"],
    [{ state: "R" }, "RUNNING"],
    [{ state: "E" }, "RUNNING"],
    [{ state: "B" }, "RUNNING"],
    [{ state: "F", substate: 92, exitStatus: 0 }, "COMPLETED"],
    [{ state: "X", substate: 92, exitStatus: 0 }, "COMPLETED"],
    [{ state: "F", substate: 92, exitStatus: 3 }, "FAILED"],
    [{ state: "F", substate: 92, exitStatus: 271 }, "FAILED"],
    [{ state: "F", substate: 91, exitStatus: 271 }, "CANCELLED"],
    [{ state: "F", substate: 91 }, "CANCELLED"],
    [{ state: "F", substate: 93, exitStatus: -29 }, "TIMEOUT"],
    [{ state: "F", substate: 93, exitStatus: -27 }, "OUT_OF_MEMORY"],
    [{ state: "F", substate: 93, exitStatus: -20 }, "NODE_FAIL"],
    // Never ran: deleted while queued, or by PBS when its afterok dependency failed (seen: F, substate 92, no Exit_status).
    [{ state: "F", substate: 92 }, "CANCELLED"],
    // A subjob that qstat fakes from its array without history: the run folder decides.
    [{ state: "X", substate: 92 }, "UNKNOWN"],
    [{ state: "?" }, "UNKNOWN"],
  ] as const)("%j is %s", (fields, state) => {
    expect(pbsJobState(fields)).toBe(state);
  });
});
