// The runner's entry on a PBS node: the qsub script starts it (or its
// bundle), and it runs the runner with PBS's node side.
import { runRunner } from "../../runner/main.js";
import { pbsNode } from "./node.js";

runRunner(pbsNode);
