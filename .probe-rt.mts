import { packr } from "./src/protocol/codec.ts";
import { isDeepStrictEqual, inspect } from "node:util";
class P { x = 1 }
const cases: [string, unknown][] = [["Map", new Map([["a", 1], [2, "b"]])], ["Set", new Set([1, "a"])], ["Date", new Date(5)], ["RegExp", /a+/gi], ["Error", new Error("e")], ["Uint8Array", new Uint8Array([1,2])], ["Buffer", Buffer.from("ab")], ["Float64Array", new Float64Array([1.5])], ["Int32Array", new Int32Array([3])], ["bigint", 5n], ["bigbig", 2n**70n], ["NaN", NaN], ["Inf", -Infinity], ["-0", -0], ["undef", undefined], ["arr-undef", [1, undefined]], ["sparse", [1,,3]], ["obj-undef", {a: undefined}], ["class", new P()], ["nullproto", Object.assign(Object.create(null), {a:1})], ["boxed", new Number(3)], ["numkey", {1: "a"}], ["ArrayBuffer", new ArrayBuffer(2)], ["DataView", new DataView(new ArrayBuffer(2))], ["nested map", {m: new Map([["k", new Set([1])]])}], ["symbol-key", {[Symbol("s")]: 1}], ["getter", Object.defineProperty({}, "g", {get(){return 1}, enumerable: true})]];
for (const [name, v] of cases) {
  try { const back = packr.unpack(packr.pack(v)); console.log(name.padEnd(12), isDeepStrictEqual(back, v) ? "EQUAL" : "DIFF ", inspect(back, {depth: 3}).slice(0, 60)); }
  catch (e) { console.log(name.padEnd(12), "THROW", (e as Error).message); }
}
for (const [name, v] of [["fn", () => 1], ["sym", Symbol("s")], ["cycle", (() => { const a: any = {}; a.a = a; return a; })()]] as [string, unknown][]) {
  try { const back = packr.unpack(packr.pack(v)); console.log(name.padEnd(12), inspect(back).slice(0, 60)); } catch (e) { console.log(name.padEnd(12), "THROW", (e as Error).message); }
}
