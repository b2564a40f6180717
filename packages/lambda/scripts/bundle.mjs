// Bundles the handler into one self-contained ESM file for Lambda: dist-bundle/index.mjs
// (handler "index.handler"), the AWS SDK included so the function does not depend on the SDK
// version the runtime happens to ship.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { rm } from "node:fs/promises";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist-bundle`;
await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { index: `${root}src/index.ts` },
  outdir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  sourcemap: true,
  // Some SDK dependencies are CommonJS and call require() for Node built-ins; ESM has no require.
  banner: { js: 'import { createRequire as __zsCreateRequire } from "node:module"; const require = __zsCreateRequire(import.meta.url);' },
  mainFields: ["module", "main"],
  conditions: ["node", "import"],
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
});
const bytes = Object.entries(result.metafile.outputs).find(([f]) => f.endsWith("index.mjs"))[1].bytes;
console.log(`dist-bundle/index.mjs: ${(bytes / 1024).toFixed(0)} KiB`);
