import { travelProblem } from "./src/protocol/travels.ts";
console.log(travelProblem(JSON.parse('{"a":{"__proto__":{"x":1}}}')), travelProblem({ a: 1 }));
