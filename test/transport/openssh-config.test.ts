import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ParameterError } from "../../src/index.js";
import { parseSshDestination, resolveSshConfig } from "../../src/transport/openssh-config.js";

describe("an OpenSSH destination", () => {
  test("an alias, user@host, and user@host:port", () => {
    expect(parseSshDestination("cedar")).toEqual({ destination: "cedar" });
    expect(parseSshDestination("ada@cedar.example.org")).toEqual({ destination: "ada@cedar.example.org" });
    expect(parseSshDestination("ada@cedar.example.org:2200")).toEqual({ destination: "ada@cedar.example.org", port: 2200 });
  });

  test("anything ssh could read as an option, or a shell split, is a ParameterError naming what is accepted", () => {
    for (const bad of ["", "-oProxyCommand=x", "ce dar", "cedar;id", "a@b@c", "cedar:0", "cedar:99999", "$(id)"]) {
      expect(() => parseSshDestination(bad)).toThrow(ParameterError);
    }
    expect(() => parseSshDestination("-oProxyCommand=x")).toThrow("a Host alias from ~/.ssh/config");
  });
});

describe("the user's own configuration, as the system's ssh reads it (ssh -G, no connection)", () => {
  test("an alias with HostName, User, Port, ControlMaster, ControlPersist and ProxyJump", async () => {
    const dir = await mkdtemp(join(tmpdir(), "slurmkit-sshcfg-"));
    const config = join(dir, "config");
    await writeFile(config, `Host cedar\n  HostName cedar.example.org\n  User ada\n  Port 2200\n  ControlMaster auto\n  ControlPath ${dir}/cm-%r@%h:%p\n  ControlPersist 10m\n  ProxyJump bastion\n`);
    expect(await resolveSshConfig(parseSshDestination("cedar"), { configFile: config })).toEqual({
      hostname: "cedar.example.org",
      user: "ada",
      port: 2200,
      controlMaster: "auto",
      controlPath: `${dir}/cm-ada@cedar.example.org:2200`,
      controlPersist: 600,
      proxyJump: "bastion",
      batchMode: false,
    });
    // A port on the command line wins over the configuration's; an unknown host is itself.
    expect(await resolveSshConfig(parseSshDestination("bob@other:2222"), { configFile: config })).toMatchObject({
      hostname: "other",
      user: "bob",
      port: 2222,
      controlPath: undefined,
      proxyJump: undefined,
    });
  });
});
