// Reading a task's memory from /proc and the cgroup files: the parsers on recorded text, and one live read.
import { execFileSync, spawn } from "node:child_process";
import { describe, expect, test } from "vitest";
import { cgroupLimitBytes, cgroupOomKills, oomKillCounter, parseRollupKb, parseStatCpuTicks, parseStatParent, parseStatusKb, processTree, sampleTrees } from "../../runner/memory.js";
import { OwnCpu } from "../../runner/usage.js";
import { GpuSampler } from "../../runner/gpu.js";

const rollup = `55d0c9a4e000-7ffd2f3c2000 ---p 00000000 00:00 0                          [rollup]
Rss:               47356 kB
Pss:               21337 kB
Pss_Dirty:          8210 kB
Pss_Anon:           8110 kB
Pss_File:          13127 kB
Pss_Shmem:           100 kB
Shared_Clean:      38136 kB
`;

const status = `Name:\tnode
VmPeak:\t 1019688 kB
VmRSS:\t   47356 kB
RssAnon:\t    9120 kB
RssFile:\t   38136 kB
RssShmem:\t     100 kB
Threads:\t7
`;

describe("a task's memory, as the node counts it", () => {
  test("a process's CPU ticks: its own user and system time, and its reaped children's", () => {
    expect(parseStatCpuTicks("4892 (node) S 4880 4892 4880 0 -1 4194560 3473 0 0 0 12 3 0 0 20 0 7 0 1234 1044160512 11839 18446744073709551615")).toBe(15);
    expect(parseStatCpuTicks("77 (a) b (c) d) S 12 77 77 0 -1 4194560 3473 0 0 0 120 30 400 50 20 0 1 0 99")).toBe(600);
    expect(parseStatCpuTicks("77 (cut")).toBeUndefined();
  });

  test("this process's CPU time counts its own, and a child's once it is reaped, however the child was started", async () => {
    const cpu = new OwnCpu();
    const burn = "import time\nwhile time.process_time() < 0.5: pass";
    // Its own, as process.cpuUsage says (children of the tests before may be reaped meanwhile and add to it).
    let before = cpu.ms()!;
    const spin = process.cpuUsage();
    while (process.cpuUsage(spin).user < 200_000);
    expect(cpu.ms()! - before).toBeGreaterThanOrEqual(200);
    // A child: 0.5 s of its CPU, in 10 ms ticks (the kernel rounds its user and system times down, a tick each at most).
    before = cpu.ms()!;
    const child = spawn("/usr/bin/python3", ["-c", burn]);
    await new Promise((resolve) => child.on("exit", resolve));
    let spent = cpu.ms()! - before;
    expect(spent).toBeGreaterThanOrEqual(480);
    expect(spent).toBeLessThan(1000);
    // A synchronous one, started right after a read: seen at once, not half a second later.
    before = cpu.ms()!;
    execFileSync("/usr/bin/python3", ["-c", burn]);
    spent = cpu.ms()! - before;
    expect(spent).toBeGreaterThanOrEqual(480);
    expect(spent).toBeLessThan(1000);
    // One that could not start changes nothing, and is not waited for.
    before = cpu.ms()!;
    const missing = spawn("/no/such/program");
    await new Promise((resolve) => missing.on("error", resolve));
    expect(cpu.ms()! - before).toBeLessThan(50);
    cpu.close();
  });

  test("with no nvidia-smi on the node, a task's GPUs record nothing and nothing fails", async () => {
    const sampler = GpuSampler.start("0")!;
    const stop = sampler.track(["0"]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stop()).toBeUndefined();
    sampler.close();
    expect(GpuSampler.start(undefined)).toBeUndefined();
  });

  test("a process's parent, whatever its command name holds", () => {
    expect(parseStatParent("4892 (node) S 4880 4892 4880 0 -1 4194560 3473 0 0 0 12 3 0 0 20 0 7 0 1234 1044160512 11839 18446744073709551615")).toBe(4880);
    expect(parseStatParent("77 (a) b (c) d) R 12 77 77 0 -1")).toBe(12);
  });

  test("resident sets, as Slurm's jobacct_gather/linux counts them; PSS with UsePss; anonymous and shared-memory pages split between sharers, as a memory cgroup charges them", () => {
    expect(parseStatusKb(status, "resident")).toBe(47356);
    expect(parseRollupKb(rollup, "proportional")).toBe(21337);
    expect(parseRollupKb(rollup, "charged")).toBe(8210);
    // A kernel before 5.9 has no Pss_Anon: status's RssAnon + RssShmem then (shared pages in full), or the resident set without those.
    expect(parseRollupKb("Rss:  100 kB\nPss:  60 kB\n", "charged")).toBeUndefined();
    expect(parseStatusKb(status, "charged")).toBe(9220);
    expect(parseStatusKb("VmRSS:\t  5000 kB\n", "charged")).toBe(5000);
    // A kernel thread or a process that has gone shows no memory.
    expect(parseStatusKb("Name:\tkthreadd\n", "resident")).toBe(0);
  });

  test("a process tree: the process and everything it started, at any depth", () => {
    const parents = new Map([
      [10, 1],
      [11, 10],
      [12, 11],
      [13, 10],
      [20, 1],
      [21, 20],
    ]);
    expect(processTree(10, parents).sort()).toEqual([10, 11, 12, 13]);
    expect(processTree(21, parents)).toEqual([21]);
    // Parents read at different moments, with a pid reused, can make a loop: each pid is listed once.
    expect(
      processTree(
        30,
        new Map([
          [31, 30],
          [30, 31],
        ]),
      ).sort(),
    ).toEqual([30, 31]);
  });

  test("the least memory limit of a process's cgroup and its parents, in cgroup v1 and v2; none when unlimited", () => {
    const files = (entries: Record<string, string>) => (path: string) => entries[path];
    const v1 = "12:pids:/slurm/uid_0/job_5/step_batch\n4:memory:/slurm/uid_0/job_5/step_batch\n1:name=systemd:/\n";
    // Slurm's v1 plugin may limit the job and leave the step unlimited.
    expect(
      cgroupLimitBytes(
        v1,
        files({
          "/sys/fs/cgroup/memory/slurm/uid_0/job_5/step_batch/memory.limit_in_bytes": "9223372036854771712\n",
          "/sys/fs/cgroup/memory/slurm/uid_0/job_5/memory.limit_in_bytes": "310378496\n",
          "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        }),
      ),
    ).toBe(310378496);
    const v2 = "0::/system.slice/slurmstepd.scope/job_7/step_batch/user/task_0\n";
    expect(cgroupLimitBytes(v2, files({ "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/memory.max": "207618048\n", "/sys/fs/cgroup/system.slice/memory.max": "max\n" }))).toBe(207618048);
    expect(cgroupLimitBytes(v2, files({}))).toBeUndefined();
    expect(cgroupLimitBytes("4:memory:/\n", files({ "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712" }))).toBeUndefined();
    // Hybrid: a v1 memory line and a v2 line; memory is v1's.
    expect(cgroupLimitBytes("4:memory:/job_9\n0::/job_9\n", files({ "/sys/fs/cgroup/memory/job_9/memory.limit_in_bytes": "104857600", "/sys/fs/cgroup/job_9/memory.max": "1" }))).toBe(104857600);
  });

  test("the OOM kills of the element's own cgroups, up to the one that limits it, not those of other jobs above", () => {
    const files = (entries: Record<string, string>) => (path: string) => entries[path];
    const v2 = "0::/system.slice/slurmstepd.scope/job_7/step_batch\n";
    const tree = {
      "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/memory.max": "207618048\n",
      "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/step_batch/memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
      "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_7/memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
      // Every job's kills, which must not count.
      "/sys/fs/cgroup/system.slice/slurmstepd.scope/memory.events": "oom_kill 40\n",
    };
    expect(cgroupOomKills(v2, files(tree))).toBe(2);
    const v1 = "4:memory:/slurm/uid_0/job_5/step_batch\n";
    expect(
      cgroupOomKills(
        v1,
        files({
          "/sys/fs/cgroup/memory/slurm/uid_0/job_5/memory.limit_in_bytes": "104857600",
          "/sys/fs/cgroup/memory/slurm/uid_0/job_5/step_batch/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        }),
      ),
    ).toBe(2);
    // Not in a limited cgroup: none of its own.
    expect(cgroupOomKills("4:memory:/\n", files({}))).toBeUndefined();
  });

  test("a live sample counts a child's memory in its parent's tree", async () => {
    // A child that holds 64 MiB of its own.
    const child = spawn(process.execPath, ["-e", "globalThis.b = Buffer.alloc(64 * 1024 * 1024, 1); setTimeout(() => {}, 20000)"], { stdio: "ignore" });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const tree = sampleTrees([process.pid], "resident").get(process.pid)!;
      expect(tree.pids).toContain(child.pid);
      const alone = sampleTrees([child.pid!], "charged").get(child.pid!)!;
      expect(alone.pids).toEqual([child.pid]);
      expect(alone.kb).toBeGreaterThan(64 * 1024);
      expect(tree.kb).toBeGreaterThan(alone.kb + process.memoryUsage().rss / 1024 / 2);
      // Outside a limited cgroup, the machine's count.
      expect(oomKillCounter("resident")()).toBeTypeOf("number");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
