// ESM consumer: `import` of each package.
import * as core from "@zipstream/core";
import * as s3 from "@zipstream/s3";
import * as lambda from "@zipstream/lambda";
import * as cli from "@zipstream/cli";
import * as limits from "@zipstream/s3/limits";
import { exercise } from "./exercise.cjs";

// The light entry of the bounds agrees with the package itself.
if (limits.MIN_PART_SIZE !== s3.MIN_PART_SIZE || limits.MAX_PART_SIZE !== s3.MAX_PART_SIZE) throw new Error("@zipstream/s3/limits disagrees with @zipstream/s3");
await exercise({ core, s3, lambda, cli }, `esm-node${process.versions.node.split(".")[0]}`);
