import type { NodeSide } from "../src/core/node-side.js";
import { recordJobId } from "../src/core/node-side.js";
import { expandRuntime, isRuntimeValue, type LateString } from "../src/protocol/runtime-value.js";

// The scheduler's node side this runner was started with (by its entry,
// src/<scheduler>/runner.ts), and what the runner reads from it.
let side: NodeSide | undefined;

/** This node's name, as the scheduler calls it (set by useNodeSide). */
export let HOST = "";

/** Sets the node side for the rest of this process; the runner's entry calls it first thing. */
export function useNodeSide(node: NodeSide): void {
  side = node;
  HOST = node.environment(process.env).hostname;
}

/** The node side of the scheduler that started this runner. */
export function nodeSide(): NodeSide {
  if (!side) throw new Error("slurmkit runner: no scheduler's node side was set; start the runner through src/<scheduler>/runner.ts");
  return side;
}

/** A string, or a runtime value expanded with this node's environment. */
export function bind(value: LateString): string {
  return isRuntimeValue(value) ? expandRuntime(value, process.env, HOST) : value;
}

/** The task index: this element's index in its array (as the scheduler says), plus `offset`. */
export function taskIndex(env: NodeJS.ProcessEnv, offset = 0): number {
  const { text, from } = nodeSide().elementIndex(env);
  const index = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(index)) throw new Error(`Bad task index '${text}' (from ${from})`);
  return index + offset;
}

/** The job id for results: `A_i` for array elements. */
export function jobIdOf(env: NodeJS.ProcessEnv): string {
  return recordJobId(nodeSide().environment(env));
}
