#!/usr/bin/env node
import { main } from "./cli/main.js";

// A reader that stops early (`slurmkit results ... | head -1`) closes the pipe: that ends the command quietly.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Once stdout is flushed, nothing left (a timer following a local task that still runs, say) keeps a finished command alive.
process.stdout.write("", () => process.exit(code));
