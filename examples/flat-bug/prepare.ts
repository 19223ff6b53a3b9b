// Generates what a cluster user downloads once on the login node: a wheelhouse
// (here one tiny pure-Python wheel, `fbmetrics`), a zipped dataset in the
// fb_yolo layout, and an Lmod module standing in for the cluster's python.
// Everything lands in ./work, next to this file.
// Run it on the login node (or your machine); compute nodes need no internet.
import { execa } from "execa";
import { createHash } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const work = join(here, "work");

/** Writes files under `root`, making folders as needed. */
async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

/** A wheel is a zip with a dist-info folder; pip installs it with no build tools and no network. */
async function buildWheel(): Promise<void> {
  const src = join(work, "build", "fbmetrics");
  const files: Record<string, string> = {
    "fbmetrics/__init__.py": [
      '"""Scores a model on a folder of images (a stand-in for flat-bug\'s detection metrics)."""',
      "import hashlib",
      "",
      "def score(model: str, image: bytes) -> float:",
      "    digest = hashlib.sha256(model.encode() + b'|' + image).digest()",
      "    return round(digest[0] / 255, 4)",
      "",
    ].join("\n"),
    "fbmetrics-1.0.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: fbmetrics\nVersion: 1.0.0\n",
    "fbmetrics-1.0.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: slurmkit-example\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
  };
  const record = Object.entries(files).map(([path, text]) => `${path},sha256=${createHash("sha256").update(text).digest("base64url")},${Buffer.byteLength(text)}`);
  files["fbmetrics-1.0.0.dist-info/RECORD"] = `${record.join("\n")}\nfbmetrics-1.0.0.dist-info/RECORD,,\n`;
  await writeTree(src, files);
  await mkdir(join(work, "wheelhouse"), { recursive: true });
  await execa("zip", ["-q", "-r", join(work, "wheelhouse", "fbmetrics-1.0.0-py3-none-any.whl"), "fbmetrics", "fbmetrics-1.0.0.dist-info"], { cwd: src });
}

/** fb_yolo/images/val/*.jpg (a few bytes each) and fb_yolo/labels/val/*.txt, zipped. */
async function buildDataset(): Promise<void> {
  const src = join(work, "build", "dataset");
  const files: Record<string, string | Buffer> = {};
  for (let i = 0; i < 12; i++) {
    const name = `insect_${String(i).padStart(3, "0")}`;
    files[`fb_yolo/images/val/${name}.jpg`] = createHash("sha256").update(name).digest();
    files[`fb_yolo/labels/val/${name}.txt`] = `0 0.5 0.5 0.${(i % 9) + 1} 0.2\n`;
  }
  await writeTree(src, files);
  await execa("zip", ["-q", "-r", join(work, "fb_yolo.zip"), "fb_yolo"], { cwd: src });
}

/** An Lmod module `python/3.11`: on a real cluster it exists already. */
async function buildModule(): Promise<void> {
  await writeTree(join(work, "modulefiles"), { "python/3.11.lua": 'setenv("FB_PYTHON_MODULE", "python/3.11")\n' });
}

await rm(work, { recursive: true, force: true });
await buildWheel();
await buildDataset();
await buildModule();
await rm(join(work, "build"), { recursive: true });
// For runs without --slurm: the same venv and dataset, here instead of on a node.
await execa("python3", ["-m", "venv", join(work, "env")]);
await execa(join(work, "env", "bin", "pip"), ["install", "--quiet", "--no-index", "--find-links", join(work, "wheelhouse"), "fbmetrics"]);
await execa("unzip", ["-q", join(work, "fb_yolo.zip"), "-d", work]);
console.log(`Prepared ${work}: wheelhouse/ (fbmetrics), fb_yolo.zip (12 images), modulefiles/python/3.11; for local runs env/ and fb_yolo/`);
