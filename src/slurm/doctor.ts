// What a cluster allows, checked before the first sweep (`slurmkit doctor`,
// `executor.check()`): from the client through the transport, then from one
// small probe job that reports what a node sees.
import { z } from "zod";
import { accepts, checkOptions, type OptionShape } from "../base/options.js";
import { posix } from "node:path";
import type { Transport } from "../transport/transport.js";
import { isUnreachable } from "../transport/transport.js";
import { gpusPerTask, toSbatchOptions, type SlurmParameters } from "./parameters.js";
import type { Scheduler } from "./scheduler.js";
import { renderScript, RUNNER_NODE_MAJOR, SLURM_SCRIPT } from "./script.js";
import type { BatchScheduler } from "./batch.js";
import type { ScriptDialect } from "./script.js";
import { indexEntries } from "../engine/scheduler.js";
import { isTerminal } from "../base/job-state.js";

/** How one check came out: fine, worth knowing before a large sweep, or in the way of any sweep. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of a check report. */
export interface CheckLine {
  /** What was checked, such as "accounting" or "Node.js on the nodes". */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly detail: string;
  /** What to do, for a warn or a fail. */
  readonly fix?: string;
}

/** What `executor.check()` found: every line, and whether none failed. */
export interface CheckReport {
  readonly lines: readonly CheckLine[];
  /** True when no line failed (warnings allowed). */
  readonly ok: boolean;
}

/** Options of `executor.check()`. */
export interface CheckOptions {
  /** Check this partition instead of the executor's. */
  readonly partition?: string;
  /** Submit the probe job that reports from a node. @default true */
  readonly job?: boolean;
  /** How long to wait for the probe job to start and end. @default 600_000 */
  readonly jobTimeoutMs?: number;
  /** Receives progress while the probe job waits in the queue. */
  readonly log?: (line: string) => void;
}

/** What the checks need from an executor. */
export interface CheckTarget {
  readonly transport: Transport;
  readonly scheduler: Scheduler;
  readonly folder: string;
  readonly nodeBinary: string;
  readonly parameters: SlurmParameters;
  /** How the transport is described: "this machine", or the ssh destination. */
  readonly where: string;
}

/** How often the probe job's state is asked while it waits. */
const POLL_MS = 2000;

/** The oldest Node.js slurmkit's client runs on. */
const CLIENT_NODE_MAJOR = 20;
const COMMANDS = ["sbatch", "squeue", "sacct", "scontrol", "sinfo"] as const;

/** `Key = Value` lines of `scontrol show config`. */
export function parseConfig(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+=\s+(.*)$/.exec(line.trim());
    if (m) map.set(m[1]!, m[2]!.trim());
  }
  return map;
}

/** One partition as `sinfo -h -o '%P|%l|%D|%c|%m|%G'` shows it, lines of a partition added up. */
export interface PartitionInfo {
  readonly name: string;
  readonly isDefault: boolean;
  readonly maxTime: string;
  readonly nodes: number;
  readonly cpusPerNode: string;
  readonly memoryMb: string;
  readonly gres: string;
}

/** Parses `sinfo -h -o '%P|%l|%D|%c|%m|%G'`. */
export function parsePartitions(text: string): PartitionInfo[] {
  const byName = new Map<string, PartitionInfo>();
  for (const line of text.split("\n")) {
    const [p, maxTime, nodes, cpus, mem, gres] = line.trim().split("|");
    if (!p || nodes === undefined) continue;
    const name = p.replace(/\*$/, "");
    const was = byName.get(name);
    const join = (a: string | undefined, b: string) => (a === undefined || a === b ? b : `${a},${b}`);
    byName.set(name, {
      name,
      isDefault: p.endsWith("*"),
      maxTime: maxTime ?? "",
      nodes: (was?.nodes ?? 0) + (Number(nodes) || 0),
      cpusPerNode: join(was?.cpusPerNode, cpus ?? ""),
      memoryMb: join(was?.memoryMb, mem ?? ""),
      gres: join(was?.gres, gres ?? "(null)"),
    });
  }
  return [...byName.values()];
}

/** What the probe job prints: `key=value` lines. */
export function parseProbe(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0 && /^[a-z0-9_]+$/.test(line.slice(0, i))) map.set(line.slice(0, i), line.slice(i + 1));
  }
  return map;
}

/** The probe: after the executor's setup, what a node sees. `$1` is the node binary, `$2` the run folder. */
const PROBE = [
  'echo "node=${SLURMD_NODENAME:-$(hostname)}"',
  'if [ -d "$2" ] && [ -w "$2" ]; then echo "folder=yes"; else echo "folder=no"; fi',
  'echo "nodejs_path=$(command -v "$1" 2>/dev/null)"',
  'echo "nodejs=$("$1" -e "process.stdout.write(process.versions.node)" 2>/dev/null)"',
  'echo "path=$PATH"',
  'echo "slurm_tmpdir=${SLURM_TMPDIR:-}"',
  'if [ -n "${SLURM_TMPDIR:-}" ] && [ -d "$SLURM_TMPDIR" ] && [ -w "$SLURM_TMPDIR" ]; then echo "slurm_tmpdir_ok=yes"; fi',
  'echo "tmpdir=${TMPDIR:-}"',
  'if [ -n "${TMPDIR:-}" ] && [ -d "$TMPDIR" ] && [ -w "$TMPDIR" ]; then echo "tmpdir_ok=yes"; fi',
  'echo "python3=$(python3 --version 2>&1 | head -n 1)"',
  'if command -v python3 >/dev/null 2>&1; then :; else echo "python3_missing=yes"; fi',
  'if type module >/dev/null 2>&1; then echo "module=yes"; else echo "module=no"; fi',
  'echo "gpus=${CUDA_VISIBLE_DEVICES:-${ROCR_VISIBLE_DEVICES:-}}"',
  'echo "gpu_list=$(nvidia-smi -L 2>/dev/null | wc -l)"',
  'echo "done=yes"',
].join("\n");

/** One line of a report. */
export const line = (name: string, status: CheckStatus, detail: string, fix?: string): CheckLine => ({ name, status, detail, ...(fix !== undefined ? { fix } : {}) });

/** What every scheduler's checks start with: the options, this machine's Node.js, the transport, and which of the scheduler's `commands` are missing (undefined when none could be looked for: the report is done). */
export async function clientChecks(
  target: Pick<CheckTarget, "transport" | "where">,
  options: CheckOptions,
  lines: CheckLine[],
  what: string,
  commands: readonly string[],
): Promise<string | undefined> {
  checkOptions("check options", options, {
    partition: accepts.string,
    job: accepts.boolean,
    jobTimeoutMs: accepts.or(z.number().positive(), "a positive number of milliseconds"),
    log: accepts.function,
  } satisfies OptionShape<CheckOptions>);
  const major = Number(process.versions.node.split(".")[0]);
  lines.push(
    major >= CLIENT_NODE_MAJOR
      ? line("Node.js here", "ok", `v${process.versions.node}`)
      : line("Node.js here", "fail", `v${process.versions.node}; slurmkit needs ${CLIENT_NODE_MAJOR} or newer`, "install Node.js 20 or newer on this machine"),
  );
  const run = (program: string, args: readonly string[]) => target.transport.run(program, args, { timeoutMs: 60_000 });
  try {
    await run("true", []);
    lines.push(line("transport", "ok", target.where));
  } catch (error) {
    lines.push(line("transport", "fail", `${target.where}: ${(error as Error).message}`, "see the message; for ssh, check that `ssh HOST true` works in a terminal"));
    return undefined;
  }
  const found = await run("sh", ["-c", 'for c in "$@"; do command -v "$c" >/dev/null 2>&1 || printf "%s " "$c"; done', "sh", ...commands]);
  if (found.exitCode !== 0) {
    lines.push(line(what, "fail", `could not look for them: sh exited with ${found.exitCode}: ${found.stderr.trim()}`, "check that the login shell is a POSIX shell"));
    return undefined;
  }
  return found.stdout.trim();
}

/** Runs the checks; the probe job only when the client-side ones found the commands. */
export async function checkCluster(target: CheckTarget, options: CheckOptions = {}): Promise<CheckReport> {
  const lines: CheckLine[] = [];
  const { transport } = target;
  const run = (program: string, args: readonly string[]) => transport.run(program, args, { timeoutMs: 60_000 });
  const missing = await clientChecks(target, options, lines, "Slurm commands", COMMANDS);
  if (missing === undefined) return { lines, ok: false };
  const version = await run("sbatch", ["--version"]).catch(() => undefined);
  if (missing) {
    lines.push(line("Slurm commands", "fail", `not found: ${missing}`, "run slurmkit where Slurm's commands are (a login node), or load the module that provides them"));
    return { lines, ok: false };
  }
  lines.push(line("Slurm commands", "ok", `${COMMANDS.join(", ")}; ${version?.stdout.trim() || "version unknown"}`));

  const configRun = await run("scontrol", ["show", "config"]);
  const config = parseConfig(configRun.stdout);
  if (configRun.exitCode !== 0) {
    lines.push(
      line(
        "Slurm controller",
        "fail",
        `scontrol show config: ${configRun.stderr.trim() || `exit ${configRun.exitCode}`}`,
        "check that slurmctld answers (scontrol ping) and that SLURM_CONF, if set, names the cluster's slurm.conf",
      ),
    );
    return { lines, ok: false };
  }
  const storage = config.get("AccountingStorageType") ?? "";
  lines.push(
    /none/.test(storage) || storage === ""
      ? line(
          "accounting",
          "warn",
          "off (AccountingStorageType=none): sacct knows no job",
          "slurmkit follows jobs with squeue and its own state files; an ended job's exact state (TIMEOUT, OUT_OF_MEMORY) may read as FAILED",
        )
      : line("accounting", "ok", `on (${storage})`),
  );
  const minJobAge = Number.parseInt(config.get("MinJobAge") ?? "300", 10);
  lines.push(
    minJobAge < 30
      ? line("MinJobAge", "warn", `${minJobAge} s: ended jobs leave squeue almost at once`, "with accounting off, slurmkit then relies on its state files alone")
      : line("MinJobAge", "ok", `${minJobAge} s`),
  );
  const limits = await target.scheduler.limits().catch((error: unknown) => {
    if (isUnreachable(error)) throw error;
    return undefined;
  });
  lines.push(line("MaxArraySize", "ok", `${config.get("MaxArraySize") ?? "?"}: larger sweeps are split into several arrays`));
  lines.push(line("MaxJobCount", "ok", config.get("MaxJobCount") ?? "?"));
  lines.push(
    limits?.maxSubmitJobs === undefined
      ? line("MaxSubmitJobs", "ok", "none set for you (sacctmgr shows no limit)")
      : line(
          "MaxSubmitJobs",
          limits.maxSubmitJobs < 100 ? "warn" : "ok",
          `${limits.maxSubmitJobs} jobs queued at once (array elements count one each)`,
          "pack tasks (tasksPerElement, workers) so that a sweep needs fewer elements",
        ),
  );

  const partitions = parsePartitions((await run("sinfo", ["-h", "-o", "%P|%l|%D|%c|%m|%G"])).stdout);
  const wanted = options.partition ?? target.parameters.partition;
  for (const p of partitions) {
    const mark = p.name === wanted || (wanted === undefined && p.isDefault) ? " (used)" : "";
    lines.push(line(`partition ${p.name}${p.isDefault ? "*" : ""}`, "ok", `MaxTime ${p.maxTime}, ${p.nodes} nodes, ${p.cpusPerNode} CPUs and ${p.memoryMb} MB each, GRES ${p.gres}${mark}`));
  }
  if (wanted !== undefined && !partitions.some((p) => p.name === wanted)) {
    lines.push(line(`partition ${wanted}`, "fail", "not found", `use one of ${partitions.map((p) => p.name).join(", ")}`));
  }
  const gresTypes = config.get("GresTypes");
  lines.push(line("GRES", "ok", gresTypes && gresTypes !== "(null)" ? gresTypes : "none configured"));

  const preemptType = config.get("PreemptType") ?? "preempt/none";
  const signals = /send_user_signal/.test(`${config.get("PreemptParameters") ?? ""} ${config.get("SlurmctldParameters") ?? ""}`);
  lines.push(
    /none/.test(preemptType)
      ? line("preemption", "ok", "off")
      : signals
        ? line("preemption", "ok", `${preemptType}, mode ${config.get("PreemptMode") ?? "?"}; preempted jobs get the warning signal`)
        : line(
            "preemption",
            "warn",
            `${preemptType}, mode ${config.get("PreemptMode") ?? "?"}; preempted jobs are not signalled first (no preempt_send_user_signal)`,
            "checkpoint on a timer too: a preempted task gets no warning before its grace time ends",
          ),
  );

  // What slurmkit would submit, as sbatch --test-only sees it.
  const dir = posix.join(target.folder, "doctor");
  await transport.mkdir(dir);
  const parameters: SlurmParameters = { ...target.parameters, ...(options.partition !== undefined ? { partition: options.partition } : {}) };
  const header = toSbatchOptions(parameters).filter(([name]) => name !== "array");
  const testScript = posix.join(dir, "test-only.sbatch");
  await transport.writeFile(testScript, renderScript({ options: [...header, ["output", "/dev/null"]], setup: [], runner: ["true"], ranks: 1 }));
  const testOnly = await run("sbatch", ["--test-only", testScript]);
  const said = `${testOnly.stdout}\n${testOnly.stderr}`.trim().split("\n").filter(Boolean).at(-1) ?? "";
  lines.push(
    testOnly.exitCode === 0
      ? line("sbatch --test-only", "ok", said.replace(/^sbatch: /, ""))
      : line("sbatch --test-only", "fail", said || `exit ${testOnly.exitCode}`, "change the parameters this names (partition, time, mem, gres) to what the cluster allows"),
  );

  if (options.job !== false && testOnly.exitCode === 0) lines.push(...(await probe(target, { script: SLURM_SCRIPT, scratch: "SLURM_TMPDIR" }, parameters, header, dir, options)));
  return { lines, ok: lines.every((l) => l.status !== "fail") };
}

/** What the probe job needs of a scheduler besides its commands: its scripts' words, and its node-local scratch variable. */
export interface ProbeScheduler {
  readonly script: ScriptDialect;
  readonly scratch: "SLURM_TMPDIR" | "TMPDIR";
}

/** Submits the probe job with the executor's setup and reads what it reports. */
export async function probe(
  target: Omit<CheckTarget, "scheduler"> & { readonly scheduler: BatchScheduler },
  kind: ProbeScheduler,
  parameters: SlurmParameters,
  header: Array<[string, string | true]>,
  dir: string,
  options: CheckOptions,
): Promise<CheckLine[]> {
  const { transport, scheduler } = target;
  const stamp = `${Date.now()}`;
  const out = posix.join(dir, `probe-${stamp}.out`);
  const script = posix.join(dir, `probe-${stamp}.sbatch`);
  // The probe needs a minute at most, whatever the sweep's time.
  const time = Math.min(parameters.time ?? 120, 300);
  const sbatch: Array<[string, string | true]> = [...header.filter(([name]) => name !== "time" && name !== "job-name"), ["time", `${Math.ceil(time / 60)}`], ["job-name", "slurmkit-doctor"]];
  const text = renderScript({
    options: [...sbatch, ["output", out], ["error", out]],
    setup: parameters.setup ?? [],
    runner: ["bash", "-c", PROBE, "slurmkit-probe", target.nodeBinary, target.folder],
    ranks: 1,
    dialect: kind.script,
  });
  await transport.writeFile(script, text);
  const id = await scheduler.submit(script);
  const log = options.log ?? (() => undefined);
  log(`probe job ${id} submitted; waiting for it to start and end`);
  const started = Date.now();
  const timeout = options.jobTimeoutMs ?? 600_000;
  let state = "PENDING";
  let lastSaid = Date.now();
  for (;;) {
    // The queue fails now and then on a busy controller (a socket timeout): that is not the job's end.
    const q = await scheduler.queue([id]).catch((error: unknown) => {
      if (isUnreachable(error)) throw error;
      return undefined;
    });
    const now = q && indexEntries(q).get(id);
    if (q && (now === undefined || isTerminal(now))) break;
    if (now !== undefined) state = now;
    if (Date.now() - started > timeout) {
      await scheduler.cancel(id).catch(() => undefined);
      return [
        line(
          "probe job",
          "fail",
          `job ${id} was still ${state} after ${Math.round(timeout / 1000)} s and was cancelled`,
          "run slurmkit doctor when the partition is less busy, or pick another with --partition",
        ),
      ];
    }
    if (Date.now() - lastSaid > 30_000) {
      log(`probe job ${id} is ${state} (${Math.round((Date.now() - started) / 1000)} s)`);
      lastSaid = Date.now();
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  // The output file may reach a network file system a moment after the job ended.
  let report = "";
  for (let i = 0; i < 10 && !/done=yes/.test(report); i++) {
    report = await transport.readFile(out).then(String, () => "");
    if (!/done=yes/.test(report)) await new Promise((r) => setTimeout(r, 1000));
  }
  const seen = parseProbe(report);
  if (!seen.has("done")) {
    return [
      line(
        "run folder on the nodes",
        "fail",
        `the probe job ${id} ended but its report ${out} never appeared${report ? `; it says:\n${report.trim()}` : ""}`,
        "the folder must be on a file system the nodes share, at the same path (not /tmp on this machine); check that setup steps succeed",
      ),
    ];
  }
  const node = seen.get("node") ?? "?";
  const lines: CheckLine[] = [line("probe job", "ok", `job ${id} ran on ${node} after ${Math.round((Date.now() - started) / 1000)} s, with the executor's setup`)];
  lines.push(
    seen.get("folder") === "yes"
      ? line("run folder on the nodes", "ok", `${target.folder} is there and writable on ${node}`)
      : line("run folder on the nodes", "fail", `${target.folder} is not a writable folder on ${node}`, "put the folder on a file system the nodes share, at the same path"),
  );
  const version = seen.get("nodejs") ?? "";
  const major = Number(version.split(".")[0]);
  if (version === "") {
    lines.push(
      line(
        "Node.js on the nodes",
        "fail",
        target.nodeBinary.includes("/") ? `'${target.nodeBinary}' does not exist or does not run on ${node}` : `'${target.nodeBinary}' was not found on ${node} (PATH=${seen.get("path") ?? ""})`,
        `load it in the executor's setup (modules(["nodejs"])), or set nodeBinary to a Node.js ${RUNNER_NODE_MAJOR} or newer on the nodes (an unpacked tarball in $HOME works)`,
      ),
    );
  } else if (!(major >= RUNNER_NODE_MAJOR)) {
    lines.push(
      line(
        "Node.js on the nodes",
        "fail",
        `'${target.nodeBinary}' on ${node} is v${version}; the runner needs v${RUNNER_NODE_MAJOR} or newer`,
        "load a newer nodejs module in setup, or set nodeBinary",
      ),
    );
  } else {
    lines.push(line("Node.js on the nodes", "ok", `v${version} at ${seen.get("nodejs_path") || target.nodeBinary} on ${node} (the runner needs ${RUNNER_NODE_MAJOR} or newer)`));
  }
  const scratchVar = kind.scratch;
  const scratch = seen.get(scratchVar.toLowerCase()) ?? "";
  lines.push(
    seen.get(`${scratchVar.toLowerCase()}_ok`) === "yes"
      ? line("node-local scratch", "ok", `$${scratchVar}=${scratch}`)
      : line(
          "node-local scratch",
          "warn",
          scratch ? `$${scratchVar}=${scratch} is not a writable folder` : `no $${scratchVar}${seen.get("tmpdir") ? `; $TMPDIR=${seen.get("tmpdir")}` : ""}`,
          `setup steps that use $${scratchVar} (venvPerNode, unpack) need a node-local folder: use the one your site documents`,
        ),
  );
  lines.push(seen.has("python3_missing") ? line("python3", "warn", `not found on ${node}`, "load a python module in setup if tasks need it") : line("python3", "ok", seen.get("python3") ?? ""));
  lines.push(
    seen.get("module") === "yes"
      ? line("module command", "ok", "found")
      : line("module command", "warn", `no \`module\` on ${node}`, "modules() steps will fail here; set what they would (PATH, ...) with lines() instead"),
  );
  const gpus = seen.get("gpus") ?? "";
  const asked = gpusPerTask(parameters) > 0;
  lines.push(
    asked && gpus === "" && seen.get("gpu_list") === "0"
      ? line("GPUs", "fail", `asked for ${gpusPerTask(parameters)} GPUs, but the job saw none`, "check the partition's GRES and the gres parameter")
      : line("GPUs", "ok", gpus ? `the job sees ${gpus}` : "none asked for, none seen"),
  );
  return lines;
}

/** A report as text: one line per check with its status, and the fix under each warn or fail. */
export function formatReport(report: CheckReport): string {
  const width = Math.max(...report.lines.map((l) => l.name.length));
  const out: string[] = [];
  for (const l of report.lines) {
    out.push(`${l.status.toUpperCase().padEnd(5)} ${l.name.padEnd(width)}  ${l.detail}`);
    if (l.fix && l.status !== "ok") out.push(`${" ".repeat(6 + width)}  fix: ${l.fix}`);
  }
  const fails = report.lines.filter((l) => l.status === "fail").length;
  const warns = report.lines.filter((l) => l.status === "warn").length;
  const warnings = `${warns} warning${warns === 1 ? "" : "s"}`;
  out.push("", fails ? `${fails} failed, ${warnings}: fix the failures before the first sweep.` : `Ready: ${warns ? `${warnings}, ` : ""}nothing failed.`);
  return `${out.join("\n")}\n`;
}
