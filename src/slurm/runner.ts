// The runner's entry on a Slurm node: the sbatch script starts it (or its
// bundle), and it runs the runner with Slurm's node side.
import { runRunner } from "../../runner/main.js";
import { slurmNode } from "./node.js";

runRunner(slurmNode);
