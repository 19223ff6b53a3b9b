import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ParameterError } from "./errors.js";
import { isRuntimeValue, shellWord, showLate, type LateString } from "./runtime-value.js";
import { quoteShell } from "./shell.js";

const STEP = Symbol.for("slurmkit.setupStep");

/**
 * A typed piece of the job's preamble. Steps render into the sbatch script in
 * the order given; build them with modules(), venvPerNode(), stageIn(),
 * stageOut(), condaActivate(), container(), setupFile() and lines().
 */
export interface SetupStep {
  readonly [STEP]: true;
  /** What kind of step, for messages. */
  readonly kind: string;
  /** Lines run once in the batch shell (on the job's first node). */
  readonly batch: readonly string[];
  /** Lines run in each rank's shell just before the runner (e.g. activating a node-local venv). */
  readonly rank: readonly string[];
  /** Lines run when the job ends, also when it fails, is cancelled or times out. */
  readonly exit: readonly string[];
  /** Shell words put before the runner command (a container runtime). */
  readonly wrap: readonly string[];
}

/** Whether a value is a setup step. */
export function isSetupStep(value: unknown): value is SetupStep {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[STEP] === true;
}

function step(kind: string, parts: Partial<Pick<SetupStep, "batch" | "rank" | "exit" | "wrap">>): SetupStep {
  return { [STEP]: true, kind, batch: parts.batch ?? [], rank: parts.rank ?? [], exit: parts.exit ?? [], wrap: parts.wrap ?? [] };
}

function check(kind: string, problems: string[]): void {
  if (problems.length) throw new ParameterError(`${kind} step`, problems);
}

function lateOk(v: unknown): v is LateString {
  // A leading "-" would read as an option to cp, mkdir, unzip or apptainer.
  return isRuntimeValue(v) || (typeof v === "string" && v !== "" && !v.startsWith("-") && !v.includes("\0"));
}

function need(problems: string[], name: string, value: unknown, expected = "a non-empty path or runtime value, not starting with -"): void {
  if (!lateOk(value)) problems.push(`Expected \`${name}\` to be ${expected}, got \`${String(value)}\``);
}

/** Runs a script once on every node of the job: through srun on several nodes, directly on one. */
function onEveryNode(kind: string, script: readonly string[]): string[] {
  const body = ["set -euo pipefail", ...script].join("\n");
  return [`slurmkit_on_every_node ${quoteShell(body)} || slurmkit_fail ${quoteShell(`setup step ${kind} failed`)}`];
}

/** Helper functions the steps use; rendered once at the top of the setup section. */
export const STEP_HELPERS = [
  "slurmkit_node=${SLURMD_NODENAME:-$(hostname)}",
  "# shellcheck disable=SC2317 # used by some steps only",
  'slurmkit_fail() { echo "slurmkit: $1 on $slurmkit_node" >&2; exit 1; }',
  "# shellcheck disable=SC2317 # used by some steps only",
  "slurmkit_on_every_node() {",
  '  if [ "${SLURM_JOB_NUM_NODES:-1}" -gt 1 ]; then',
  '    srun --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c "$1"',
  "  else",
  '    bash -c "$1"',
  "  fi",
  "}",
];

/** Options of modules(). */
export interface ModulesOptions {
  /** Run `module purge` first. @default false */
  readonly purge?: boolean;
  /** Folders to add with `module use` before loading. */
  readonly use?: readonly LateString[];
}

const MODULE_INIT = ["/etc/profile.d/lmod.sh", '"${LMOD_PKG:-/usr/share/lmod/lmod}/init/bash"', "/usr/share/lmod/lmod/init/bash", "/etc/profile.d/modules.sh"];

/**
 * Loads environment modules (Lmod or Environment Modules). Finds `module`
 * itself where batch shells lack it; where there is none, the job fails with
 * a message in its log.
 *
 * @example
 * modules(["python/3.11", "cuda/12.2"], { purge: true })
 */
export function modules(names: readonly string[], options: ModulesOptions = {}): SetupStep {
  const problems: string[] = [];
  if (!Array.isArray(names) || names.length === 0) problems.push(`Expected \`names\` to be a non-empty array of module names, got \`${String(names)}\``);
  else names.forEach((n, i) => (typeof n !== "string" || !/^[A-Za-z0-9_.+][A-Za-z0-9_.+\/-]*$/.test(n)) && problems.push(`Expected \`names[${i}]\` to be a module name such as \`python/3.11\`, got \`${String(n)}\``));
  (options.use ?? []).forEach((u, i) => need(problems, `use[${i}]`, u));
  check("modules", problems);
  const has = "{ declare -F module >/dev/null || command -v module >/dev/null 2>&1; }";
  return step("modules", {
    batch: [
      `if ! ${has}; then`,
      `  for slurmkit_init in ${MODULE_INIT.join(" ")}; do`,
      '    if [ -r "$slurmkit_init" ]; then',
      "      # shellcheck source=/dev/null",
      '      . "$slurmkit_init"',
      "      break",
      "    fi",
      "  done",
      "fi",
      `${has} || slurmkit_fail ${quoteShell(`the module command is not available (looked for Lmod and Environment Modules init files); cannot load ${names.join(" ")}`)}`,
      ...(options.purge ? ["module purge"] : []),
      ...(options.use ?? []).map((u) => `module use ${shellWord(u)} || slurmkit_fail ${quoteShell(`module use ${showLate(u)} failed`)}`),
      `module load ${names.map(quoteShell).join(" ")} || slurmkit_fail ${quoteShell(`module load ${names.join(" ")} failed`)}`,
    ],
  });
}

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
  const problems: string[] = [];
  need(problems, "path", options.path);
  need(problems, "wheelhouse", options.wheelhouse);
  if (options.python !== undefined) need(problems, "python", options.python);
  if ((options.requirements === undefined) === (options.packages === undefined)) {
    problems.push("Expected exactly one of `requirements` (a file) and `packages` (an array of specifiers)");
  }
  if (options.requirements !== undefined) need(problems, "requirements", options.requirements);
  if (options.packages !== undefined && (!Array.isArray(options.packages) || options.packages.length === 0 || !options.packages.every((p) => typeof p === "string" && /^[A-Za-z0-9_.\[][A-Za-z0-9_.\-\[\],<>=!~ ]*$/.test(p)))) {
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
    'echo "slurmkit: building venv $venv on ${SLURMD_NODENAME:-$(hostname)}" >&2',
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
        '  echo "slurmkit: reusing venv $venv on ${SLURMD_NODENAME:-$(hostname)}" >&2',
        "else",
        ...build.map((l) => `  ${l}`),
        "fi",
      ]
    : [`venv=${venv}`, ...build];
  const keyLines = options.reuse
    ? [
        `${keyVar}=$({ command -v ${python}; ${python} -VV; ${options.requirements !== undefined ? `cat ${shellWord(options.requirements)};` : ""} } 2>&1 | sha256sum | cut -c1-12)`,
        `export ${keyVar}`,
      ]
    : [];
  return step("venvPerNode", {
    batch: [...keyLines, ...onEveryNode("venvPerNode", script)],
    rank: [
      "# shellcheck source=/dev/null",
      `. ${venv}/bin/activate || { echo "slurmkit: cannot activate the venv on \${SLURMD_NODENAME:-$(hostname)}" >&2; exit 1; }`,
    ],
  });
}

/** Options of stageIn(). */
export interface StageInOptions {
  /** A file, folder or zip archive on shared storage. */
  readonly from: LateString;
  /** A folder, usually node-local: `atRuntime("$SLURM_TMPDIR/data")`. */
  readonly to: LateString;
  /** Unzip `from` into `to` instead of copying it. @default false */
  readonly unzip?: boolean;
}

/**
 * Copies (or unzips) data into node-local scratch on every node of the job,
 * once per node per allocation.
 *
 * @example
 * stageIn({ from: "/project/data.zip", to: atRuntime("$SLURM_TMPDIR/data"), unzip: true })
 */
export function stageIn(options: StageInOptions): SetupStep {
  const problems: string[] = [];
  need(problems, "from", options.from);
  need(problems, "to", options.to);
  check("stageIn", problems);
  const to = shellWord(options.to);
  const from = shellWord(options.from);
  return step("stageIn", {
    batch: onEveryNode("stageIn", [
      `mkdir -p -- ${to}`,
      `echo "slurmkit: staging in" ${from} "to" ${to} "on \${SLURMD_NODENAME:-$(hostname)}" >&2`,
      options.unzip ? `unzip -q -o ${from} -d ${to}` : `cp -R -- ${from} ${to}/`,
    ]),
  });
}

/** Options of stageOut(). */
export interface StageOutOptions {
  /** A node-local file or folder: `atRuntime("$SLURM_TMPDIR/out")`. */
  readonly from: LateString;
  /** A shared folder; each job copies into its own subfolder `<to>/<job id>/`. */
  readonly to: LateString;
}

/**
 * Copies results back to shared storage when the job ends, also when it
 * fails, is cancelled or times out (a trap on exit). Each job copies into its
 * own `<to>/<job id>/` (`<array id>_<index>` for array elements), so no job
 * overwrites another's outputs; with several nodes each node copies into
 * `<to>/<job id>/<node>/`.
 *
 * @example
 * stageOut({ from: atRuntime("$SLURM_TMPDIR/out"), to: "/project/results" })
 */
export function stageOut(options: StageOutOptions): SetupStep {
  const problems: string[] = [];
  need(problems, "from", options.from);
  need(problems, "to", options.to);
  check("stageOut", problems);
  const from = shellWord(options.from);
  const dest = `${shellWord(options.to)}/"$slurmkit_job"`;
  const copy = (target: string) => [
    `mkdir -p -- ${target}`,
    `if [ -e ${from} ]; then cp -R -- ${from} ${target}/; else echo "slurmkit: nothing to stage out at" ${from} "on \${SLURMD_NODENAME:-$(hostname)}" >&2; fi`,
  ];
  const perNode = ["set -euo pipefail", `slurmkit_job=\${1:?}`, ...copy(`${dest}/"\${SLURMD_NODENAME:-$(hostname)}"`)].join("\n");
  return step("stageOut", {
    exit: [
      'if [ "${SLURM_JOB_NUM_NODES:-1}" -gt 1 ]; then',
      `  srun --overlap --ntasks="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 bash -c ${quoteShell(perNode)} slurmkit-stage-out "$slurmkit_job" || echo "slurmkit: stage-out failed" >&2`,
      "else",
      ...copy(dest).map((l) => `  ${l}`),
      "fi",
    ],
  });
}

/**
 * Activates a conda environment in the batch shell (and so for the tasks).
 *
 * @example
 * condaActivate("myenv")
 */
export function condaActivate(env: LateString): SetupStep {
  const problems: string[] = [];
  need(problems, "env", env, "an environment name or path");
  check("condaActivate", problems);
  return step("condaActivate", {
    batch: [
      `command -v conda >/dev/null 2>&1 || slurmkit_fail ${quoteShell(`conda is not available; cannot activate ${showLate(env)}`)}`,
      'eval "$(conda shell.bash hook)"',
      `conda activate ${shellWord(env)} || slurmkit_fail ${quoteShell(`conda activate ${showLate(env)} failed`)}`,
    ],
  });
}

/** Options of container(). */
export interface ContainerOptions {
  readonly runtime: "apptainer" | "singularity";
  /** The image: a .sif file or a URI the runtime accepts. */
  readonly image: LateString;
  /** Bind mounts, `src` or `src:dest` (the run folder must be visible inside). */
  readonly binds?: readonly LateString[];
  /** `--nv`: make NVIDIA GPUs visible. @default false */
  readonly nv?: boolean;
}

/**
 * Runs the runner (and so the tasks) inside an Apptainer or Singularity
 * container. The image must have Node.js at `nodeBinary`.
 *
 * @example
 * container({ runtime: "apptainer", image: "/project/env.sif", binds: ["/project"], nv: true })
 */
export function container(options: ContainerOptions): SetupStep {
  const problems: string[] = [];
  if (options.runtime !== "apptainer" && options.runtime !== "singularity") {
    problems.push(`Expected \`runtime\` to be "apptainer" or "singularity", got \`${String(options.runtime)}\``);
  }
  need(problems, "image", options.image);
  (options.binds ?? []).forEach((b, i) => need(problems, `binds[${i}]`, b, "a bind such as `/project` or `/data:/data`"));
  check("container", problems);
  return step("container", {
    wrap: [options.runtime, "exec", ...(options.nv ? ["--nv"] : []), ...(options.binds ?? []).flatMap((b) => ["--bind", shellWord(b)]), shellWord(options.image)],
  });
}

/**
 * Inserts a user's setup file verbatim (as flat-bug's `slurm_setup=FILE`).
 * The file is read now, relative to `cwd`; a missing file is a ParameterError.
 *
 * @example
 * setupFile("setup.txt") // module load ...; python -m venv "$SLURM_TMPDIR/env"; ...
 */
export function setupFile(path: string, cwd: string = process.cwd()): SetupStep {
  if (typeof path !== "string" || path === "") throw new ParameterError("setupFile step", [`Expected \`path\` to be a file path, got \`${String(path)}\``]);
  const full = resolve(cwd, path);
  let text: string;
  try {
    text = readFileSync(full, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : code === "EACCES" ? "permission denied" : (error as Error).message;
    throw new ParameterError("setupFile step", [`Cannot read setup file \`${path}\`${full === path ? "" : ` (${full})`}: ${why}`]);
  }
  // sbatch refuses scripts with DOS line breaks.
  return step("setupFile", { batch: [`# from ${JSON.stringify(full)}`, ...text.replace(/\r\n/g, "\n").replace(/\n$/, "").split("\n")] });
}

/** Raw lines, inserted as they are. */
export function lines(...raw: string[]): SetupStep {
  const bad = raw.findIndex((l) => typeof l !== "string");
  if (bad >= 0) throw new ParameterError("lines step", [`Expected line ${bad} to be a string, got \`${String(raw[bad])}\``]);
  return step("lines", { batch: raw.flatMap((l) => l.split("\n")) });
}
