import { travelProblem } from "./src/protocol/travels.ts";
class Point { x = 1 }
class MyError extends Error {}
const cycle: Record<string, unknown> = { list: [] }; (cycle.list as unknown[]).push(cycle);
const holey: number[] = []; holey[0] = 1; holey[2] = 3;
const cases: [unknown, string][] = [
  [{ f: () => 42 }, "`arg.f` is a function"], [Symbol("s"), "`arg` is a symbol"], [{ deep: [{ s: Symbol.iterator }] }, "`arg.deep[0].s` is a symbol"],
  [{ [Symbol("k")]: 1 }, "`arg` has a symbol key (Symbol(k))"], [cycle, "`arg.list[0]` refers back to an object that contains it (a cycle)"],
  [new Point(), "`arg` is an instance of Point, whose class would be lost"], [{ e: new MyError("m") }, "`arg.e` is an instance of MyError"],
  [Object.assign(new Error("m"), { code: 3 }), "`arg` is an Error with properties of its own"], [holey, "`arg` has a hole at index 1"],
  [new Map([["k", () => 1]]), '`arg.get("k")` is a function'], [new Map([[Symbol("key"), 1]]), "`arg key Symbol(key)` is a symbol"],
  [new Set([1, new Point()]), "`arg item 1` is an instance of Point"], [{ "a b": Promise.resolve(1) }, '`arg["a b"]` is a Promise: await it before submitting'],
  [new String("s"), "`arg` is a boxed String"], [new WeakMap(), "`arg` is an instance of WeakMap"], [{ x: { y: [0, { z: () => 1 }] } }, "`arg.x.y[1].z` is a function"],
  [new Error("a", { cause: { f: () => 1 } }), "`arg.cause.f` is a function"],
];
let bad = 0;
for (const [v, w] of cases) { const p = travelProblem(v); if (!p?.includes(w)) { bad++; console.log("MISMATCH", w, "=>", p); } }
console.log(travelProblem({ f: () => 1 }, "result"), bad ? "FAIL" : "all ok");
