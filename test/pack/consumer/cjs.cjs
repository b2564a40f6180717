// CommonJS consumer: require() of each package (Node >= 22.12 loads the ES modules synchronously).
"use strict";
const core = require("@zipstream/core");
const s3 = require("@zipstream/s3");
const lambda = require("@zipstream/lambda");
const cli = require("@zipstream/cli");
const limits = require("@zipstream/s3/limits");
const { exercise } = require("./exercise.cjs");
const { writeFileSync } = require("node:fs");

if (limits.MIN_PART_SIZE !== s3.MIN_PART_SIZE || limits.MAX_PART_SIZE !== s3.MAX_PART_SIZE) throw new Error("@zipstream/s3/limits disagrees with @zipstream/s3");

(async () => {
  const tag = `cjs-node${process.versions.node.split(".")[0]}`;
  await exercise({ core, s3, lambda, cli }, tag);
  // require() and import() must give the same module, not a second copy.
  const imported = await import("@zipstream/core");
  writeFileSync(`out/${tag}/identity.json`, JSON.stringify({
    sameZipError: imported.ZipError === core.ZipError,
    resolved: require.resolve("@zipstream/core"),
  }));
})().catch((err) => { console.error(err); process.exit(1); });
