import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { atRuntime, executorFromFlags, LocalExecutor, ParameterError, parseParameters, parsePbsFlags, parseSlurmFlags, PbsExecutor, SlurmExecutor } from "../../src/index.js";
import { expandRuntime } from "../../src/protocol/runtime-value.js";

const ACCEPTED =
  "accepted: account, array_parallelism, constraint, cpus_per_task, dependency, exclude, gpus_per_node, gres, job_name, max_requeues, mem, mem_per_cpu, nodelist, nodes, ntasks_per_node, partition, qos, signal, slurm_setup, time, and sbatch.<option> for any other sbatch option";

function problemsOf(argv: string[], cwd?: string): readonly string[] {
  try {
    parseSlurmFlags(argv, cwd === undefined ? {} : { cwd });
  } catch (error) {
    expect(error).toBeInstanceOf(ParameterError);
    expect((error as ParameterError).shortMessage).toBe(`Invalid --slurm flags: ${(error as ParameterError).problems[0]}`);
    return (error as ParameterError).problems;
  }
  throw new Error("expected a ParameterError");
}

describe("parseSlurmFlags", () => {
  test("reads the pairs after --slurm up to the next option and leaves the rest for the script", () => {
    const argv = ["-i", "$SLURM_TMPDIR/fb_yolo/images/val", "-o", "out", "--slurm", "gres=gpu:t4:1", "cpus_per_task=12", "mem=32GB", "time=01:00:00", "--verbose", "x"];
    const flags = parseSlurmFlags(argv);
    expect(flags.parameters).toEqual({ gres: "gpu:t4:1", cpusPerTask: 12, mem: "32GB", time: "01:00:00" });
    expect(flags.rest).toEqual(["-i", "$SLURM_TMPDIR/fb_yolo/images/val", "-o", "out", "--verbose", "x"]);
    expect(flags.setup).toEqual([]);
    // The same schema as the executor's: units and durations parsed.
    expect(parseParameters(flags.parameters)).toMatchObject({ cpusPerTask: 12, mem: 32 * 1024, time: 3600 });
  });

  test("without --slurm there are no parameters (run locally) and argv is untouched", () => {
    const argv = ["-i", "data", "--slurmish", "a=b"];
    expect(parseSlurmFlags(argv)).toEqual({ parameters: undefined, setup: [], rest: argv });
    expect(parseSlurmFlags([])).toEqual({ parameters: undefined, setup: [], rest: [] });
  });

  test("--slurm with no pairs means Slurm with the defaults", () => {
    expect(parseSlurmFlags(["--slurm", "-o", "out"])).toEqual({ parameters: {}, setup: [], rest: ["-o", "out"] });
  });

  test("snake_case, kebab-case and camelCase keys name the same parameter", () => {
    const flags = parseSlurmFlags(["--slurm", "cpus-per-task=2", "mem_per_cpu=1G", "jobName=x y", "array_parallelism=4", "ntasks-per-node=2", "gpus_per_node=a100:2"]);
    expect(flags.parameters).toEqual({ cpusPerTask: 2, memPerCpu: "1G", jobName: "x y", arrayParallelism: 4, ntasksPerNode: 2, gpusPerNode: "a100:2" });
  });

  test("values may contain =; sbatch.NAME passes any sbatch option, and sbatch.NAME alone is a flag", () => {
    const flags = parseSlurmFlags(["--slurm", "sbatch.export=ALL,X=1", "sbatch.mail-type=END", "sbatch.exclusive", "dependency=afterok:12"]);
    expect(flags.parameters).toEqual({ dependency: "afterok:12", sbatch: { export: "ALL,X=1", "mail-type": "END", exclusive: true } });
    expect(parseParameters(flags.parameters).sbatch).toEqual({ export: "ALL,X=1", "mail-type": "END", exclusive: true });
  });

  test("several --slurm groups add up; tokens after -- are left alone", () => {
    const flags = parseSlurmFlags(["--slurm", "mem=1G", "-v", "--slurm", "time=5", "--", "--slurm", "mem=2G"]);
    expect(flags.parameters).toEqual({ mem: "1G", time: "5" });
    expect(flags.rest).toEqual(["-v", "--", "--slurm", "mem=2G"]);
  });

  test("slurm_setup=FILE reads the file, relative to cwd, as a setup step", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-flags-"));
    await writeFile(join(dir, "setup.txt"), "module load python/3.11\r\nexport FOO=1\n");
    const flags = parseSlurmFlags(["--slurm", "slurm_setup=setup.txt", "time=10"], { cwd: dir });
    expect(flags.parameters).toEqual({ time: "10" });
    expect(flags.setup).toHaveLength(1);
    expect(flags.setup[0]!.kind).toBe("setupFile");
    expect(flags.setup[0]!.batch).toEqual([`# from "${join(dir, "setup.txt")}"`, "module load python/3.11", "export FOO=1"]);
    expect(parseSlurmFlags(["--slurm", "setup=setup.txt"], { cwd: dir }).setup[0]!.batch[1]).toBe("module load python/3.11");
  });

  test("the text of -i arrives literally and becomes a runtime value only when the script says so", () => {
    const { rest } = parseSlurmFlags(["-i", "$SLURM_TMPDIR/fb_yolo/images/val", "--slurm", "time=5"]);
    expect(rest[1]).toBe("$SLURM_TMPDIR/fb_yolo/images/val");
    const input = atRuntime(rest[1]!);
    expect(expandRuntime(input, { SLURM_TMPDIR: "/local/job7" })).toBe("/local/job7/fb_yolo/images/val");
  });
});

describe("parseSlurmFlags errors name the flag and what is accepted", () => {
  test("an unknown key lists close matches and the accepted keys", () => {
    expect(problemsOf(["--slurm", "cpus_per_tsk=2"])).toEqual([`Unknown key \`cpus_per_tsk\` (did you mean \`cpus_per_task\`?); ${ACCEPTED}`]);
    expect(problemsOf(["--slurm", "partiton=gpu"])).toEqual([`Unknown key \`partiton\` (did you mean \`partition\`?); ${ACCEPTED}`]);
  });

  test("an unknown key with no close match points at sbatch.NAME", () => {
    expect(problemsOf(["--slurm", "mail_type=END"])).toEqual([`Unknown key \`mail_type\`; ${ACCEPTED} (or \`sbatch.mail-type=END\` to pass it to sbatch as it is)`]);
  });

  test("a repeated key is an error, whatever its spelling", () => {
    expect(problemsOf(["--slurm", "cpus_per_task=2", "cpus-per-task=3"])).toEqual(["`cpus-per-task` is given twice (also as `cpus_per_task`); give each key once"]);
    expect(problemsOf(["--slurm", "mem=1G", "-x", "--slurm", "mem=2G"])).toEqual(["`mem` is given twice (also as `mem`); give each key once"]);
    expect(problemsOf(["--slurm", "sbatch.exclusive", "sbatch.exclusive=user"])).toEqual(["`sbatch.exclusive` is given twice (also as `sbatch.exclusive`); give each key once"]);
  });

  test("bad values get the schema's message, every one of them at once", () => {
    expect(problemsOf(["--slurm", "cpus_per_task=-1", "mem=lots", "time=forever", "nodes=0", "signal=USR1@soon", "gres=gpu t4", "partition="])).toEqual([
      "Expected `cpus_per_task` to be a positive integer, got `-1`",
      "Expected `mem` to be megabytes or a size with a unit such as `500M`, `32G` or `32GB`, or 0 for all of each node's memory, got `lots`",
      "Expected `time` to be minutes or a Slurm duration such as `90`, `01:30:00` or `1-00:00:00`, got `forever`",
      "Expected `nodes` to be a positive integer or a range such as `2-4`, got `0`",
      'Expected `signal` to be a signal name such as `USR2@90` or `{ name: "USR2", secondsBefore: 90 }` (not KILL, STOP, TERM, INT or CONT, which end or pause the job), got `USR1@soon`',
      "Expected `gres` to be a gres string such as `gpu:t4:1`, got `gpu t4`",
      "Expected `partition` to be a non-empty string on one line, got ``",
    ]);
  });

  test("a token without = (or with an empty key) is not a pair", () => {
    expect(problemsOf(["--slurm", "mem=1G", "input.txt"])).toEqual([
      `Expected key=value after --slurm, got \`input.txt\` (put the script's own arguments before the flag); accepted keys: ${ACCEPTED.replace("accepted: ", "")}`,
    ]);
    expect(problemsOf(["--slurm", "=3"])).toEqual([`Expected key=value after --slurm, got \`=3\` (the key is empty); accepted keys: ${ACCEPTED.replace("accepted: ", "")}`]);
  });

  test("a missing or unreadable setup file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-flags-"));
    expect(problemsOf(["--slurm", "slurm_setup=nope.txt"], dir)).toEqual([`\`slurm_setup\`: Cannot read setup file \`nope.txt\` (${join(dir, "nope.txt")}): no such file`]);
    expect(problemsOf(["--slurm", "slurm_setup=."], dir)).toEqual([`\`slurm_setup\`: Cannot read setup file \`.\` (${dir}): it is a folder`]);
    expect(problemsOf(["--slurm", "slurm_setup="], dir)).toEqual(["`slurm_setup`: Expected `path` to be a file path, got ``"]);
  });

  test("--slurm=... is not how the pairs are given", () => {
    expect(problemsOf(["--slurm=mem=1G"])).toEqual(["Expected `--slurm` followed by key=value pairs as separate arguments, got `--slurm=mem=1G`"]);
  });

  test("a reserved sbatch option gets no sbatch.NAME hint", () => {
    expect(problemsOf(["--slurm", "output=x"])).toEqual([`Unknown key \`output\`; ${ACCEPTED}`]);
  });

  test("bad sbatch.NAME options", () => {
    expect(problemsOf(["--slurm", "sbatch.array=1-3", "sbatch.out=x", "sbatch.Mail=x", "sbatch.--mem=1", "sbatch.mail-type=", "sbatch.time=5", "sbatch.cpus-per-task=2"])).toEqual([
      "`sbatch.array` cannot be set: slurmkit sets --array itself",
      "`sbatch.out` cannot be set: slurmkit sets --output itself",
      "Expected an sbatch long option name after `sbatch.` (lower-case, without dashes in front, such as `sbatch.mail-type=END`), got `sbatch.Mail`",
      "Expected an sbatch long option name after `sbatch.` (lower-case, without dashes in front, such as `sbatch.mail-type=END`), got `sbatch.--mem`",
      "Expected `sbatch.mail-type` to have a value on one line (or no `=` for a flag such as `sbatch.exclusive`), got `sbatch.mail-type=`",
      "`sbatch.time` cannot be set: use `time=` instead, which slurmkit checks",
      "`sbatch.cpus-per-task` cannot be set: use `cpus_per_task=` instead, which slurmkit checks",
    ]);
  });

  test("argv that is not an array of strings", () => {
    expect(() => parseSlurmFlags("--slurm mem=1G" as unknown as string[])).toThrow("Invalid command line: Expected argv to be an array of strings such as process.argv.slice(2), got `--slurm mem=1G`");
  });
});

describe("executorFromFlags", () => {
  test("no --slurm gives a LocalExecutor; --slurm a SlurmExecutor with defaults under the flags", async () => {
    const folder = await mkdtemp(join(tmpdir(), "slurmkit-flags-"));
    await writeFile(join(folder, "setup.txt"), "echo from-file\n");
    expect(() => executorFromFlags(parseSlurmFlags([]), { folder, time: "soon" })).toThrow("Invalid Slurm parameters: Expected `time` to be minutes");
    const local = executorFromFlags(parseSlurmFlags(["-o", "x"]), { folder, time: 5, maxParallel: 2 });
    expect(local).toBeInstanceOf(LocalExecutor);
    expect((local as LocalExecutor).maxParallel).toBe(2);
    // Run here, each task keeps its time limit (5 minutes).
    expect((local as LocalExecutor).timeSeconds).toBe(300);

    const flags = parseSlurmFlags(["--slurm", "time=01:00:00", "sbatch.mail-type=END", "slurm_setup=setup.txt"], { cwd: folder });
    const slurm = executorFromFlags(flags, { folder, time: 5, mem: "1G", sbatch: { "mail-user": "a@b" }, setup: ["echo from-code"] });
    expect(slurm).toBeInstanceOf(SlurmExecutor);
    const p = (slurm as SlurmExecutor).parameters;
    expect(p.time).toBe(3600);
    expect(p.mem).toBe(1024);
    expect(p.sbatch).toEqual({ "mail-user": "a@b", "mail-type": "END" });
    expect(p.setup?.map((s) => (typeof s === "string" ? s : s.batch.at(-1)))).toEqual(["echo from-code", "echo from-file"]);
    // A bad default fails on its own, even when a flag would override it; a setting SlurmExecutor does not take stays an unknown parameter.
    expect(() => executorFromFlags(parseSlurmFlags(["--slurm", "time=10"]), { folder, time: "soon" })).toThrow("Expected `time` to be minutes");
    expect(() => new SlurmExecutor({ folder, maxParallel: 2 } as never)).toThrow("Unknown option `maxParallel`; accepted: account,");
  });
});

describe("parsePbsFlags", () => {
  const problems = (argv: string[]): readonly string[] => {
    try {
      parsePbsFlags(argv);
    } catch (error) {
      expect((error as ParameterError).shortMessage).toBe(`Invalid --pbs flags: ${(error as ParameterError).problems[0]}`);
      return (error as ParameterError).problems;
    }
    throw new Error("expected a ParameterError");
  };

  test("reads --pbs pairs as --slurm's: typed keys in any spelling, pbs.LETTER and pbs.RESOURCE raw, the rest left for the script", () => {
    const flags = parsePbsFlags(["-o", "out", "--pbs", "time=01:00:00", "cpus-per-task=4", "partition=debug", "pbs.m=abe", "pbs.filesystems=home:grand", "pbs.h", "-i", "x"]);
    expect(flags).toEqual({
      parameters: { time: "01:00:00", cpusPerTask: 4, partition: "debug", pbs: { m: "abe", filesystems: "home:grand", h: true } },
      setup: [],
      rest: ["-o", "out", "-i", "x"],
      scheduler: "pbs",
    });
    expect(parsePbsFlags(["-o", "out"])).toEqual({ parameters: undefined, setup: [], rest: ["-o", "out"], scheduler: "pbs" });
  });

  test("what PBS cannot express is refused saying why; unknown keys get close matches; raw options are checked", () => {
    expect(problems(["--pbs", "qos=high", "constraint=a100"])).toEqual([
      "`qos` cannot be expressed on PBS: PBS has no QOS; a queue (`partition`) may be what you want",
      "`constraint` cannot be expressed on PBS: PBS selects node features through your site's custom resources: `pbs: { <resource>: <value> }`",
    ]);
    expect(problems(["--pbs", "cpus_per_tsk=2"])[0]).toMatch(
      /^Unknown key `cpus_per_tsk` \(did you mean `cpus_per_task`\?\); accepted: account, array_parallelism, cpus_per_task, .*pbs_setup.*, and pbs.<letter> for any other qsub option/,
    );
    expect(problems(["--pbs", "filesystems=home"])[0]).toContain("(or `pbs.filesystems=home` to pass it to qsub as the -l resource filesystems)");
    expect(problems(["--pbs", "pbs.J=0-3", "pbs.walltime=1:00:00", "pbs.M=a b"])).toEqual([
      expect.stringContaining("`pbs.J` is an option slurmkit writes itself"),
      expect.stringContaining("`pbs.walltime` is a resource slurmkit writes itself"),
      expect.stringContaining("Expected `pbs.M` to be true or a number or a string without spaces"),
    ]);
    expect(problems(["--pbs", "time=soon"])).toEqual([expect.stringMatching(/^Expected `time` to be minutes/)]);
  });

  test("executorFromFlags makes a PbsExecutor with the defaults under the flags, or runs here without --pbs", async () => {
    const folder = await mkdtemp(join(tmpdir(), "slurmkit-flags-"));
    const pbs = executorFromFlags(parsePbsFlags(["--pbs", "time=01:00:00", "pbs.m=abe"]), { folder, time: 5, mem: "1G", pbs: { M: "a@b" } });
    expect(pbs).toBeInstanceOf(PbsExecutor);
    const p = (pbs as PbsExecutor).parameters;
    expect([p.time, p.mem, p.sbatch]).toEqual([3600, 1024, { "pbs:M": "a@b", "pbs:m": "abe" }]);
    expect(executorFromFlags(parsePbsFlags([]), { folder, time: 5 })).toBeInstanceOf(LocalExecutor);
    expect(() => executorFromFlags(parsePbsFlags(["--pbs"]), { folder, qos: "x" } as never)).toThrow("`qos` cannot be expressed on PBS");
  });
});
