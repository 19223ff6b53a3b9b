import { createHash } from "node:crypto";
import { isRuntimeValue, shellWord, type LateString } from "../protocol/runtime-value.js";
import { quoteShell } from "../base/shell.js";
import { accepts } from "../base/options.js";
import { type SetupStep, step, check, need, onEveryNode, optionProblems, CHECKED } from "./step.js";

/** Options of venvPerNode(). */
export interface VenvOptions {
  /** Where the venv lives on each node, usually node-local: `atRuntime("$SLURM_TMPDIR/venv")`. */
  readonly path: LateString;
  /** The Python that creates it. @default "python3" */
  readonly python?: LateString;
  /** A folder of wheels; pip installs from it only, never from the network. */
  readonly wheelhouse: LateString;
  /** A requirements file (give this or `packages`). */
  readonly requirements?: LateString;
  /** Package specifiers (give this or `requirements`). */
  readonly packages?: readonly string[];
  /** `--system-site-packages`. @default false */
  readonly systemSitePackages?: boolean;
  /**
   * Keep the venv in a node-local cache under `path`, keyed by a hash of these
   * options and guarded by a lock, so jobs (array elements) that land on the
   * same node build it once. Use a `path` outside the job's own scratch.
   * @default false
   */
  readonly reuse?: boolean;
}

/**
 * Builds a virtualenv on every node of the job, offline (`pip install
 * --no-index --find-links <wheelhouse>`), once per node per allocation, and
 * activates it for the tasks on each node.
 *
 * @example
 * venvPerNode({ path: atRuntime("$SLURM_TMPDIR/venv"), wheelhouse: "/project/wheels", requirements: "/project/requirements.txt" })
 */
export function venvPerNode(options: VenvOptions): SetupStep {
  const problems = optionProblems("venvPerNode", options, {
    path: CHECKED,
    python: CHECKED,
    wheelhouse: CHECKED,
    requirements: CHECKED,
    packages: CHECKED,
    systemSitePackages: accepts.boolean,
    reuse: accepts.boolean,
  });
  need(problems, "path", options.path);
  need(problems, "wheelhouse", options.wheelhouse);
  if (options.python !== undefined) need(problems, "python", options.python);
  if ((options.requirements === undefined) === (options.packages === undefined)) {
    problems.push("Expected exactly one of `requirements` (a file) and `packages` (an array of specifiers)");
  }
  if (options.requirements !== undefined) need(problems, "requirements", options.requirements);
  if (
    options.packages !== undefined &&
    (!Array.isArray(options.packages) || options.packages.length === 0 || !options.packages.every((p) => typeof p === "string" && /^[A-Za-z0-9_.[][A-Za-z0-9_.\-[\],<>=!~ ]*$/.test(p)))
  ) {
    problems.push(`Expected \`packages\` to be a non-empty array of specifiers such as \`numpy==1.26.4\`, got \`${JSON.stringify(options.packages)}\``);
  }
  check("venvPerNode", problems);
  const key = createHash("sha256")
    .update(JSON.stringify([options.python, options.wheelhouse, options.requirements, options.packages, options.systemSitePackages].map((v) => (isRuntimeValue(v) ? v.template : v))))
    .digest("hex")
    .slice(0, 12);
  const python = options.python === undefined ? "python3" : shellWord(options.python);
  const base = shellWord(options.path);
  // With reuse, the cache key also covers what only the node knows: the real
  // interpreter (after module loads) and the requirements file's content.
  const keyVar = `slurmkit_venv_key_${key}`;
  const venv = options.reuse ? `${base}/${key}-"$${keyVar}"` : base;
  const install = [
    `PIP_NO_INDEX=1 "$venv/bin/python" -m pip install --no-index --find-links ${shellWord(options.wheelhouse)} --disable-pip-version-check --quiet`,
    options.requirements !== undefined ? `-r ${shellWord(options.requirements)}` : options.packages!.map(quoteShell).join(" "),
  ].join(" ");
  const build = [
    'echo "slurmkit: building venv $venv on $slurmkit_node" >&2',
    // Never delete a folder that is not a venv: the path may be a mistake.
    'if [ -e "$venv" ] && [ ! -f "$venv/pyvenv.cfg" ] && [ -n "$(ls -A "$venv")" ]; then echo "slurmkit: $venv exists and is not a venv; not touching it" >&2; exit 1; fi',
    'rm -rf "$venv"',
    `${python} -m venv${options.systemSitePackages ? " --system-site-packages" : ""} "$venv"`,
    install,
    'touch "$venv/.slurmkit-ready"',
  ];
  const script = options.reuse
    ? [
        `venv=${venv}`,
        `mkdir -p -- ${base}`,
        'exec 9>"$venv.lock"',
        'flock -w 3600 9 || { echo "slurmkit: waited an hour for the lock on $venv" >&2; exit 1; }',
        'if [ -e "$venv/.slurmkit-ready" ]; then',
        '  echo "slurmkit: reusing venv $venv on $slurmkit_node" >&2',
        "else",
        ...build.map((l) => `  ${l}`),
        "fi",
      ]
    : [`venv=${venv}`, ...build];
  const keyLines = options.reuse
    ? [`${keyVar}=$({ command -v ${python}; ${python} -VV; ${options.requirements !== undefined ? `cat ${shellWord(options.requirements)};` : ""} } 2>&1 | sha256sum | cut -c1-12)`, `export ${keyVar}`]
    : [];
  return step("venvPerNode", {
    batch: [...keyLines, ...onEveryNode("venvPerNode", script)],
    rank: ["# shellcheck source=/dev/null", `. ${venv}/bin/activate || { echo "slurmkit: cannot activate the venv on $slurmkit_node" >&2; exit 1; }`],
  });
}
