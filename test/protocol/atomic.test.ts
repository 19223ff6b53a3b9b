// Writing run-folder files whole: atomic replace, and exclusive placement.
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { writeFileAtomic, writeFileExclusive } from "../../src/protocol/atomic.js";

describe("whole files", () => {
  test("writeFileAtomic replaces a file and leaves no temporary file behind", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-atomic-"));
    const path = join(dir, "f");
    await writeFile(path, "old");
    await writeFileAtomic(path, "new");
    expect(await readFile(path, "utf8")).toBe("new");
    expect(await readdir(dir)).toEqual(["f"]);
  });

  test("writeFileExclusive places a file only where none is, whole, and of two at once exactly one wins", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-atomic-"));
    const path = join(dir, "b0.end");
    const won = await Promise.all(["first", "second", "third"].map((text) => writeFileExclusive(path, text)));
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(["first", "second", "third"][won.indexOf(true)]).toBe(await readFile(path, "utf8"));
    expect(await writeFileExclusive(path, "later")).toBe(false);
    expect(await readdir(dir)).toEqual(["b0.end"]);
  });
});
