import { UsageError } from "../base/errors.js";
import { formatReport } from "../slurm/doctor.js";
import { SlurmExecutor } from "../slurm/executor.js";
import { sshTransport } from "../transport/ssh-target.js";
import { parse, sshFromFlags } from "./options.js";

/**
 * `slurmkit doctor [--ssh DEST] [--folder DIR] [--partition P] [--node-binary PATH] [--setup LINE]... [--no-job]`:
 * a checklist to run before the first sweep. Exit 0 when nothing failed, 1 when a check failed.
 */
export async function doctor(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("doctor", args, {
    folder: { type: "string" },
    partition: { type: "string" },
    "node-binary": { type: "string" },
    setup: { type: "string", multiple: true },
    "no-job": { type: "boolean" },
  });
  if (positionals.length) throw new UsageError(`slurmkit doctor takes no positional arguments, got '${positionals.join(" ")}'`);
  const ssh = sshFromFlags(values);
  const transport = ssh !== undefined ? sshTransport(ssh) : undefined;
  let folder = values.folder as string | undefined;
  if (folder === undefined) {
    // The probe's report comes back through a folder the nodes share: the home folder's is the usual one.
    const home = transport ? (await transport.run("printenv", ["HOME"])).stdout.trim() : process.cwd();
    folder = `${home}/slurmkit-runs`;
  } else if (transport && !folder.startsWith("/")) {
    throw new UsageError(`With --ssh the folder is a path on the cluster and must be absolute, got '${folder}'`);
  }
  const setup = (values.setup as unknown as string[] | undefined) ?? [];
  const executor = new SlurmExecutor({
    folder,
    ...(transport ? { transport } : {}),
    ...(values["node-binary"] !== undefined ? { nodeBinary: values["node-binary"] as string } : {}),
    ...(setup.length ? { setup } : {}),
    ...(values.partition !== undefined ? { partition: values.partition as string } : {}),
  });
  try {
    const report = await executor.check({ job: values["no-job"] !== true, log: (l) => process.stderr.write(`slurmkit: ${l}\n`) });
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  } finally {
    executor.close();
  }
}
