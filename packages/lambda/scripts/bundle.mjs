// Bundles the handler into one self-contained ESM file for Lambda: dist-bundle/index.mjs
// (handler "index.handler"), the AWS SDK included so the function does not depend on the SDK
// version the runtime happens to ship. Then packs that directory into dist-zip/lambda.zip, the
// deployment package the npm tarball ships (`@zipstream/lambda/lambda.zip`: upload it in the
// console, or give it to CDK's Code.fromAsset), written with @zipstream/core itself.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { zipStream } from "@zipstream/core";

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
  target: "node22",
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

// The deployment zip: every file of dist-bundle at the archive's root (Lambda looks for
// index.mjs there), with one fixed timestamp so the same sources give the same bytes
// (SOURCE_DATE_EPOCH, in seconds, overrides it).
const zipDir = `${root}dist-zip`;
await rm(zipDir, { recursive: true, force: true });
await mkdir(zipDir);
const mtime = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 1_767_225_600) * 1000); // 2026-01-01
const names = (await readdir(outdir)).sort();
await pipeline(
  zipStream(names.map((name) => ({ name, path: `${outdir}/${name}`, mtime, mode: 0o644 })), { method: "deflate" }),
  createWriteStream(`${zipDir}/lambda.zip`),
);
const zipBytes = (await stat(`${zipDir}/lambda.zip`)).size;
console.log(`dist-zip/lambda.zip: ${(zipBytes / 1024).toFixed(0)} KiB (${names.join(", ")})`);
