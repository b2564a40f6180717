import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

// The tests run the built binary as a user would: build it from the current sources first
// (a few seconds), so a stale dist/ can never make them pass or fail.
export default function setup(): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  execFileSync("pnpm", ["exec", "tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
}
