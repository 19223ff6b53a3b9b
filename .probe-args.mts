import { LocalExecutor, defineTask } from "./src/index.ts";
const t = defineTask(import.meta.url, "t", (x: unknown) => x);
const ex = new LocalExecutor({ folder: "/tmp/probe-args", bundle: false });
class P { x = 1 }
const cyc: any = { a: [1] }; cyc.a.push(cyc);
for (const arg of [{ f: () => 42 }, Symbol("s"), cyc, new P(), [1, , 3], { m: new Map([["k", { g: Symbol.iterator }]]) }, new Number(2), { "a b": [{ p: Promise.resolve(1) }] }]) {
  try { await ex.mapArray([t.with(1), t.with(arg as never)]); console.log("no error"); } catch (e) { console.log((e as Error).name, (e as Error).message); }
}
const back = await (await ex.submit(t.with({ m: new Map<unknown, unknown>([[1, new Set([2n ** 70n])]]), d: new Date(0) }))).result();
console.log(back);
