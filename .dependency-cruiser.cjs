// The layering check (npm run check:layers, part of npm test): imports point
// down the layers, never up, and never in a cycle. Type-only imports count.
// Layers, lowest first; a module may import its own layer and those below.
const layers = [
  ["base", "^src/base/"],
  ["protocol", "^src/protocol/"],
  ["core", "^src/core/"],
  ["setup, transport, code", "^src/(setup|transport|code)/"],
  ["engine", "^src/engine/"],
  // Every other folder of src/ is a scheduler's (slurm, local, and any added later).
  ["schedulers", "^src/(?!(base|protocol|core|setup|transport|code|engine|report|sdk|cli)/)[^/]+/"],
  ["report", "^src/report/"],
  ["sdk", "^src/sdk/"],
  ["the public surface and the bin", "^src/(cli/|cli\\.ts$|index\\.ts$)"],
];

const upward = layers.slice(0, -1).map(([name, path], i) => ({
  name: `no-upward-import-from-${name.replace(/\W+/g, "-")}`,
  comment: `${name} may import only its own layer and those below it`,
  severity: "error",
  from: { path },
  to: { path: layers.slice(i + 1).map(([, p]) => p).join("|") },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: "no-circular",
      comment: "modules that import each other, directly or through others",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "runner-stays-small",
      comment: "the runner on the node imports only base, protocol and the core's job environment and node side from src/, so it stays small and starts fast",
      severity: "error",
      from: { path: "^runner/" },
      to: { path: "^src/(?!base/|protocol/|core/(job-environment|node-side)\\.ts$)" },
    },
    {
      name: "node-sides-stay-small",
      comment: "a scheduler's node side and runner entry are bundled with the runner: they import only base, protocol, the core's job environment and node side, the runner, and their own node side",
      severity: "error",
      from: { path: "^src/[^/]+/(node|runner)\\.ts$" },
      to: { path: "^(?!src/(base/|protocol/|core/(job-environment|node-side)\\.ts$|[^/]+/node\\.ts$)|runner/|node_modules/)", dependencyTypesNot: ["core"] },
    },
    {
      name: "only-runner-entries-import-the-runner",
      comment: "the client side never imports the node's program; each scheduler's runner entry (src/<scheduler>/runner.ts) starts it",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/[^/]+/runner\\.ts$" },
      to: { path: "^runner/" },
    },
  ],
  options: {
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|test)/" },
  },
};
