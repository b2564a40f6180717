import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "pack",
    include: ["test/**/*.test.ts"],
    // Packing builds every package, and each consumer is a real `npm install`.
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
