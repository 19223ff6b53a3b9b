import type { Job } from "../core/job.js";
import type { TaskRecords } from "./task-records.js";
import type { TaskRequest } from "../protocol/records.js";

/** One submission's tasks as loadRun gives them: futures, and the tasks its workers' streams show completed, which have none. */
export interface RunPart {
  /** The submission's folder name, as reports name it. */
  readonly submission: string;
  readonly taskCount: number;
  /** The futures, in task order. */
  readonly jobs: readonly Job<unknown>[];
  /** The tasks without a future (1 by task index), if any, and where they are read: each is COMPLETED, as its stream's result says. */
  readonly streamed: { readonly settled: Uint8Array; readonly records: TaskRecords } | undefined;
  /** What one task asked for (manifest version 4 on). */
  readonly request?: TaskRequest | undefined;
}
