import { execa } from "execa";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { atRuntime, condaActivate, container, lines, modules, ParameterError, setupFile, stageIn, stageOut, venvPerNode } from "../../src/index.js";
import { renderScript } from "../../src/slurm/script.js";
import { quoteShell } from "../../src/base/shell.js";

const hasShellcheck = await execa("shellcheck", ["--version"]).then(
  () => true,
  () => false,
);
const NASTY = `it's "q" $HOME \`id\` $(touch /tmp/pwned) ; & *`;

async function lint(script: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-steps-"));
  const path = join(dir, "job.sbatch");
  await writeFile(path, script);
  await execa("bash", ["-n", path]);
  if (hasShellcheck) await execa("shellcheck", ["--shell=bash", path]);
  else if (process.env.CI === "true") throw new Error("shellcheck is missing with CI=true");
}

describe("setup steps", async () => {
  const dir = await mkdtemp(join(tmpdir(), "slurmkit-setupfile-"));
  const file = join(dir, "setup.txt");
  await writeFile(file, "module load gcc\nexport FOO=1\n");
  const all = [
    modules(["testpython/1.0", "gcc"], { purge: true, use: [atRuntime("$HOME/modules"), `/opt/${NASTY}`] }),
    venvPerNode({ path: atRuntime("$SLURM_TMPDIR/venv"), wheelhouse: `/w/${NASTY}`, packages: ["tinypkg==0.1.0"], systemSitePackages: true }),
    venvPerNode({ path: atRuntime("/tmp/$USER/venvs"), wheelhouse: "/w", requirements: atRuntime("$HOME/req.txt"), reuse: true, python: "/usr/bin/python3" }),
    stageIn({ from: `/data/${NASTY}.zip`, to: atRuntime("$SLURM_TMPDIR/data"), unzip: true }),
    stageIn({ from: "/data/dir", to: atRuntime("$SLURM_TMPDIR/${NAME}") }),
    stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: `/results/${NASTY}` }),
    condaActivate(NASTY),
    setupFile(file),
    lines("echo raw line"),
  ];

  test("every step renders, single-node and multi-rank, and passes shellcheck and bash -n", async () => {
    for (const ranks of [1, 3]) {
      const script = renderScript({ options: [["job-name", NASTY]], setup: all, runner: ["/usr/bin/node", "/r.js", "/runs/x"], ranks, exitMarkerDir: `/runs/${NASTY}/results` });
      await lint(script);
      // Written last in the exit trap, after stage-out.
      expect(script).toContain(`  : > ${quoteShell(`/runs/${NASTY}/results/`)}"\${SLURM_ARRAY_TASK_ID:-0}.exited"\n}\n`);
      expect(script).toContain("module load testpython/1.0 gcc ||");
      expect(script).toContain("trap slurmkit_on_exit EXIT");
      expect(script).toContain("export FOO=1");
      expect(script).not.toContain("exec /usr/bin/node");
    }
    const wrapped = renderScript({
      options: [],
      setup: [container({ runtime: "apptainer", image: atRuntime("$HOME/env.sif"), binds: ["/project", `/x/${NASTY}`], gpus: true, runnerInside: true })],
      runner: ["node", "/r.js", "/d"],
      ranks: 1,
    });
    await lint(wrapped);
    expect(wrapped).toContain(
      `exec apptainer exec --nv --bind /project --bind '/x/it'\\''s "q" $HOME \`id\` $(touch /tmp/pwned) ; & *' "\${HOME?is not set (needed by a slurmkit runtime value)}"/env.sif node /r.js /d\n`,
    );
  });

  test("where no `module` command exists, the script says so in its log and fails", async (ctx) => {
    // A real bash in a mount namespace where Lmod's files are hidden, as on a node without modules.
    if (process.getuid?.() !== 0 && process.env.CI !== "true") ctx.skip("hiding Lmod needs root (unshare -m)");
    const script = renderScript({ options: [], setup: [modules(["testpython/1.0"])], runner: ["echo", "runner started"], ranks: 1 });
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-nomodule-"));
    const path = join(dir, "job.sbatch");
    await writeFile(path, script);
    const hide = 'for d in /usr/share/lmod /etc/profile.d /usr/share/modules; do [ -d $d ] && mount -t tmpfs none $d; done; exec env -i PATH=/usr/bin:/bin bash "$0"';
    const run = await execa("unshare", ["-m", "sh", "-c", hide, path], { reject: false });
    expect(run.exitCode).toBe(1);
    expect(run.stdout).not.toContain("runner started");
    expect(run.stderr).toMatch(/^slurmkit: the module command is not available \(looked for Lmod and Environment Modules init files\); cannot load testpython\/1\.0 on \S+$/m);
    // The same script where Lmod exists finds `module` through its init file, without a login shell.
    const found = await execa("env", ["-i", "PATH=/usr/bin:/bin", "bash", path], { reject: false });
    expect(found.stderr).toContain("module load testpython/1.0 failed");
    expect(found.stderr).not.toContain("module command is not available");
  });

  test("bad step input is refused with what was wrong", () => {
    expect(() => modules([])).toThrow(new ParameterError("modules step", ["Expected `names` to be a non-empty array of module names, got ``"]));
    expect(() => modules(["ok", "bad name; rm"])).toThrow("Expected `names[1]` to be a module name such as `python/3.11`, got `bad name; rm`");
    expect(() => venvPerNode({ path: "/v", wheelhouse: "/w" })).toThrow("Expected exactly one of `requirements` (a file) and `packages` (an array of specifiers)");
    expect(() => stageIn({ from: "", to: "/x" })).toThrow("Invalid stageIn step: Expected `from` to be a non-empty path or runtime value, not starting with -, got ``");
    expect(() => stageIn({ from: "-rf", to: "/x" })).toThrow("Expected `from` to be a non-empty path or runtime value, not starting with -, got `-rf`");
    expect(() => modules(["-x"])).toThrow("Expected `names[0]` to be a module name such as `python/3.11`, got `-x`");
    expect(() => container({ runtime: "docker" as never, image: "x" })).toThrow('Expected `runtime` to be one of "apptainer", "singularity", "podman", "podman-hpc", "enroot", "pyxis", got `docker`');
    expect(() => setupFile("/nonexistent/setup.txt")).toThrow("Invalid setupFile step: Cannot read setup file `/nonexistent/setup.txt`: no such file");
    expect(() => renderScript({ options: [], setup: [container({ runtime: "apptainer", image: "a" }), container({ runtime: "singularity", image: "b" })], runner: ["n"], ranks: 1 })).toThrow(
      "Expected at most one container step, got 2",
    );
  });
});
