import { fileURLToPath } from "node:url";
import { inject, type TestContext } from "vitest";

/** What the global setup found out about the OpenPBS test server. */
export interface PbsInfo {
  available: boolean;
  reason: string;
  /** The folder of the shims (qsub, qstat, ...) that reach the server. */
  bin: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    pbs: PbsInfo;
  }
}

export const pbsScript = fileURLToPath(new URL("../pbs/pbs.sh", import.meta.url));

/** The PBS server, with its commands first on PATH, or a skip (a failure with CI=true) that says why there is none. */
export function needPbs(ctx: TestContext): PbsInfo {
  const info = inject("pbs");
  if (!info.available) {
    if (process.env.CI === "true") throw new Error(`OpenPBS test server unavailable: ${info.reason}`);
    ctx.skip(`no OpenPBS test server: ${info.reason}`);
  }
  const path = process.env.PATH ?? "";
  if (!path.split(":").includes(info.bin)) process.env.PATH = `${info.bin}:${path}`;
  return info;
}
