// What a PBS server allows, checked before the first sweep (`slurmkit doctor
// --pbs`, `PbsExecutor.check()`): the commands, the server, its queues and
// history, then the probe job that Slurm's checks use too.
import { posix } from "node:path";
import type { SlurmParameters } from "../slurm/parameters.js";
import { clientChecks, line, probe, type CheckLine, type CheckOptions, type CheckReport, type CheckTarget } from "../slurm/doctor.js";
import { toSbatchOptions } from "../slurm/parameters.js";
import type { PbsScheduler } from "./scheduler.js";
import { parseWalltime } from "./scheduler.js";
import { PBS_SCRIPT, formatWalltime } from "./script.js";

const COMMANDS = ["qsub", "qstat", "qselect", "qdel", "qrerun", "pbsnodes"] as const;

type Objects = Record<string, Record<string, unknown>>;

/** The checks of a PBS server; the probe job only when the client-side ones found the commands and the server. */
export async function checkPbs(target: Omit<CheckTarget, "scheduler"> & { readonly scheduler: PbsScheduler }, options: CheckOptions = {}): Promise<CheckReport> {
  const lines: CheckLine[] = [];
  const run = (program: string, args: readonly string[]) => target.transport.run(program, args, { timeoutMs: 60_000 });
  const missing = await clientChecks(target, options, lines, "PBS commands", COMMANDS);
  if (missing === undefined) return { lines, ok: false };
  if (missing) {
    lines.push(line("PBS commands", "fail", `not found: ${missing}`, "run slurmkit where PBS's commands are (a login node), or load the module that provides them"));
    return { lines, ok: false };
  }
  const version = await run("qstat", ["--version"]).catch(() => undefined);
  lines.push(line("PBS commands", "ok", `${COMMANDS.join(", ")}; ${version?.stdout.trim() || "version unknown"}`));

  const json = async (args: string[], key: string): Promise<Objects | string> => {
    const r = await run("qstat", args);
    if (r.exitCode !== 0) return r.stderr.trim() || `exit ${r.exitCode}`;
    try {
      return ((JSON.parse(r.stdout) as Record<string, unknown>)[key] ?? {}) as Objects;
    } catch {
      return `qstat ${args.join(" ")} printed no JSON (PBS older than 18 has no -F json): ${r.stdout.slice(0, 100)}`;
    }
  };
  const servers = await json(["-B", "-f", "-F", "json"], "Server");
  if (typeof servers === "string") {
    lines.push(line("PBS server", "fail", `qstat -B: ${servers}`, "check that the server answers (qstat -B) and that PBS_SERVER, or /etc/pbs.conf, names it"));
    return { lines, ok: false };
  }
  const [name, server = {}] = Object.entries(servers)[0] ?? ["?", {}];
  const active = server.server_state === "Active" && String(server.scheduling) === "True";
  lines.push(
    active
      ? line("PBS server", "ok", `${name}, ${String(server.pbs_version ?? "version unknown")}, active and scheduling`)
      : line("PBS server", "warn", `${name} is ${String(server.server_state)}, scheduling ${String(server.scheduling)}`, "jobs wait until the server schedules again"),
  );
  lines.push(line("max_array_size", "ok", `${String(server.max_array_size ?? 10000)}: larger sweeps are split into several arrays`));
  lines.push(
    String(server.job_history_enable) === "True"
      ? line("job history", "ok", `on: qstat -x shows finished jobs${server.job_history_duration ? ` for ${String(server.job_history_duration)}` : ""}`)
      : line(
          "job history",
          "warn",
          "off (job_history_enable is False): qstat forgets a job as it ends",
          "slurmkit settles tasks from their run folder; a task that ends without a result (killed, over its walltime) is reported without PBS's exit status or reason",
        ),
  );

  const queues = await json(["-Q", "-f", "-F", "json"], "Queue");
  const wanted = options.partition ?? target.parameters.partition ?? (typeof server.default_queue === "string" ? server.default_queue : undefined);
  if (typeof queues === "string") lines.push(line("queues", "warn", `qstat -Q: ${queues}`));
  else {
    for (const [queue, q] of Object.entries(queues)) {
      const max = parseWalltime(String((q.resources_max as Record<string, unknown> | undefined)?.walltime ?? ""));
      const open = String(q.enabled) === "True" && String(q.started) === "True";
      const detail = `${String(q.queue_type ?? "")}, walltime up to ${max === undefined ? "no limit" : formatWalltime(max)}${open ? "" : ", not enabled and started"}${queue === wanted ? " (used)" : ""}`;
      lines.push(line(`queue ${queue}${queue === server.default_queue ? "*" : ""}`, open || queue !== wanted ? "ok" : "fail", detail, "ask your site which queue to use, and set it as `partition`"));
      if (queue === wanted && max !== undefined && target.parameters.time !== undefined && target.parameters.time > max) {
        lines.push(
          line(`queue ${queue} walltime`, "fail", `time ${formatWalltime(target.parameters.time)} is over the queue's ${formatWalltime(max)}`, "ask for less time, or use a queue that allows it"),
        );
      }
    }
    if (wanted !== undefined && !(wanted in queues)) lines.push(line(`queue ${wanted}`, "fail", "not found", `use one of ${Object.keys(queues).join(", ")}`));
  }
  lines.push(
    line(
      "requeue",
      "ok",
      "a task that checkpoints is rerun with qrerun, which PBS allows its managers and operators; where users may not, the warned task is not requeued and ends TIMEOUT, and `slurmkit rerun --state TIMEOUT` runs it again from its start",
    ),
  );

  if (options.job !== false) {
    const dir = posix.join(target.folder, "doctor");
    await target.transport.mkdir(dir);
    const parameters: SlurmParameters = { ...target.parameters, ...(options.partition !== undefined ? { partition: options.partition } : {}) };
    const header = toSbatchOptions(parameters).filter(([n]) => n !== "array");
    lines.push(...(await probe(target, { script: PBS_SCRIPT, scratch: "TMPDIR" }, parameters, header, dir, options)));
  }
  return { lines, ok: lines.every((l) => l.status !== "fail") };
}
