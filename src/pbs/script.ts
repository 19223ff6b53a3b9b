// PBS's words in a batch script: `#PBS` lines from the sbatch-style options
// the plan writes, and PBS's variables.
import { ParameterError } from "../base/errors.js";
import { quoteShell } from "../base/shell.js";
import type { ScriptDialect, ScriptOptions } from "../slurm/script.js";
import { parseDurationSeconds, parseMemoryMegabytes } from "../slurm/units.js";
import { PBS_NODE_HELPERS, pbsRankLaunch } from "./launch.js";
import { toPbsId } from "./parse.js";
import { PBS_RAW_PREFIX } from "./parameters.js";

/** Seconds as PBS's walltime, `HH:MM:SS` (hours past 24 allowed). */
export function formatWalltime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [h, m, s].map((n) => String(n).padStart(2, "0")).join(":");
}

/** Slurm's dependency (`afterok:1:2_3,afterany:4[]`) as PBS's `-W depend` (`afterok:1:2[3],afterany:4[]`); whole arrays already carry `[]`. */
export function pbsDependency(slurm: string): string {
  return slurm
    .split(",")
    .map((part) => {
      const [type, ...ids] = part.split(":");
      return [type, ...ids.map((id) => (/^\d+_\d+$/.test(id) ? toPbsId(id, true) : id))].join(":");
    })
    .join(",");
}

/** A path as one word of a `#PBS` line: double-quoted when it has spaces; a double quote cannot be written. */
function pathWord(path: string): string {
  if (path.includes('"')) throw new ParameterError("PBS parameters", [`Expected the folder to have no double quote on PBS, whose #PBS lines cannot hold one, got \`${path}\``]);
  return /\s|'/.test(path) ? `"${path}"` : path;
}

const positive = (text: string | true | undefined, fallback: number): number => (typeof text === "string" && /^\d+$/.test(text) ? Number(text) : fallback);

/**
 * The `#PBS` lines of one script, from the sbatch-style long options the
 * plan writes, then the lines that must come first in its body. One chunk
 * per node (`-l select=N:ncpus=...:mem=...:ngpus=...`, `place=scatter` for
 * several), `-l walltime`, `-q`, `-A`, `-N`, `-J` (`0-1:2` for one element:
 * qsub refuses a range of one), output written straight to the run folder
 * (`-k oed`); an option with no PBS form is an error, never dropped.
 */
export function pbsHeader(options: ScriptOptions["options"]): string[] {
  const o = new Map<string, string | true>();
  const raw: Array<[string, string | true]> = [];
  for (const [name, value] of options) {
    if (name.startsWith(PBS_RAW_PREFIX)) raw.push([name.slice(PBS_RAW_PREFIX.length), value]);
    else o.set(name, value);
  }
  const lines: string[] = [];
  const take = (name: string): string | true | undefined => {
    const value = o.get(name);
    o.delete(name);
    return value;
  };
  const text = (name: string): string | undefined => {
    const value = take(name);
    return typeof value === "string" ? value : undefined;
  };
  const name = text("job-name");
  if (name !== undefined) lines.push(`#PBS -N ${name}`);
  const queue = text("partition");
  if (queue !== undefined) lines.push(`#PBS -q ${queue}`);
  const account = text("account");
  if (account !== undefined) lines.push(`#PBS -A ${account}`);
  // One chunk per node: its CPUs are every task's on it, its memory the node's share.
  const nodes = positive(take("nodes"), 1);
  const tasks = positive(take("ntasks-per-node"), 1);
  const cpus = positive(take("cpus-per-task"), 1);
  const mem = text("mem");
  const memPerCpu = text("mem-per-cpu");
  const gpusText = text("gpus-per-node") ?? text("gres")?.replace(/^gpu:/, "");
  const memMb = mem !== undefined ? parseMemoryMegabytes(mem) : memPerCpu !== undefined ? (parseMemoryMegabytes(memPerCpu) ?? 0) * cpus * tasks : undefined;
  // ompthreads: MoM sets each rank's OMP_NUM_THREADS and NCPUS to its own CPUs, not the chunk's.
  const chunk = [
    `${nodes}`,
    `ncpus=${cpus * tasks}`,
    ...(tasks > 1 || nodes > 1 ? [`mpiprocs=${tasks}`] : []),
    ...(tasks > 1 ? [`ompthreads=${cpus}`] : []),
    ...(memMb ? [`mem=${memMb}mb`] : []),
    ...(gpusText ? [`ngpus=${gpusText}`] : []),
  ];
  lines.push(`#PBS -l select=${chunk.join(":")}`);
  if (nodes > 1) lines.push("#PBS -l place=scatter");
  const time = text("time");
  if (time !== undefined) lines.push(`#PBS -l walltime=${formatWalltime(parseDurationSeconds(time)!)}`);
  const array = text("array");
  const range = array === undefined ? undefined : /^0-(\d+)(?:%(\d+))?$/.exec(array);
  const last = range ? Number(range[1]) : 0;
  if (range) {
    // qsub refuses a range of one (`-J 0-0`): index 0 alone is 0 to 1 in steps of 2, still an array, as the futures expect.
    lines.push(`#PBS -J ${last > 0 ? `0-${last}` : "0-1:2"}`);
    if (range[2] !== undefined) lines.push(`#PBS -W max_run_subjobs=${range[2]}`);
  }
  // Logs: straight to the run folder while the job runs (`d`), by element; an element's own id (%A) is not a PBS path word.
  const output = text("output");
  const error = text("error");
  const body: string[] = [];
  for (const [flag, path] of [
    ["o", output],
    ["e", error],
  ] as const) {
    if (path === undefined) continue;
    if (path.includes("%A")) {
      lines.push(`#PBS -${flag} /dev/null`);
      const shellPath = `${quoteShell(path.slice(0, path.indexOf("%A")))}"\${slurmkit_pbs_array}_\${slurmkit_pbs_index}"${quoteShell(path.slice(path.indexOf("%a") + 2))}`;
      body.push(`exec ${flag === "o" ? "1" : "2"}>>${shellPath}`);
    } else lines.push(`#PBS -${flag} ${pathWord(path.replaceAll("%a", range ? "^array_index^" : "0"))}`);
  }
  lines.push("#PBS -k oed");
  // As sbatch exports the submitting environment by default, so does the job here (qsub exports only PBS_O_* without -V).
  lines.push("#PBS -V");
  const tag = text("comment");
  if (tag !== undefined) lines.push(`#PBS -v SLURMKIT_TAG=${tag.split(" ")[0]}`);
  const dependency = text("dependency");
  if (dependency !== undefined) lines.push(`#PBS -W depend=${pbsDependency(dependency)}`);
  take("kill-on-invalid-dep"); // PBS deletes a job whose dependency can no longer be met.
  // Left rerunnable: qrerun (a checkpointed task's requeue) refuses a job that is not, and PBS refuses a non-rerunnable array;
  // PBS itself reruns a job only when its node fails.
  take("no-requeue");
  take("open-mode"); // Logs are appended to: each attempt's runner appends, and PBS writes straight to the file.
  take("signal"); // PBS has no warning before the walltime; the runner arms its own.
  const left = [...o.keys()];
  if (left.length) throw new ParameterError("PBS parameters", [`PBS cannot express the option${left.length > 1 ? "s" : ""} ${left.map((k) => `\`${k}\``).join(", ")}`]);
  for (const [key, value] of raw) lines.push(/^[A-Za-z]$/.test(key) ? `#PBS -${key}${value === true ? "" : ` ${value}`}` : `#PBS -l ${key}=${value}`);
  const prelude = [
    "",
    "# This job's array and index from PBS_JOBID (12[3].server): -V may carry PBS_ARRAY_* in from a job that submitted this one",
    "slurmkit_pbs_id=${PBS_JOBID:-local}",
    "slurmkit_pbs_id=${slurmkit_pbs_id%%.*}",
    "# shellcheck disable=SC2034 # used by some scripts only",
    "slurmkit_pbs_array=${slurmkit_pbs_id%%\\[*}",
    "slurmkit_pbs_index=0",
    "case $slurmkit_pbs_id in *\\[*\\]) slurmkit_pbs_index=${slurmkit_pbs_id#*\\[}; slurmkit_pbs_index=${slurmkit_pbs_index%\\]} ;; esac",
    ...body,
    "# PBS starts a job in the home folder: back to where it was submitted from",
    'if ! cd "${PBS_O_WORKDIR:-.}" 2>/dev/null; then',
    '  echo "slurmkit: cannot enter ${PBS_O_WORKDIR:-} on $(hostname -s); running in /tmp" >&2',
    "  cd /tmp || exit 1",
    "fi",
  ];
  return [...lines, ...prelude];
}

/** The script words of PBS's qsub. */
export const PBS_SCRIPT: ScriptDialect = {
  header: pbsHeader,
  warnsBeforeLimit: false,
  // Set by the header's lines from PBS_JOBID.
  arrayIndex: "slurmkit_pbs_index",
  nodeName: "$(hostname -s)",
  jobIdLines: ["slurmkit_job=$slurmkit_pbs_array", 'if [ "$slurmkit_pbs_id" != "$slurmkit_pbs_array" ]; then slurmkit_job=${slurmkit_pbs_array}_${slurmkit_pbs_index}; fi'],
  nodeHelpers: PBS_NODE_HELPERS,
  // qdel has no "only queued" filter: the array's queued subjobs, by their ids in full (-w).
  cancelPending: ['if [ "$slurmkit_pbs_id" != "$slurmkit_pbs_array" ]; then qstat -w -t "${slurmkit_pbs_array}[]" 2>/dev/null | awk \'$5 == "Q" { print $1 }\' | xargs -r qdel 2>/dev/null; fi'],
  rankLaunch: pbsRankLaunch,
};
