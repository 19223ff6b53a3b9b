import { LocalExecutor, modules, command, SlurmExecutor } from "/work/main/dist/src/index.js";
for (const f of [() => new LocalExecutor({ folder: "/tmp/x", maxParalel: 2 } as any), () => new LocalExecutor({ folder: "/tmp/x" }).mapArray([command("true")], { worker: 1 } as any), () => modules(["a"], { use: "/path" } as any), () => new SlurmExecutor({ folder: "/tmp/x", nodeBinry: "x" } as any)]) {
  try { await f(); console.log("no error"); } catch (e) { console.log((e as Error).name, (e as Error).message.split("\n")[0]); }
}
