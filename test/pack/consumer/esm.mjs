// ESM consumer: `import` of each package.
import * as core from "@zipstream/core";
import * as s3 from "@zipstream/s3";
import * as lambda from "@zipstream/lambda";
import * as cli from "@zipstream/cli";
import { exercise } from "./exercise.cjs";

await exercise({ core, s3, lambda, cli }, `esm-node${process.versions.node.split(".")[0]}`);
