import { LocalExecutor, command } from "./dist/src/index.js";
const ex = new LocalExecutor({ folder: "/tmp/probe-tail" });
const job = await ex.submit(command("sh", ["-c", "echo a >&2; echo b >&2; exit 4"]));
try { await job.result(); } catch (e) { console.log((e as any).remote.message); }
console.log(JSON.stringify(await job.stderr()));
