import { ParameterError } from "../base/errors.js";
import { OpenSshTransport, type OpenSshOptions } from "./openssh.js";
import { SshTransport } from "./ssh.js";
import type { SshOptions } from "./ssh-options.js";
import type { Transport } from "./transport.js";

/** The system's ssh to a destination, with options: `{ destination: "cedar", configFile: "./ssh_config" }`. */
export interface OpenSshTarget extends OpenSshOptions {
  /** A Host alias from the ssh configuration, or `user@host[:port]`. */
  readonly destination: string;
}

/**
 * How an executor reaches a login node: a destination string for the system's
 * ssh and the user's own ~/.ssh/config (`"cedar"`, `"ada@cedar.example.org"`),
 * the same with options, or keys in code for the built-in client (`{ host, username, privateKey }`).
 */
export type SshTarget = string | OpenSshTarget | SshOptions;

/** The transport for an `ssh` option; a value of no known form is a ParameterError that names the forms. */
export function sshTransport(ssh: SshTarget): Transport {
  if (typeof ssh === "string") return new OpenSshTransport(ssh);
  if (typeof ssh === "object" && ssh !== null) {
    if ("destination" in ssh) {
      const { destination, ...options } = ssh;
      return new OpenSshTransport(destination, options);
    }
    if ("host" in ssh) return new SshTransport(ssh);
  }
  throw new ParameterError("ssh", [
    `Expected a destination for the system's ssh ("cedar" or "ada@cedar.example.org:22"), { destination, configFile? }, or { host, username, privateKey | agent } for the built-in client, got \`${JSON.stringify(ssh)}\``,
  ]);
}
