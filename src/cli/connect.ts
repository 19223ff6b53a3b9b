import { UsageError } from "../base/errors.js";
import { OpenSshTransport } from "../transport/openssh.js";
import { parse } from "./options.js";

/**
 * `slurmkit connect DEST [--ssh-config FILE] [--persist 12h] [--close]`:
 * logs in once on this terminal (MFA, a passphrase) and keeps the connection
 * up, so that later runs on this machine, with no terminal, use it.
 */
export async function connect(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("connect", args, { persist: { type: "string" }, close: { type: "boolean" } });
  const destination = positionals[0] ?? (values.ssh as string | undefined);
  if (destination === undefined || positionals.length > 1) throw new UsageError("slurmkit connect needs one destination: a Host alias from ~/.ssh/config or user@host[:port]");
  if (values.identity !== undefined || values["known-hosts"] !== undefined) throw new UsageError("slurmkit connect is for the system's ssh: --identity and --known-hosts do not apply");
  const persist = (values.persist as string | undefined) ?? "12h";
  if (!/^\d+[smhdw]?$/.test(persist)) throw new UsageError(`Expected --persist to be a time as ssh reads it (3600, 90m, 12h, 2d), got '${persist}'`);
  const config = values["ssh-config"] as string | undefined;
  const transport = new OpenSshTransport(destination, { ...(config !== undefined ? { configFile: config } : {}), interactive: true });
  const json = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  if (values.close) {
    const closed = await transport.disconnect();
    if (values.json) json({ destination, closed });
    else process.stdout.write(closed ? `Closed the connection to ${destination}.\n` : `No connection to ${destination} was open.\n`);
    return 0;
  }
  const already = await transport.connect(persist);
  if (values.json) json({ destination, already, persist, socket: transport.sharedSocket });
  else {
    process.stdout.write(
      `${already ? "Already connected" : "Connected"} to ${destination}. slurmkit on this machine uses this connection until it has been idle for ${persist}; no new login is asked. Close it with: slurmkit connect ${destination} --close\n`,
    );
  }
  return 0;
}
