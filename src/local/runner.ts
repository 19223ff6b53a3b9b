// The runner's entry for local processes: LocalScheduler starts it, and it
// runs the runner with the local node side.
import { runRunner } from "../../runner/main.js";
import { localNode } from "./node.js";

runRunner(localNode);
