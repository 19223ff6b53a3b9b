import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Message, Plugin } from "esbuild";
import { ParameterError } from "../base/errors.js";

/** One function task module as a snapshot: plain ESM JavaScript and its source map, named by content. */
export interface CodeBundle {
  /** The first 16 hex digits of the code's SHA-256: the bundle is `code/<hash>.mjs`. */
  readonly hash: string;
  /** The file name in the executor's `code/` folder. */
  readonly name: string;
  /** The bundle, ending with a sourceMappingURL comment that names `<name>.map`. */
  readonly code: Uint8Array;
  /** The source map, pointing at the original files. */
  readonly map: Uint8Array;
}

/** Options of bundleModule. */
export interface BundleOptions {
  /** Packages left out of the bundle, resolved on the node instead. */
  readonly external?: readonly string[];
  /** Put before the hash in the file name. @default "" */
  readonly prefix?: string;
}

const cache = new Map<string, { inputs: ReadonlyMap<string, number>; bundle: Promise<CodeBundle> }>();

/** Whether every input of a cached bundle is unchanged on disk (by modification time). */
async function unchanged(inputs: ReadonlyMap<string, number>): Promise<boolean> {
  for (const [path, mtime] of inputs) {
    const now = await stat(path).then(
      (s) => s.mtimeMs,
      () => -1,
    );
    if (now !== mtime) return false;
  }
  return true;
}

/**
 * Bundles a function task's module with esbuild: the module, the local files
 * it imports and the pure-JavaScript packages it uses, into one ESM file that
 * plain `node` imports. Once per module per process while its files do not
 * change. A syntax error or an import that cannot be resolved is a
 * ParameterError naming the file and line.
 */
export async function bundleModule(moduleUrl: string, options: BundleOptions = {}): Promise<CodeBundle> {
  const key = `${moduleUrl}\0${(options.external ?? []).join(",")}\0${options.prefix ?? ""}`;
  const hit = cache.get(key);
  if (hit && (await unchanged(hit.inputs))) return hit.bundle;
  const entry = fileURLToPath(moduleUrl);
  const inputs = new Map<string, number>();
  const bundle = bundleNow(entry, options, inputs);
  cache.set(key, { inputs, bundle });
  bundle.catch(() => cache.delete(key));
  return bundle;
}

/**
 * slurmkit's runner as one file (msgpackr included), so that the nodes need
 * plain Node and no slurmkit install: `runner-<hash>.mjs` beside the task
 * snapshots. tsx stays out: only modules imported with `bundle: false` need it.
 */
export async function bundleRunner(runner: string): Promise<CodeBundle> {
  const bundle = await bundleModule(pathToFileURL(runner).href, { external: ["tsx", "msgpackr-extract"], prefix: "runner-" });
  return bundle;
}

async function bundleNow(entry: string, options: BundleOptions, inputs: Map<string, number>): Promise<CodeBundle> {
  // Loaded when a bundle is first made: reading a run folder never needs esbuild.
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    // The oldest Node the runner supports (RUNNER_NODE_MAJOR): clusters still have Node 18.
    target: "node18",
    write: false,
    outfile: resolve("task.mjs"),
    sourcemap: "external",
    sourcesContent: true,
    metafile: true,
    logLevel: "silent",
    external: [...(options.external ?? [])],
    plugins: [nativeAddonsExternal],
    // CommonJS code in the ESM bundle (packages, or a CommonJS task module) expects require, __filename and __dirname:
    // those of the snapshot's own place, as import.meta.url is.
    banner: {
      js: [
        'import { createRequire as __slurmkitCreateRequire } from "node:module";',
        'import { fileURLToPath as __slurmkitFileURLToPath } from "node:url";',
        'import { dirname as __slurmkitDirname } from "node:path";',
        "const require = __slurmkitCreateRequire(import.meta.url);",
        "const __filename = __slurmkitFileURLToPath(import.meta.url);",
        "const __dirname = __slurmkitDirname(__filename);",
      ].join("\n"),
    },
  }).catch((error: { errors?: Message[] }) => {
    throw new ParameterError(
      "function task",
      (error.errors ?? [{ text: String(error) } as Message]).map((m) => describe(m, entry)),
    );
  });
  for (const input of Object.keys(result.metafile.inputs)) {
    const path = input.startsWith("/") ? input : `${process.cwd()}/${input}`;
    inputs.set(
      path,
      await stat(path).then(
        (s) => s.mtimeMs,
        () => -1,
      ),
    );
  }
  const js = result.outputFiles.find((f) => f.path.endsWith(".mjs"))!;
  const mapFile = result.outputFiles.find((f) => f.path.endsWith(".map"))!;
  // The map's sources are relative to where esbuild put the bundle; on the node they must name the original files.
  const parsed = JSON.parse(mapFile.text) as { sources: string[] };
  parsed.sources = parsed.sources.map((s) => pathToFileURL(resolve(dirname(mapFile.path), s)).href);
  const map = Buffer.from(JSON.stringify(parsed));
  const hash = createHash("sha256").update(js.contents).update(map).digest("hex").slice(0, 16);
  const name = `${options.prefix ?? ""}${hash}.mjs`;
  const code = Buffer.concat([js.contents, Buffer.from(`//# sourceMappingURL=${name}.map\n`)]);
  return { hash, name, code, map };
}

/** An esbuild message as one line: file:line:column: text. */
function describe(m: Message, entry: string): string {
  const where = m.location ? `${resolve(m.location.file)}:${m.location.line}:${m.location.column + 1}: ` : `${relative(process.cwd(), entry)}: `;
  return `Cannot bundle the task module: ${where}${m.text}`;
}

/** Packages that build or load a native addon: a package depending on one of these, or with `gypfile`, is one. */
const NATIVE_LOADERS = ["bindings", "node-gyp-build", "node-gyp-build-optional-packages", "prebuild-install", "node-addon-api", "nan", "node-pre-gyp", "@mapbox/node-pre-gyp"];

/** Whether the package a bare import names (found from `from`) has a native addon. */
async function isNativePackage(specifier: string, from: string): Promise<boolean> {
  const name = specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!;
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = await readFile(join(dir, "node_modules", name, "package.json"), "utf8").catch(() => undefined);
    if (manifest !== undefined) {
      const pkg = JSON.parse(manifest) as { gypfile?: boolean; dependencies?: Record<string, string> };
      return pkg.gypfile === true || NATIVE_LOADERS.some((d) => pkg.dependencies?.[d] !== undefined);
    }
    if (dirname(dir) === dir) return false;
  }
}

/**
 * Imports esbuild does not resolve by itself: `file:` URLs, which Node
 * imports, become paths. Native addons cannot be bundled: `.node` files and
 * packages that build or load one stay external, resolved on the node.
 */
const nativeAddonsExternal: Plugin = {
  name: "slurmkit-resolve",
  setup(b) {
    b.onResolve({ filter: /^file:/ }, (args) => ({ path: fileURLToPath(args.path) }));
    b.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, external: true }));
    b.onResolve({ filter: /^(@[^/]+\/)?[^./][^/]*/ }, async (args) =>
      !args.path.startsWith("node:") && (await isNativePackage(args.path, args.resolveDir)) ? { path: args.path, external: true } : undefined,
    );
  },
};
