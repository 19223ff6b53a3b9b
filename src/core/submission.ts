import { travelProblem } from "../protocol/travels.js";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { ParameterError } from "../base/errors.js";
import type { TaskRecord, TaskSpec } from "./tasks.js";

/** Checks that every element is a task spec and returns their records. */
export function taskRecords(tasks: readonly TaskSpec<unknown>[]): TaskRecord[] {
  if (!Array.isArray(tasks)) throw new ParameterError("tasks", [`Expected an array of task specs, got \`${String(tasks)}\``]);
  const problems: string[] = [];
  const records = tasks.map((t, i) => {
    const kind = (t as { record?: { kind?: unknown } } | null)?.record?.kind;
    if (kind !== "command" && kind !== "function") {
      problems.push(`Expected \`tasks[${i}]\` to be a task spec from command() or task.with(), got \`${String(t)}\``);
    }
    return t?.record;
  });
  if (problems.length) throw new ParameterError("tasks", problems);
  const refused: string[] = [];
  let more = 0;
  for (const [i, record] of (records as TaskRecord[]).entries()) {
    const problem = record.kind === "function" ? travelProblem(record.arg) : undefined;
    if (problem === undefined) continue;
    if (refused.length < 10) refused.push(`task ${i}: ${problem}`);
    else more++;
  }
  if (more) refused.push(`and ${more} more ${more === 1 ? "task" : "tasks"}`);
  if (refused.length) throw new ParameterError("task arguments", refused);
  return records as TaskRecord[];
}

/** A new submission folder's path under the executor's folder: time-ordered and unique. */
export function newSubmissionDir(folder: string): string {
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return join(folder, `${stamp}-${randomBytes(3).toString("hex")}`);
}
