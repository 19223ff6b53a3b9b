import { execa } from "execa";
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ParameterError, stageOut, atRuntime, modules } from "../../src/index.js";
import { parsePbsParameters } from "../../src/pbs/parameters.js";
import { formatWalltime, pbsDependency, PBS_SCRIPT } from "../../src/pbs/script.js";
import { qsubArgs } from "../../src/pbs/scheduler.js";
import { planSubmission } from "../../src/slurm/plan.js";
import { checkSubmission } from "../../src/slurm/packing.js";
import { RunFolder } from "../../src/protocol/run-folder.js";
import type { PbsParametersInput } from "../../src/pbs/parameters.js";

async function lint(script: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-pbs-script-"));
  const path = join(dir, "job.sbatch");
  await writeFile(path, script);
  await execa("bash", ["-n", path]);
  await execa("shellcheck", ["--shell=bash", path]);
}

/** The PBS scripts of a submission of `taskCount` tasks, as the executor plans them. */
function plan(input: PbsParametersInput, taskCount = 3, options: { array?: boolean; maxArraySize?: number; dependency?: string; folder?: string; warned?: boolean } = {}) {
  const parameters = parsePbsParameters(input);
  const limits = { maxArraySize: options.maxArraySize ?? 10000, maxSubmitJobs: undefined, nodes: [], maxTimes: new Map() };
  return planSubmission({
    taskCount,
    array: options.array ?? true,
    parameters,
    limits,
    packing: checkSubmission(parameters, { taskCount, dependency: options.dependency }),
    dependency: options.dependency,
    folder: new RunFolder(options.folder ?? "/runs/sweep/20261205T000000Z-abcdef"),
    runner: ["/usr/bin/node", "/pkg/dist/src/pbs/runner.js"],
    warned: options.warned ?? false,
    defaultName: "train",
    scheduler: { kind: "pbs", script: PBS_SCRIPT },
  });
}

const header = (text: string) => text.split("\n").filter((l) => l.startsWith("#PBS"));

describe("PBS parameters", () => {
  test("map to one chunk per node: select, walltime, queue, account and name", () => {
    const p = plan({ jobName: "sweep", time: "1-02:03:04", cpusPerTask: 4, mem: "8G", gpusPerNode: 2, partition: "debug", account: "myproj" });
    expect(header(p.scripts[0]!.text)).toEqual([
      "#PBS -N sweep",
      "#PBS -q debug",
      "#PBS -A myproj",
      "#PBS -l select=1:ncpus=4:mem=8192mb:ngpus=2",
      "#PBS -l walltime=26:03:04",
      "#PBS -J 0-2",
      "#PBS -o /runs/sweep/20261205T000000Z-abcdef/logs/^array_index^.out",
      "#PBS -e /runs/sweep/20261205T000000Z-abcdef/logs/^array_index^.err",
      "#PBS -k oed",
      "#PBS -V",
      "#PBS -v SLURMKIT_TAG=slurmkit:20261205T000000Z-abcdef:0",
    ]);
    expect(p.manifest.kind).toBe("pbs");
  });

  test("memory per CPU is the chunk's memory; gres gpu:N is ngpus; raw options pass through", () => {
    const p = plan({ cpusPerTask: 2, memPerCpu: "1G", gres: "gpu:1" });
    expect(header(p.scripts[0]!.text)).toContain("#PBS -l select=1:ncpus=2:mem=2048mb:ngpus=1");
    const q = plan({ pbs: { m: "abe", M: "me@uni.edu", filesystems: "home:grand" } });
    expect(header(q.scripts[0]!.text).slice(-3)).toEqual(["#PBS -m abe", "#PBS -M me@uni.edu", "#PBS -l filesystems=home:grand"]);
  });

  test("one task is an array of one element (qsub refuses -J 0-0); submit() is a plain job, rerunnable so that qrerun can requeue it", () => {
    expect(header(plan({}, 1).scripts[0]!.text)).toContain("#PBS -J 0-1:2");
    const single = header(plan({}, 1, { array: false }).scripts[0]!.text);
    expect(single.some((l) => l.startsWith("#PBS -J"))).toBe(false);
    expect(single).toContain("#PBS -o /runs/sweep/20261205T000000Z-abcdef/logs/0.out");
    expect(single.some((l) => l.startsWith("#PBS -r"))).toBe(false);
  });

  test("arrays split at max_array_size, each script's elements logging to logs/elements/<array>_<index>", async () => {
    const p = plan({ time: 5 }, 5, { maxArraySize: 2 });
    expect(p.scripts.map((s) => header(s.text).find((l) => l.startsWith("#PBS -J")))).toEqual(["#PBS -J 0-1", "#PBS -J 0-1", "#PBS -J 0-1:2"]);
    const text = p.scripts[2]!.text;
    expect(header(text)).toContain("#PBS -o /dev/null");
    expect(text).toContain('exec 1>>/runs/sweep/20261205T000000Z-abcdef/logs/elements/"${slurmkit_pbs_array}_${slurmkit_pbs_index}".out');
    for (const s of p.scripts) await lint(s.text);
  });

  test("max_run_subjobs limits an array's running elements; `after` is -W depend with PBS's array ids", () => {
    const p = plan({ arrayParallelism: 2 }, 4, { dependency: "afterok:12[]:13,afterany:14[]" });
    const h = header(p.scripts[0]!.text);
    expect(h).toContain("#PBS -W max_run_subjobs=2");
    expect(h).toContain("#PBS -W depend=afterok:12[]:13,afterany:14[]");
    expect(pbsDependency("afterok:5:6_0")).toBe("afterok:5:6[0]");
    // A top-up round's options on qsub's command line: its -v replaces the script's, so the tag goes in too.
    expect(qsubArgs(["--array=0-3%2", "--export=ALL,SLURMKIT_ELEMENT_OFFSET=4,SLURMKIT_ROUND=1"], "slurmkit:x:workers")).toEqual([
      "-J",
      "0-3",
      "-W",
      "max_run_subjobs=2",
      "-v",
      "SLURMKIT_TAG=slurmkit:x:workers,SLURMKIT_ELEMENT_OFFSET=4,SLURMKIT_ROUND=1",
    ]);
    expect(qsubArgs(["--array=0-0"], undefined)).toEqual(["-J", "0-1:2"]);
    expect(() => qsubArgs(["--wrap=x"], undefined)).toThrow("qsub has no form of the option --wrap=x");
  });

  test("a folder with spaces is quoted; one with a double quote cannot be written", async () => {
    const p = plan({}, 2, { folder: "/runs/my sweep/x" });
    expect(header(p.scripts[0]!.text)).toContain('#PBS -o "/runs/my sweep/x/logs/^array_index^.out"');
    await lint(p.scripts[0]!.text);
    expect(() => plan({}, 2, { folder: '/runs/a"b/x' })).toThrow(/double quote/);
  });

  test("what PBS cannot express is a ParameterError that says so, naming each key", () => {
    const cases: Array<[PbsParametersInput, RegExp]> = [
      [{ sbatch: { exclusive: true } } as never, /`sbatch` cannot be expressed on PBS: PBS takes raw qsub options as `pbs/],
      [{ qos: "high" } as never, /`qos` cannot be expressed on PBS/],
      [{ constraint: "a100" } as never, /`constraint` cannot be expressed on PBS/],
      [{ signal: "R:USR1@60" }, /`signal` cannot go to the ranks alone on PBS/],
      [{ nodes: "2-4" }, /`nodes` cannot be a range on PBS/],
      [{ mem: 0 }, /`mem: 0` .* cannot be expressed on PBS/],
      [{ gpusPerNode: "a100:2" }, /cannot name a GPU type on PBS/],
      [{ gres: "nvme:1" }, /`gres` on PBS takes only `gpu:<count>`/],
      [{ jobName: "my job" }, /Expected `jobName` to be at most 236 letters, digits/],
      [{ jobName: "a:b" }, /Expected `jobName` to be at most 236 letters, digits/],
      [{ partition: "debug@otherserver" }, /Expected `partition` to be a queue of the default server/],
      [{ signal: "USR1@60" }, /`signal` needs `time` on PBS/],
      [{ pbs: { vmem: "4gb" } }, /`pbs.vmem` is a limit of the whole job/],
      [{ pbs: { host: "n1" } }, /`pbs.host` is a resource slurmkit writes itself/],
      [{ pbs: { W: "umask=022,block=true" } }, /`pbs.W` may not set depend, max_run_subjobs or block/],
      [{ pbs: { J: "0-3" } }, /`pbs.J` is an option slurmkit writes itself/],
      [{ pbs: { walltime: "1:00:00" } }, /`pbs.walltime` is a resource slurmkit writes itself/],
      [{ pbs: { W: "depend=afterok:1" } }, /`pbs.W` may not set depend/],
      [{ pbs: { M: "a b" } }, /Expected `pbs.M` to be true or a number or a string without spaces/],
      [{ pbs: { "-m": "abe" } }, /Expected `pbs` keys to be a qsub option's letter/],
      [{ cpusPerTsk: 2 } as never, /Unknown parameter `cpusPerTsk` \(did you mean `cpusPerTask`\?\)/],
      [{ time: "soon" }, /Expected `time` to be minutes or a Slurm duration/],
    ];
    for (const [input, message] of cases) {
      let error: unknown;
      try {
        parsePbsParameters(input);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(input)).toBeInstanceOf(ParameterError);
      expect((error as ParameterError).problems.join("\n"), JSON.stringify(input)).toMatch(message);
    }
  });

  test("several ranks: one chunk per node with its ranks as mpiprocs, launched through pbsdsh; the scripts pass shellcheck", async () => {
    const p = plan({ nodes: 2, ntasksPerNode: 2, cpusPerTask: 3, mem: "1G", time: 10, setup: [modules(["python/3.11"]), stageOut({ from: atRuntime("$TMPDIR/out"), to: "/runs/out" })] }, 1, {
      warned: true,
    });
    const text = p.scripts[0]!.text;
    expect(header(text)).toContain("#PBS -l select=2:ncpus=6:mpiprocs=2:ompthreads=3:mem=1024mb");
    expect(header(text)).toContain("#PBS -l place=scatter");
    expect(text).toMatch(/slurmkit_warn_at=\$\(\( \$\(date \+%s\) \+ 510 \)\)/);
    expect(text).toMatch(
      /exec bash -c \$'[\s\S]*pbsdsh[\s\S]*' slurmkit-ranks "\$\{slurmkit_warn_at:-\}" \/runs\/sweep\/20261205T000000Z-abcdef\/state\/\.rank-"\$\{PBS_JOBID:-local\}\." \/usr\/bin\/node /,
    );
    await lint(text);
    // One node, two ranks, no setup, no warning.
    const plain = plan({ ntasksPerNode: 2 }, 1).scripts[0]!.text;
    expect(header(plain)).toContain("#PBS -l select=1:ncpus=2:mpiprocs=2:ompthreads=1");
    expect(plain).not.toContain("slurmkit_warn_at=$((");
    await lint(plain);
    // The scripts inside it, which the launch runs with bash -c: the launcher, each rank's, and the task wrapper.
    const command = PBS_SCRIPT.rankLaunch(2, "/usr/bin/node /pkg/runner.js", ["echo rank"], "USR2", "/runs/state").command;
    const inner = await execa("bash", [
      "-c",
      `set -- ${command}; launcher=$3; printf '%s\\0' "$launcher"; eval "$(printf '%s\\n' "$launcher" | grep -E '^slurmkit_(rank_script|pbs_wrap)=')"; printf '%s\\0' "$slurmkit_rank_script" "$slurmkit_pbs_wrap"`,
    ]);
    const [launcher, rank, wrap] = inner.stdout.split("\0");
    expect(rank).toContain('kill -USR2 "$slurmkit_child"');
    expect(rank).toMatch(/echo rank\n[\s\S]*\ntrap '' USR1 USR2\n[\s\S]*\n"\$@" &\n/);
    for (const script of [launcher!, rank!, wrap!]) await lint(`#!/bin/bash\n${script}\n`);
  });

  test("the launch refuses a nodefile that does not hold one line per rank", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-pbs-launch-"));
    await writeFile(join(dir, "nodefile"), readFileSync(new URL("../fixtures/pbs/nodefile-2x4.txt", import.meta.url), "utf8"));
    const short = PBS_SCRIPT.rankLaunch(3, "true", [], undefined, dir).command;
    const r = await execa("bash", ["-c", `exec ${short}`], { env: { ...process.env, PBS_NODEFILE: join(dir, "nodefile"), PBS_JOBID: "9.s" }, reject: false });
    expect([r.exitCode, r.stderr]).toEqual([1, `slurmkit: expected 3 lines in $PBS_NODEFILE (${join(dir, "nodefile")}), one per rank, found 8`]);
  });

  test("a step's script runs with its arguments: the stage-out helper gets the job id, not its own text", async () => {
    const helpers = (PBS_SCRIPT.nodeHelpers as string[]).join("\n");
    const r = await execa("bash", ["-c", `${helpers}\nslurmkit_on_every_node 'echo "job=$1 nodes=$slurmkit_node_count"' 12_3\nslurmkit_on_every_node_at_exit 'echo "at exit $1 $2"' a b`]);
    expect(r.stdout).toBe("job=12_3 nodes=1\nat exit a b");
  });

  test("the script passes shellcheck and bash -n with setup steps, an exit step and runtime values", async () => {
    const p = plan({ time: 10, setup: [modules(["python/3.11"]), stageOut({ from: atRuntime("$TMPDIR/out"), to: "/runs/out" }), "echo ready"] }, 3);
    const text = p.scripts[0]!.text;
    expect(text).toContain('if ! cd "${PBS_O_WORKDIR:-.}" 2>/dev/null; then');
    // The shell's own reading of the lines that name the job and its element, from PBS_JOBID alone (-V may carry in a parent's PBS_ARRAY_*).
    const prelude = text.split("\n").filter((l) => /^slurmkit_pbs_(id|array|index)=/.test(l) || l.startsWith("case $slurmkit_pbs_id"));
    const read = (env: string) => execa("bash", ["-c", `${env}; ${prelude.join("\n")}\n${PBS_SCRIPT.jobIdLines.join("\n")}\necho "$slurmkit_job $slurmkit_pbs_index"`]);
    expect((await read("PBS_JOBID='7[3].pbshost' PBS_ARRAY_ID='7[].pbshost' PBS_ARRAY_INDEX=3")).stdout).toBe("7_3 3");
    expect((await read("PBS_JOBID='40.pbshost' PBS_ARRAY_ID='7[].pbshost' PBS_ARRAY_INDEX=3")).stdout).toBe("40 0");
    await lint(text);
  });

  test("PBS warns no job before its walltime: the batch shell sends itself the warning, 90 s before, or 30 s into a one-minute job", async () => {
    const text = plan({ time: 10 }, 2, { warned: true }).scripts[0]!.text;
    expect(text).toContain("trap 'slurmkit_warned=1' USR2");
    expect(text).toContain("( sleep 510; kill -USR2 $$ ) >/dev/null 2>&1 &");
    expect(plan({ time: 1 }, 2, { warned: true }).scripts[0]!.text).toContain("( sleep 30; kill -USR2 $$ ) >/dev/null 2>&1 &");
    expect(plan({ time: "00:00:50" }, 2, { warned: true }).scripts[0]!.text).toContain("( sleep 30; kill -USR2 $$ )");
    expect(plan({ time: "00:00:30" }, 2, { warned: true }).scripts[0]!.text).not.toContain("kill -USR2");
    expect(plan({ time: 10, signal: "USR1@120" }, 2, { warned: true }).scripts[0]!.text).toContain("( sleep 480; kill -USR1 $$ ) >/dev/null 2>&1 &");
    await lint(text);
  });

  test("walltime is HH:MM:SS, hours past a day included", () => {
    expect(formatWalltime(59)).toBe("00:00:59");
    expect(formatWalltime(90 * 3600 + 61)).toBe("90:01:01");
  });
});
