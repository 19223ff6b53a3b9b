import { execa } from "execa";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { VERSION } from "../../src/index.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

describe("the slurmkit bin", () => {
  test("VERSION matches package.json, and the bin in package.json is the built cli", async () => {
    const pkg = JSON.parse(await readFile(`${root}package.json`, "utf8")) as { version: string; bin: Record<string, string> };
    expect(VERSION).toBe(pkg.version);
    expect(pkg.bin.slurmkit).toBe("./dist/src/cli.js");
  });

  test("--version prints the version", async () => {
    const { stdout } = await execa("node", [bin, "--version"]);
    expect(stdout).toBe(VERSION);
  });

  test("no arguments prints usage to stderr and exits 2; --help prints it and exits 0; an unknown command exits 2 and says which", async () => {
    const none = await execa("node", [bin], { reject: false });
    expect(none.exitCode).toBe(2);
    expect(none.stdout).toBe("");
    expect(none.stderr).toContain(`slurmkit ${VERSION}: submit work to Slurm`);
    const help = await execa("node", [bin, "--help"]);
    expect(help.stdout).toContain(`slurmkit ${VERSION}: submit work to Slurm`);
    expect(help.stdout).toContain("slurmkit --version");
    const bad = await execa("node", [bin, "frobnicate"], { reject: false });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain("slurmkit: unknown command 'frobnicate'");
  });
});
