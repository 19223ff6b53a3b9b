import { appendFile, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { frameRecord, StreamWriter } from "../../src/protocol/record-stream.js";
import { StreamFollower } from "../../src/engine/stream-follower.js";
import { LocalTransport, type Transport } from "../../src/index.js";

/** A LocalTransport that counts its calls. */
function counted(): { transport: Transport; calls: () => number } {
  const inner = new LocalTransport();
  let calls = 0;
  const count = <T>(call: () => T): T => {
    calls++;
    return call();
  };
  const transport: Transport = {
    key: "counted",
    run: (...a) => inner.run(...a),
    readFile: (p) => count(() => inner.readFile(p)),
    readFrom: (p, o) => count(() => inner.readFrom!(p, o)),
    writeFile: (p, d) => inner.writeFile(p, d),
    createExclusive: (p, d) => inner.createExclusive(p, d),
    list: (p) => count(() => inner.list(p)),
    mkdir: (p) => inner.mkdir(p),
  };
  return { transport, calls: () => calls };
}

const text = (records: ReadonlyMap<string, Buffer[]>) => Object.fromEntries([...records].map(([k, v]) => [k, v.map(String)]));

describe("following record streams", () => {
  test("each poll reads only what was added: one listing plus one read per stream, however many records", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    const w0 = await StreamWriter.create(join(dir, "0_0.stream"));
    const w1 = await StreamWriter.create(join(dir, "0_1.stream"));
    await writeFile(join(dir, "not-a-stream.txt"), "ignored");
    const { transport, calls } = counted();
    const follower = new StreamFollower(transport, dir);
    for (let i = 0; i < 500; i++) w0.append(Buffer.from(`a${i}`));
    w1.append(Buffer.from("b0"));
    await Promise.all([w0.flush(), w1.flush()]);
    const first = await follower.poll();
    expect(first.records.get("0_0.stream")).toHaveLength(500);
    expect(text(first.records)["0_1.stream"]).toEqual(["b0"]);
    expect(calls()).toBe(3);
    w1.append(Buffer.from("b1"));
    await w1.flush();
    expect(text((await follower.poll()).records)).toEqual({ "0_1.stream": ["b1"] });
    expect(calls()).toBe(6);
    expect((await follower.poll()).records.size).toBe(0);
    await Promise.all([w0.close(), w1.close()]);
  });

  test("a record still being written is read once it is whole; a corrupt tail is reported and never read past", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    const path = join(dir, "1_0.stream");
    const w = await StreamWriter.create(path);
    w.append(Buffer.from("whole"));
    await w.close();
    const follower = new StreamFollower(new LocalTransport(), dir);
    expect(text((await follower.poll()).records)).toEqual({ "1_0.stream": ["whole"] });
    // Half a record: nothing yet, and the offset stays before it.
    const next = frameRecord(Buffer.from("second"));
    await appendFile(path, next.subarray(0, 5));
    const before = follower.offset("1_0.stream");
    expect((await follower.poll()).records.size).toBe(0);
    expect(follower.offset("1_0.stream")).toBe(before);
    await appendFile(path, next.subarray(5));
    expect(text((await follower.poll()).records)).toEqual({ "1_0.stream": ["second"] });
    // A record whose checksum is wrong: reported, and the good one after it is not read as if it followed.
    const bad = frameRecord(Buffer.from("third"));
    bad[bad.length - 1]! ^= 0x20;
    await appendFile(path, Buffer.concat([bad, frameRecord(Buffer.from("fourth"))]));
    const polled = await follower.poll();
    expect(polled.records.size).toBe(0);
    expect(polled.corrupt).toEqual(["1_0.stream"]);
    expect((await readFile(path)).length).toBeGreaterThan(follower.offset("1_0.stream"));
  });

  test("a poll that fails half-way moves no offset: the next poll reads every record the failed one had read", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    const w0 = await StreamWriter.create(join(dir, "2_0.stream"));
    const w1 = await StreamWriter.create(join(dir, "2_1.stream"));
    w0.append(Buffer.from("a"));
    w1.append(Buffer.from("b"));
    await Promise.all([w0.close(), w1.close()]);
    const inner = new LocalTransport();
    let fail = true;
    const flaky: Transport = {
      ...Object.fromEntries(
        (["key", "run", "readFile", "writeFile", "createExclusive", "list", "mkdir"] as const).map((k) => [
          k,
          typeof inner[k] === "function" ? (inner[k] as (...a: unknown[]) => unknown).bind(inner) : inner[k],
        ]),
      ),
      readFrom: async (p: string, o: number) => {
        // The second stream's read fails once, after the first stream's worked.
        if (p.endsWith("2_1.stream") && fail) {
          fail = false;
          throw Object.assign(new Error("connection lost"), { code: "ECONNRESET" });
        }
        return inner.readFrom(p, o);
      },
    } as Transport;
    const follower = new StreamFollower(flaky, dir);
    await expect(follower.poll()).rejects.toThrow("connection lost");
    expect(follower.offset("2_0.stream")).toBe(0);
    expect(text((await follower.poll()).records)).toEqual({ "2_0.stream": ["a"], "2_1.stream": ["b"] });
  });

  test("scan reads a large stream in windows: records across a window's edge, one larger than a window, and a torn tail, each visited once and in order", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    const path = join(dir, "4_0.stream");
    const w = await StreamWriter.create(path);
    // About 3 MiB of records of odd sizes (so that edges fall inside them), then one of 2.5 MiB: larger than a window.
    const payloads: Buffer[] = [];
    for (let i = 0; payloads.reduce((n, p) => n + p.length, 0) < 3 * 2 ** 20; i++) payloads.push(Buffer.alloc(1 + ((i * 7919) % 4093), i % 251));
    payloads.push(Buffer.alloc(2.5 * 2 ** 20, 7));
    for (const p of payloads) w.append(p);
    await w.close();
    const next = frameRecord(Buffer.from("after the large one"));
    await appendFile(path, next.subarray(0, 6));
    const reads: number[] = [];
    const inner = new LocalTransport();
    const transport = {
      ...counted().transport,
      readInto: (p: string, o: number, into: Buffer) => {
        reads.push(o);
        return inner.readInto(p, o, into);
      },
    } as Transport;
    const follower = new StreamFollower(transport, dir);
    const seen: Buffer[] = [];
    const visit = (b: Buffer, start: number, end: number) => seen.push(Buffer.from(b.subarray(start, end)));
    expect((await follower.scan(visit)).corrupt).toEqual([]);
    expect(seen.length).toBe(payloads.length);
    expect(seen.every((b, i) => b.equals(payloads[i]!))).toBe(true);
    // Several windows, not one read of the whole file.
    expect(reads.length).toBeGreaterThan(3);
    // The torn tail is not visited; once whole, it is, and nothing before it again.
    expect(follower.offset("4_0.stream")).toBe((await readFile(path)).length - 6);
    await appendFile(path, next.subarray(6));
    seen.length = 0;
    await follower.scan(visit);
    expect(seen.map(String)).toEqual(["after the large one"]);
  });

  test("a scan whose read fails keeps what it visited: the next scan visits no record twice", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    for (const name of ["5_0.stream", "5_1.stream"]) {
      const w = await StreamWriter.create(join(dir, name));
      w.append(Buffer.from(name));
      await w.close();
    }
    const inner = new LocalTransport();
    let fail = true;
    const transport = {
      ...counted().transport,
      readInto: async (p: string, o: number, into: Buffer) => {
        if (p.endsWith("5_1.stream") && fail) {
          fail = false;
          throw Object.assign(new Error("connection lost"), { code: "ECONNRESET" });
        }
        return inner.readInto(p, o, into);
      },
    } as Transport;
    const follower = new StreamFollower(transport, dir);
    const seen: string[] = [];
    let name = "";
    const enter = (entered: string) => {
      name = entered;
    };
    const visit = (b: Buffer, start: number, end: number) => seen.push(`${name}:${b.subarray(start, end)}`);
    await expect(follower.scan(visit, enter)).rejects.toThrow("connection lost");
    expect(seen).toEqual(["5_0.stream:5_0.stream"]);
    await follower.scan(visit, enter);
    expect(seen).toEqual(["5_0.stream:5_0.stream", "5_1.stream:5_1.stream"]);
  });

  test("streams are read in natural order (attempt 10 after attempt 2), and a transport without readFrom reads whole files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-follow-"));
    for (const n of [10, 2, 1]) {
      const w = await StreamWriter.create(join(dir, `3_0.${n}.stream`));
      w.append(Buffer.from(`attempt ${n}`));
      await w.close();
    }
    const inner = new LocalTransport();
    const plain = {
      key: "plain",
      run: inner.run.bind(inner),
      readFile: inner.readFile.bind(inner),
      writeFile: inner.writeFile.bind(inner),
      createExclusive: inner.createExclusive.bind(inner),
      list: inner.list.bind(inner),
      mkdir: inner.mkdir.bind(inner),
    } as Transport;
    const follower = new StreamFollower(plain, dir);
    expect([...(await follower.poll()).records.keys()]).toEqual(["3_0.1.stream", "3_0.2.stream", "3_0.10.stream"]);
    const w = await StreamWriter.create(join(dir, "3_0.11.stream"));
    w.append(Buffer.from("later"));
    await w.close();
    expect(text((await follower.poll()).records)).toEqual({ "3_0.11.stream": ["later"] });
  });
});
