import { build } from "esbuild";
const [root] = process.argv.slice(2);
const out = `/tmp/measure-${root.replace(/\W/g, "_")}.mjs`;
await build({ entryPoints: [`${root}/test/fixtures/memory.ts`], bundle: true, platform: "node", format: "esm", outfile: out, external: ["*.node"], logLevel: "error", banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" } });
const { execFileSync } = await import("node:child_process");
const r = execFileSync("node", ["-e", `const before = process.memoryUsage().rss; import(${JSON.stringify(out)}).then(() => { global.gc?.(); const after = process.memoryUsage().rss; console.log(((after - before) / 2 ** 20).toFixed(1), "MiB for", ${JSON.stringify(root)}); })`]).toString();
const { statSync } = await import("node:fs");
console.log(r.trim(), "bundle", (statSync(out).size / 1024).toFixed(0), "KiB");
