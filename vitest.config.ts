import { defineConfig } from "vitest/config";

// Each workspace member has its own vitest.config.ts; scripts/test.sh runs them one
// project at a time so that heavy suites never compete for this machine's two cores.
export default defineConfig({
  test: {
    projects: ["packages/*", "test/*", "examples/*", "bench", "infra"],
  },
});
