// Command tasks in a real container on the real cluster: podman (with runc,
// as root, in the test cluster's private containers.conf), and an image
// without Node.js (a static busybox, built by cluster.sh). The runner stays
// outside. The other runtimes' lines are golden files (test/runner/container-line.test.ts).
import { execa } from "execa";
import { existsSync } from "node:fs";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import {
  atRuntime,
  command,
  container,
  ContainerError,
  JobEndedWithoutResultError,
  LocalExecutor,
  LocalTransport,
  SlurmExecutor,
  TaskFailedError,
  type Job,
  type MapArrayOptions,
} from "../../src/index.js";
import { slurmWatcher } from "../../src/slurm/watch.js";
import { localFallback } from "../../src/sdk/auto-executor.js";
import { clusterScript, needCluster } from "../helpers/cluster.js";
import { startRequeuedAtOnce } from "../helpers/requeue.js";
import { inImage } from "../fixtures/container-tasks.js";
import { runsFolder } from "../helpers/runs-folder.js";

let image = "";
beforeAll(async () => {
  slurmWatcher(new LocalTransport()).setIntervals({ minMs: 500, maxMs: 2000 });
  // The jobs inherit CONTAINERS_CONF from this process (sbatch exports the environment).
  const found = await execa("bash", [clusterScript, "podman"], { reject: false });
  const vars = Object.fromEntries([...found.stdout.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  if (vars.CONTAINERS_CONF) process.env.CONTAINERS_CONF = vars.CONTAINERS_CONF;
  image = vars.PODMAN_IMAGE ?? "";
});

const podman = (args: string[]) => execa("podman", args, { env: { CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? "" }, reject: false });
const ways: Array<[string, MapArrayOptions]> = [
  ["one per element", {}],
  ["packed, two slots", { workers: 1, slots: 2 }],
];

describe("command tasks in a podman container, the runner outside", () => {
  for (const [name, packing] of ways) {
    test(`${name}: each task runs in its own container of the image, with its variables, working directory and binds; results, logs and CPU time arrive`, { timeout: 180_000 }, async (ctx) => {
      needCluster(ctx);
      const work = await mkdtemp(join(tmpdir(), "slurmkit-container-"));
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "200M", setup: [container({ runtime: "podman", image, binds: [work] })] });
      const inside =
        'cat /etc/slurmkit-image; test -e /usr/bin/node || echo "no node"; echo "foo=$FOO job=$SLURM_ARRAY_JOB_ID cwd=$(pwd)"; grep -o "libpod-[0-9a-f]*" /proc/self/cgroup | head -n 1 > "$1/$2.id"; echo "to stderr" >&2';
      // A busy loop of 1.5 s inside: its CPU time is counted, though podman's processes are not the runner's children.
      const busy = 'end=$(($(date +%s) + 2)); while [ "$(date +%s)" -lt "$end" ]; do :; done';
      const jobs = await executor.mapArray(
        [
          command("sh", ["-c", inside, "sh", work, "a"], { env: { FOO: "it's $HOME" }, cwd: work }),
          command("sh", ["-c", inside, "sh", work, "b"], { env: { FOO: "b" }, cwd: work }),
          command("sh", ["-c", busy]),
          command("sh", ["-c", "exit 7"]),
        ],
        packing,
      );
      const [a, b, spin, seven] = jobs;
      expect(await a!.result()).toEqual({ exitCode: 0 });
      expect(await b!.result()).toEqual({ exitCode: 0 });
      expect(await a!.stdout()).toBe(`inside the slurmkit test image\nno node\nfoo=it's $HOME job=${a!.id.split("_")[0]} cwd=${work}\n`);
      expect(await a!.stderr()).toBe("to stderr\n");
      const ids = await Promise.all(["a", "b"].map((t) => readFile(join(work, `${t}.id`), "utf8")));
      expect(ids[0]).toMatch(/^libpod-[0-9a-f]{64}\n$/);
      expect(ids[1]).toMatch(/^libpod-[0-9a-f]{64}\n$/);
      expect(ids[0]).not.toBe(ids[1]);
      expect(await spin!.result()).toEqual({ exitCode: 0 });
      const usage = await spin!.usage();
      expect(usage!.cpuSeconds).toBeGreaterThanOrEqual(1);
      const error = await seven!.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskFailedError);
      expect((error as TaskFailedError).exitCode).toBe(7);
      // No container is left behind.
      expect((await podman(["ps", "-a", "--filter", `ancestor=${image}`, "--format", "{{.ID}} {{.Command}}"])).stdout).not.toMatch(/exit 7|slurmkit test image/);
    });
  }

  for (const [name, packing] of ways) {
    test(`${name}: a function task runs outside the image and starts commands in it through ctx.container.exec`, { timeout: 120_000 }, async (ctx) => {
      needCluster(ctx);
      const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "200M", setup: [container({ runtime: "podman", image })] });
      const [job] = await executor.mapArray([inImage.with("m1")], packing);
      expect(await job!.result()).toEqual({ runtime: "podman", image, ok: { exitCode: 0 }, failed: { name: "CommandFailed", exitCode: 3, isTaskFailed: false } });
      expect(await job!.stdout()).toBe("inside the slurmkit test image\nmarker=m1\n");
    });
  }

  test("what a container task holds counts the same one per element and packed: the runner or slot, podman's client, conmon and the processes inside", { timeout: 180_000 }, async (ctx) => {
    needCluster(ctx);
    // dd inside holds a 60 MiB buffer for 3 s (its reader never reads); beside a twin that holds nothing.
    const hold = (mb: number) => command("sh", ["-c", `dd if=/dev/zero bs=${Math.max(mb, 1)}M count=1 2>/dev/null | sleep 3; echo held`]);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 2, mem: "250M", setup: [container({ runtime: "podman", image })] });
    const [own0, own60] = await executor.mapArray([hold(0), hold(60)]);
    const [packed0, packed60] = await executor.mapArray([hold(0), hold(60)], { workers: 1, slots: 1 });
    const peak = async (job: Job<unknown>) => {
      await job.result();
      return (await job.usage())!.memPeakMb!;
    };
    const [o0, o60, p0, p60] = (await Promise.all([own0!, own60!, packed0!, packed60!].map(peak))) as [number, number, number, number];
    expect((await own60!.stdout()).trim()).toBe("held");
    expect((await packed60!.stdout()).trim()).toBe("held");
    // The shell's 60 MiB (and the pipe's buffers) in both ways, counted through conmon, which is not the runner's child.
    for (const [idle, busy] of [
      [o0, o60],
      [p0, p60],
    ] as const) {
      // Within 12 MiB: podman's client, in both twins, varies by several MiB from run to run (without conmon's tree the difference would be about 0).
      expect(busy - idle).toBeGreaterThanOrEqual(59 - 12);
      expect(busy - idle).toBeLessThanOrEqual(59 + 12);
    }
    // The overhead (runner or slot, client, conmon) is the same, within sampling.
    expect(Math.abs(o0 - p0)).toBeLessThanOrEqual(16);
  });

  test("a task over its time limit ends TIMEOUT: the process inside gets SIGTERM, and is gone though it ignored it (one per element and packed)", { timeout: 300_000 }, async (ctx) => {
    needCluster(ctx);
    const work = await mkdtemp(join(tmpdir(), "slurmkit-container-timeout-"));
    // It notes its pid (the node's: podman shares the host's PID namespace) and each SIGTERM, and goes on.
    const stubborn = (tag: string) => command("sh", ["-c", `echo $$ > "$1/${tag}.pid"; trap 'echo TERM >> "$1/${tag}.log"' TERM; while :; do sleep 1; done`, "sh", work]);
    const label = `slurmkit-test=timeout-${Date.now()}`;
    const setup = [container({ runtime: "podman", image, binds: [work], options: ["--label", label] })];
    const [element] = await new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: "200M", setup }).mapArray([stubborn("element")]);
    const [packed] = await new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: "200M", setup }).mapArray([stubborn("packed")], { workers: 1, slots: 1 });
    for (const [tag, job] of [
      ["element", element!],
      ["packed", packed!],
    ] as const) {
      const error = await job.result().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JobEndedWithoutResultError);
      expect(job.state).toBe("TIMEOUT");
      expect(await readFile(join(work, `${tag}.log`), "utf8")).toMatch(/^TERM\n/);
      const pid = (await readFile(join(work, `${tag}.pid`), "utf8")).trim();
      // Killed by the runner's grace (element) or its worker's (packed), before Slurm's KillWait ends the runner.
      const deadline = Date.now() + 40_000;
      while (existsSync(`/proc/${pid}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      expect(existsSync(`/proc/${pid}`), `${tag}: process ${pid} inside is gone`).toBe(false);
    }
    // podman's client, spared, removes each container once the processes inside ended (a few seconds on a loaded machine).
    let left = "";
    for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 1000))) {
      left = (await podman(["ps", "-a", "--filter", `label=${label}`, "--format", "{{.ID}} {{.Status}}"])).stdout;
      if (left === "") break;
    }
    expect(left).toBe("");
  });

  test("a requeued command resumes from its checkpoint inside the container: Slurm's warning reaches the process inside", { timeout: 300_000 }, async (ctx) => {
    needCluster(ctx);
    const work = await mkdtemp(join(tmpdir(), "slurmkit-container-requeue-"));
    const script = [
      'state="$1/saved"',
      'if [ -f "$state" ]; then echo "resumed from $(cat "$state") in $(cat /etc/slurmkit-image)"; exit 0; fi',
      'trap \'echo 41 > "$state"; echo "saved on USR2"; exit 3\' USR2',
      "echo working; while :; do sleep 1; done",
    ].join("\n");
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, signal: "USR2@30", setup: [container({ runtime: "podman", image, binds: [work] })] });
    const job = await executor.submit(command("sh", ["-c", script, "resumer", work], { requeue: { onTimeout: true } }));
    const release = startRequeuedAtOnce(job);
    try {
      expect(await job.result()).toEqual({ exitCode: 0 });
    } finally {
      release();
    }
    expect((await job.attempts()).map((a) => [a.ended, a.requeued])).toEqual([
      ["TIMEOUT", true],
      ["COMPLETED", false],
    ]);
    expect(await job.stdout()).toMatch(/^working\nsaved on USR2\n\n===== slurmkit: task 0, attempt 1, [^\n]+\nresumed from 41 in inside the slurmkit test image\n$/);
  });

  test("local processes too: LocalExecutor's container, and autoExecutor's fallback keeps a container step (runnerInside is refused there)", { timeout: 60_000 }, async (ctx) => {
    needCluster(ctx);
    const local = new LocalExecutor({ folder: await runsFolder(), container: { runtime: "podman", image } });
    const job = await local.submit(command("cat", ["/etc/slurmkit-image"]));
    expect(await job.result()).toEqual({ exitCode: 0 });
    expect(await job.stdout()).toBe("inside the slurmkit test image\n");
    const fallback = localFallback({ folder: await runsFolder() }, { setup: [container({ runtime: "podman", image })] });
    const [viaFallback] = await fallback.mapArray([command("cat", ["/etc/slurmkit-image"])]);
    expect(await viaFallback!.result()).toEqual({ exitCode: 0 });
    expect(await viaFallback!.stdout()).toBe("inside the slurmkit test image\n");
    expect(() => localFallback({ folder: "/tmp/x" }, { setup: [container({ runtime: "apptainer", image: "/x.sif", runnerInside: true })] })).toThrow(
      /runnerInside: true` needs a scheduler's job script/,
    );
    expect(() => new LocalExecutor({ folder: "/tmp/x", container: { runtime: "docker" } as never })).toThrow("Expected `container.runtime` to be one of");
  });

  test("a missing image, runtime or bind source is a ContainerError that names the node and the fix; a missing file is found before the submit", { timeout: 120_000 }, async (ctx) => {
    needCluster(ctx);
    const executor = new SlurmExecutor({ folder: await runsFolder(), time: 1, mem: "100M" });
    const jobs = await executor.mapArray([
      command("true", [], { container: { runtime: "podman", image: "localhost/no-such-image:1" } }),
      command("true", [], { container: { runtime: "enroot", image: "/etc/hostname" } }),
      command("true", [], { container: { runtime: "podman", image, binds: [atRuntime(`${tmpdir()}/slurmkit-no-such-folder-$SLURM_JOB_ID`)] } }),
    ]);
    const errors = (await Promise.all(jobs.map((j) => j.result().catch((e: unknown) => e)))) as TaskFailedError[];
    for (const e of errors) {
      expect(e).toBeInstanceOf(TaskFailedError);
      expect(e.remote.name).toBe("ContainerError");
    }
    expect(errors[0]!.remote.message).toMatch(
      /^podman has no image localhost\/no-such-image:1, and could not pull it on n[12]: load it there \(podman load, podman import\), or give the name of one it can pull$/,
    );
    expect(errors[1]!.remote.message).toMatch(/^enroot is not installed \(not in its PATH\) on n[12]: load its module in the setup/);
    expect(errors[2]!.remote.message).toMatch(/^the source of container.binds\[0\] \(.*slurmkit-no-such-folder-\d+\) does not exist on n[12]: create it there/);
    // A file path is checked before anything is submitted: no folder, no job.
    const folder = await runsFolder();
    const refused = new SlurmExecutor({ folder, time: 1, setup: [container({ runtime: "apptainer", image: "/no/such/pytorch.sif" })] });
    const thrown = await refused.mapArray([command("python", ["train.py"])]).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(ContainerError);
    expect((thrown as ContainerError).message).toContain("the apptainer image /no/such/pytorch.sif does not exist");
    expect(existsSync(folder) ? (await execa("ls", [folder])).stdout : "").toBe("");
    // An unknown runtime never gets that far.
    expect(() => container({ runtime: "docker" as never, image: "x" })).toThrow(/Expected `runtime` to be one of "apptainer", "singularity", "podman", "podman-hpc", "enroot", "pyxis", got `docker`/);
  });
});
