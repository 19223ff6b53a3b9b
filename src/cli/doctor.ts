import { UsageError } from "../base/errors.js";
import { formatReport, type CheckReport } from "../slurm/doctor.js";
import { SlurmExecutor } from "../slurm/executor.js";
import { PbsExecutor } from "../pbs/executor.js";
import { sshTransport } from "../transport/ssh-target.js";
import { parse, sshFromFlags } from "./options.js";

/**
 * `slurmkit doctor [--pbs] [--ssh DEST] [--folder DIR] [--partition P] [--node-binary PATH] [--setup LINE]... [--no-job]`:
 * a checklist to run before the first sweep (of a PBS server with `--pbs`). Exit 0 when nothing failed, 1 when a check failed.
 */
export async function doctor(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("doctor", args, {
    folder: { type: "string" },
    partition: { type: "string" },
    "node-binary": { type: "string" },
    setup: { type: "string", multiple: true },
    "no-job": { type: "boolean" },
    pbs: { type: "boolean" },
  });
  if (positionals.length) throw new UsageError(`slurmkit doctor takes no positional arguments, got '${positionals.join(" ")}'`);
  const ssh = sshFromFlags(values);
  const transport = ssh !== undefined ? sshTransport(ssh) : undefined;
  let folder = values.folder as string | undefined;
  if (folder === undefined) {
    // The probe's report comes back through a folder the nodes share: the home folder's is the usual one.
    let home = process.cwd();
    if (transport) {
      try {
        home = (await transport.run("printenv", ["HOME"])).stdout.trim();
      } catch (error) {
        transport.close?.();
        const report: CheckReport = {
          ok: false,
          lines: [{ name: "transport", status: "fail", detail: `${transport.key}: ${(error as Error).message}`, fix: "check that `ssh HOST true` works in a terminal" }],
        };
        process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReport(report));
        return 1;
      }
    }
    folder = `${home}/slurmkit-runs`;
  } else if (transport && !folder.startsWith("/")) {
    throw new UsageError(`With --ssh the folder is a path on the cluster and must be absolute, got '${folder}'`);
  }
  const setup = (values.setup as unknown as string[] | undefined) ?? [];
  const options = {
    folder,
    ...(transport ? { transport } : {}),
    ...(values["node-binary"] !== undefined ? { nodeBinary: values["node-binary"] as string } : {}),
    ...(setup.length ? { setup } : {}),
    ...(values.partition !== undefined ? { partition: values.partition as string } : {}),
  };
  const executor = values.pbs === true ? new PbsExecutor(options) : new SlurmExecutor(options);
  try {
    const report = await executor.check({ job: values["no-job"] !== true, log: (l) => process.stderr.write(`slurmkit: ${l}\n`) });
    process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  } finally {
    executor.close();
  }
}
