// Writes the CommonJS entry of a package after tsc: dist/index.cjs and dist/index.d.cts.
//
// The packages are ES modules only. Node >= 22.12 can require() an ES module synchronously, so
// the CommonJS entry simply re-exports the one ES module: `require()` and `import` then share a
// single module instance (one ZipError class, so `instanceof` holds across both), which a
// second, CommonJS build of the sources could not promise. The ".d.cts" gives TypeScript's
// node16/nodenext resolution a CommonJS-flavoured entry for `require` consumers.
//
//   node ../../scripts/cjs-entry.mjs [entry...]   (run in the package directory, after tsc;
//                                                 entries default to "index", e.g. "index limits")
import { writeFileSync, existsSync } from "node:fs";

const entries = process.argv.length > 2 ? process.argv.slice(2) : ["index"];
for (const name of entries) {
  if (!existsSync(`dist/${name}.js`) || !existsSync(`dist/${name}.d.ts`)) {
    console.error(`cjs-entry: dist/${name}.js and dist/${name}.d.ts are missing; run tsc first`);
    process.exit(1);
  }
  writeFileSync(
    `dist/${name}.cjs`,
    "// require() entry: the ES module itself, loaded synchronously (Node >= 22.12).\n" +
      `module.exports = require("./${name}.js");\n`,
  );
  writeFileSync(`dist/${name}.d.cts`, `export * from "./${name}.js";\n`);
}
