import { defineConfig } from "vitest/config";
export default defineConfig({ test: { include: ["test/engine/task-records.test.ts", "test/engine/stream-follower.test.ts", "test/protocol/*.test.ts", "test/engine/watcher.test.ts"] } });
