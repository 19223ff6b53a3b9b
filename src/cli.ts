#!/usr/bin/env node
import { main } from "./cli/main.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Once stdout is flushed, nothing left (a timer following a local task that still runs, say) keeps a finished command alive.
process.stdout.write("", () => process.exit(code));
