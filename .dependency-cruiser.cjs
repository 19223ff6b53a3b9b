// The layering check (npm run check:layers, part of npm test): imports point
// down the layers, never up, and never in a cycle. Type-only imports count.
// Layers, lowest first; a module may import its own layer and those below.
const layers = [
  ["base", "^src/base/"],
  ["protocol", "^src/protocol/"],
  ["core", "^src/core/"],
  ["setup, transport, code", "^src/(setup|transport|code)/"],
  ["engine", "^src/engine/"],
  ["schedulers", "^src/(slurm|local)/"],
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
      comment: "the runner on the node imports only base, protocol and the job environment from src/, so it stays small and starts fast",
      severity: "error",
      from: { path: "^runner/" },
      to: { path: "^src/(?!base/|protocol/|core/job-environment\\.ts$)" },
    },
  ],
  options: {
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(node_modules|dist|test)/" },
  },
};
