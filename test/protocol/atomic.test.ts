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

  test("writeFileAtomic from parts: each written at its offset before the next is made (one buffer, reused), and a part that fails leaves the old file and no temporary one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-atomic-"));
    const path = join(dir, "f");
    await writeFile(path, "old");
    const reused = Buffer.alloc(3);
    function* parts() {
      for (const [at, text] of [
        [4, "efg"],
        [7, "hij"],
        [0, "abc"],
      ] as const) {
        reused.write(text);
        yield { at, bytes: reused };
      }
      yield { at: 3, bytes: Buffer.from("d") };
    }
    await writeFileAtomic(path, parts());
    expect(await readFile(path, "utf8")).toBe("abcdefghij");
    function* failing() {
      yield { at: 0, bytes: Buffer.from("partial") };
      throw new Error("a record cannot be packed");
    }
    await expect(writeFileAtomic(path, failing())).rejects.toThrow("a record cannot be packed");
    expect(await readFile(path, "utf8")).toBe("abcdefghij");
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
