import { travelProblem } from "./src/protocol/travels.ts";
import { packr } from "./src/protocol/codec.ts";
const args = Array.from({ length: 1_000_000 }, (_, i) => ({ lr: 0.1, seed: i, name: `run-${i}` }));
const nums = Array.from({ length: 1_000_000 }, (_, i) => i);
for (const [label, xs] of [["objects", args], ["numbers", nums]] as const) {
  let t = performance.now();
  for (const a of xs) travelProblem(a);
  const check = performance.now() - t;
  t = performance.now();
  for (const a of xs) packr.pack(a);
  const pack = performance.now() - t;
  console.log(label, `check ${check.toFixed(0)} ms`, `pack ${pack.toFixed(0)} ms`, `ratio ${(check / pack).toFixed(2)}`);
}
