import { Writable } from "node:stream";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { toJson } from "../../src/report/json.js";
import { ascii, JsonLinesWriter } from "../../src/report/json-lines.js";

/** A stream that keeps every chunk it is given by reference and finishes each write later: a buffer reused too early would show. */
function slowSink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      setTimeout(done, 1);
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString("utf8") };
}

const row = fc.record({
  n: fc.oneof(fc.integer(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.double(), fc.constantFrom(0, -0, 1e8, 99_999_999, 100_000_000, 1_796_398_428_508, -(2 ** 53 - 1), 2 ** 53, 1e21)),
  s: fc.string({ unit: "binary", maxLength: 30 }),
  t: fc.jsonValue(),
});

describe("JSON Lines written as bytes", () => {
  test("any numbers, strings and JSON values come out as toJson and JSON.stringify write them, in order, through a slow stream", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(row, { maxLength: 400 }), async (rows) => {
        const { stream, text } = slowSink();
        const out = new JsonLinesWriter(stream);
        const open = ascii('{"n":');
        for (const r of rows) {
          out.bytes(open).number(r.n).bytes(ascii(',"s":')).string(r.s).bytes(ascii(',"t":')).text(toJson(r.t)).bytes(ascii("}"));
          if (out.end()) await out.flush();
        }
        await out.flush();
        await new Promise<void>((resolve) => stream.end(resolve));
        expect(text()).toBe(rows.map((r) => `{"n":${toJson(r.n)},"s":${JSON.stringify(r.s)},"t":${toJson(r.t)}}\n`).join(""));
      }),
      { numRuns: 60 },
    );
  });

  test("many chunks through a slow stream: every row once, in order, none written over", async () => {
    const { stream, text } = slowSink();
    const out = new JsonLinesWriter(stream);
    const rows = 50_000;
    for (let i = 0; i < rows; i++) {
      out.number(i).bytes(ascii(" ")).string(`row ${i} ✓`);
      if (out.end()) await out.flush();
    }
    await out.flush();
    await new Promise<void>((resolve) => stream.end(resolve));
    const lines = text().trimEnd().split("\n");
    expect(lines).toHaveLength(rows);
    expect(lines.every((line, i) => line === `${i} "row ${i} ✓"`)).toBe(true);
  });
});
