import { defineConfig } from "vitest/config";

// Test files run one at a time: they share a four-CPU cluster, and tests that
// check where tasks land must not compete for it. Files under test/serial/
// restart, reconfigure or kill parts of the cluster (accounting off, killed
// daemons), so they run as a group of their own, never beside the rest, and
// each brings the cluster back when it ends.
export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    projects: [
      {
        extends: true,
        test: {
          name: "main",
          include: ["test/**/*.test.ts"],
          // test/.tmp holds projects the tests make, one of which links back to this package.
          exclude: ["test/serial/**", "test/.tmp/**", "**/node_modules/**"],
          fileParallelism: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: ["test/serial/**/*.test.ts"],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
