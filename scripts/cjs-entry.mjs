// Writes the CommonJS entry of a package after tsc: dist/index.cjs and dist/index.d.cts.
//
// The packages are ES modules only. Node >= 22.12 can require() an ES module synchronously, so
// the CommonJS entry simply re-exports the one ES module: `require()` and `import` then share a
// single module instance (one ZipError class, so `instanceof` holds across both), which a
// second, CommonJS build of the sources could not promise. The ".d.cts" gives TypeScript's
// node16/nodenext resolution a CommonJS-flavoured entry for `require` consumers.
//
//   node ../../scripts/cjs-entry.mjs        (run in the package directory, after tsc)
import { writeFileSync, existsSync } from "node:fs";

if (!existsSync("dist/index.js") || !existsSync("dist/index.d.ts")) {
  console.error("cjs-entry: dist/index.js and dist/index.d.ts are missing; run tsc first");
  process.exit(1);
}
writeFileSync(
  "dist/index.cjs",
  "// require() entry: the ES module itself, loaded synchronously (Node >= 22.12).\n" +
    'module.exports = require("./index.js");\n',
);
writeFileSync("dist/index.d.cts", 'export * from "./index.js";\n');
