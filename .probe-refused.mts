import { SlurmExecutor, command } from "./dist/src/index.js";
const ex = new SlurmExecutor({ folder: "/tmp/probe-refused", time: 2, mem: "100M", partition: "no-such-partition" });
await ex.mapArray([command("true"), command("true")]).catch((e) => console.log(e.name));
