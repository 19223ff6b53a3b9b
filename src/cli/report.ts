import { plural } from "../base/words.js";
import { basename } from "node:path";
import { UsageError } from "../base/errors.js";
import { reportData } from "../report/report-data.js";
import { writeReport } from "../report/write-report.js";
import { openFolder } from "./folder.js";
import { parse } from "./options.js";

/** `slurmkit report <folder> [-o report.html]`: one self-contained HTML file of what ran, and what it used. */
export async function reportCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("report", args, { output: { type: "string", short: "o" }, title: { type: "string" } });
  if (positionals.length > 1) throw new UsageError(`slurmkit report takes one folder, got ${plural(positionals.length, "argument")}`);
  const output = (values.output as string | undefined) ?? "report.html";
  if (!output.endsWith(".html") && !output.endsWith(".htm")) throw new UsageError(`Expected -o to be an .html file, got '${output}'`);
  // Packed tasks completed in their streams are read there: 100,000 tasks make no future each.
  const folder = await openFolder(positionals[0], values, "report", true);
  try {
    const title = (values.title as string | undefined) ?? basename(positionals[0]!.replace(/\/+$/, ""));
    const written = await writeReport(await reportData(folder.jobs, folder.parts, folder.transport, title), output);
    if (values.json) process.stdout.write(`${JSON.stringify(written)}\n`);
    else
      process.stdout.write(
        `Wrote ${written.path} (${(written.bytes / 2 ** 20).toFixed(1)} MiB): ${written.tasks} task${written.tasks === 1 ? "" : "s"}${written.attempts ? `, ${written.attempts} requeued attempts` : ""}, ${written.failures} failed\n`,
      );
    return 0;
  } finally {
    folder.close();
  }
}
