import { execa } from "execa";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Test fixtures for setup steps: an Lmod module, a wheelhouse with one tiny wheel, a zipped dataset. */
export interface SetupFixtures {
  readonly root: string;
  /** A folder for `module use`, holding testpython/1.0. */
  readonly modules: string;
  /** A folder with tinypkg-0.1.0-py3-none-any.whl. */
  readonly wheelhouse: string;
  /** dataset.zip, holding data/hello.txt ("dataset v1"). */
  readonly dataset: string;
}

/** Builds a wheel by hand (a zip with dist-info), as pip expects; no build tools needed. */
async function buildWheel(dir: string, wheelhouse: string): Promise<void> {
  const files: Record<string, string> = {
    "tinypkg/__init__.py": 'VERSION = "0.1.0"\nWHERE = __file__\n',
    "tinypkg-0.1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1.0\n",
    "tinypkg-0.1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: slurmkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
  };
  const record = Object.entries(files).map(([path, text]) => {
    const digest = createHash("sha256").update(text).digest("base64url");
    return `${path},sha256=${digest},${Buffer.byteLength(text)}`;
  });
  files["tinypkg-0.1.0.dist-info/RECORD"] = `${record.join("\n")}\ntinypkg-0.1.0.dist-info/RECORD,,\n`;
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await execa("zip", ["-q", "-r", join(wheelhouse, "tinypkg-0.1.0-py3-none-any.whl"), "tinypkg", "tinypkg-0.1.0.dist-info"], { cwd: dir });
}

/** Makes all fixtures in a fresh folder. */
export async function makeSetupFixtures(): Promise<SetupFixtures> {
  const root = await mkdtemp(join(tmpdir(), "slurmkit-setup-"));
  const modules = join(root, "modules");
  const bin = join(root, "testpython-bin");
  await mkdir(join(modules, "testpython"), { recursive: true });
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, "python3"), '#!/bin/sh\nexec /usr/bin/python3 "$@"\n');
  await chmod(join(bin, "python3"), 0o755);
  await writeFile(join(modules, "testpython", "1.0.lua"), `setenv("TESTPYTHON_LOADED", "1")\nprepend_path("PATH", "${bin}")\n`);

  const wheelhouse = join(root, "wheelhouse");
  await mkdir(wheelhouse, { recursive: true });
  await buildWheel(join(root, "wheel-src"), wheelhouse);

  const data = join(root, "dataset-src", "data");
  await mkdir(data, { recursive: true });
  await writeFile(join(data, "hello.txt"), "dataset v1\n");
  const dataset = join(root, "dataset.zip");
  await execa("zip", ["-q", "-r", dataset, "data"], { cwd: join(root, "dataset-src") });
  return { root, modules, wheelhouse, dataset };
}

/** A Python program that reports what a task sees, as one JSON line, and writes an output file. */
export const REPORT_PY = `
import json, os, sys
import tinypkg
tmp = os.environ["SLURM_TMPDIR"]
rank = os.environ.get("SLURM_PROCID", "0")
out = os.path.join(tmp, "out")
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "rank%s.txt" % rank), "w") as f:
    f.write("output of rank %s on %s\\n" % (rank, os.environ.get("SLURMD_NODENAME")))
# One write per report, so that ranks' lines cannot interleave in the shared log.
sys.stdout.write(json.dumps({
    "node": os.environ.get("SLURMD_NODENAME"),
    "rank": int(rank),
    "tmpdir": tmp,
    "module": os.environ.get("TESTPYTHON_LOADED"),
    "tinypkg": tinypkg.WHERE,
    "python": sys.prefix,
    "data": open(os.path.join(tmp, "data", "data", "hello.txt")).read().strip(),
}) + "\\n")
sys.stdout.flush()
`;

/** Reads a file, or undefined. */
export function readText(path: string): Promise<string | undefined> {
  return readFile(path, "utf8").catch(() => undefined);
}
