// PBS's text and JSON: qsub's answer, qstat -f as JSON or as text (older
// servers, and several ids at once), and job ids in slurmkit's form.
import type { QueueEntry } from "../engine/scheduler.js";
import { pbsJobState, rawPbsState } from "./states.js";

/** One job, array or subjob as `qstat -f` shows it: its id as PBS writes it, and its attributes by dotted name (`Resource_List.walltime`). */
export interface PbsJobStatus {
  readonly id: string;
  readonly attributes: ReadonlyMap<string, string>;
}

/** A PBS id in slurmkit's form: `1234` for a job or an array, `1234_7` for subjob 7 (ids keep no server name: the default server's). */
export interface PbsIdParts {
  /** The job's or the array's sequence number. */
  readonly jobId: string;
  /** The subjob's index; undefined for a plain job or an array itself. */
  readonly index?: number | undefined;
  /** An array (`1234[]`) or one of its subjobs. */
  readonly array: boolean;
}

/** Reads `1234.server`, `1234[].server` and `1234[7].server` (the server part optional); undefined for anything else. */
export function parsePbsId(text: string): PbsIdParts | undefined {
  const m = /^(\d+)(?:\[(\d*)\])?(?:\.\S+)?$/.exec(text.trim());
  if (!m) return undefined;
  if (m[2] === undefined) return { jobId: m[1]!, array: false };
  return { jobId: m[1]!, index: m[2] === "" ? undefined : Number(m[2]), array: true };
}

/** slurmkit's id of a job (`1234`, `1234_7`) as PBS writes it, for an array when `array`: `1234`, `1234[]`, `1234[7]`. */
export function toPbsId(id: string, array: boolean): string {
  const m = /^(\d+)(?:_(\d+))?$/.exec(id);
  if (!m) return id;
  if (m[2] !== undefined) return `${m[1]}[${m[2]}]`;
  return array ? `${m[1]}[]` : m[1]!;
}

/** The job id in qsub's answer (`1234.server`, `1234[].server`) in slurmkit's form; undefined when it is not one. */
export function parseQsubOutput(stdout: string): string | undefined {
  const line = stdout.trim().split("\n").pop() ?? "";
  const id = parsePbsId(line);
  return id && id.index === undefined ? id.jobId : undefined;
}

/** Flattens one job's JSON object into dotted names; numbers and nested objects become text. */
function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (value !== undefined && value !== null) out.set(prefix, String(value));
}

/** `qstat -f -F json`'s jobs (its "Jobs" object; none when there is none). Throws a SyntaxError on text that is not JSON. */
export function parseQstatJson(text: string): PbsJobStatus[] {
  const parsed = JSON.parse(text) as { Jobs?: Record<string, unknown> };
  return Object.entries(parsed.Jobs ?? {}).map(([id, job]) => {
    const attributes = new Map<string, string>();
    flatten(job, "", attributes);
    return { id, attributes };
  });
}

/**
 * `qstat -f`'s text: a `Job Id: <id>` line, then `    name = value` lines,
 * whose long values PBS folds onto lines that start with a tab (not with
 * `-w`). Lines of neither kind (errors on stderr go elsewhere) are skipped.
 */
export function parseQstatText(text: string): PbsJobStatus[] {
  const jobs: { id: string; attributes: Map<string, string> }[] = [];
  let last: string | undefined;
  for (const line of text.split("\n")) {
    const head = /^Job Id:\s*(\S+)/.exec(line);
    if (head) {
      jobs.push({ id: head[1]!, attributes: new Map() });
      last = undefined;
      continue;
    }
    const job = jobs.at(-1);
    if (!job) continue;
    if (line.startsWith("\t") && last !== undefined) {
      job.attributes.set(last, job.attributes.get(last)! + line.slice(1));
      continue;
    }
    const m = /^ {4}([\w.]+) = ?(.*)$/.exec(line);
    if (m) {
      job.attributes.set(m[1]!, m[2]!);
      last = m[1]!;
    } else last = undefined;
  }
  // The text has the job's variables as one list (`A=1,B=x\,y`); the JSON has them by name.
  for (const job of jobs) {
    const list = job.attributes.get("Variable_List");
    if (list === undefined) continue;
    for (const item of list.split(/(?<!\\),/)) {
      const eq = item.indexOf("=");
      if (eq > 0) job.attributes.set(`Variable_List.${item.slice(0, eq)}`, item.slice(eq + 1).replaceAll("\\,", ","));
    }
  }
  return jobs;
}

const intOf = (text: string | undefined): number | undefined => (text !== undefined && /^-?\d+$/.test(text.trim()) ? Number(text) : undefined);

/**
 * Jobs as the watcher's queue entries, in slurmkit's ids: a plain job by its
 * number, a subjob as its array's number and its index. An array's own line
 * counts only when none of its subjobs is listed (qstat without `-t`).
 */
export function pbsQueueEntries(jobs: readonly PbsJobStatus[]): QueueEntry[] {
  const withSubjobs = new Set<string>();
  const parts = jobs.map((j) => parsePbsId(j.id));
  for (const p of parts) if (p?.index !== undefined) withSubjobs.add(p.jobId);
  const out: QueueEntry[] = [];
  jobs.forEach((job, k) => {
    const id = parts[k];
    if (!id || (id.array && id.index === undefined && withSubjobs.has(id.jobId))) return;
    const fields = { state: job.attributes.get("job_state") ?? "", substate: intOf(job.attributes.get("substate")), exitStatus: intOf(job.attributes.get("Exit_status")) };
    out.push({ jobId: id.jobId, ...(id.index !== undefined ? { indices: [id.index] } : {}), state: pbsJobState(fields), rawState: rawPbsState(fields) });
  });
  return out;
}
