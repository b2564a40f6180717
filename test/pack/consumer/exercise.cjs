// Uses each installed @zipstream package the way a user would, given the modules as the caller
// loaded them (import in esm.mjs, require() in cjs.cjs), and writes one archive per package
// under out/<tag>/. Writes out/<tag>/results.json; the test checks every archive with unzip -t.
// Environment: S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, PACK_BUCKET
// (objects under src/), PACK_TREE (a local folder to zip).
"use strict";
const { testClient, download } = require("./s3.cjs");
const { createWriteStream, mkdirSync, writeFileSync } = require("node:fs");
const { Writable } = require("node:stream");
const { pipeline } = require("node:stream/promises");
const path = require("node:path");

async function exercise({ core, s3, lambda, cli }, tag) {
  const env = process.env;
  const out = path.resolve("out", tag);
  mkdirSync(out, { recursive: true });
  const bucket = env.PACK_BUCKET;
  const client = testClient(env);
  const results = { archives: {} };

  // @zipstream/core: a local archive.
  await pipeline(
    core.zipStream(
      [
        { name: "hello.txt", source: "hello from " + tag + "\n" },
        { name: "data/bytes.bin", source: new Uint8Array(4096).fill(7) },
      ],
      { method: "deflate" },
    ),
    createWriteStream(`${out}/core.zip`),
  );
  results.archives.core = `${out}/core.zip`;

  // @zipstream/s3: S3 objects into an S3 object, then downloaded.
  const s3Key = `${tag}/s3.zip`;
  const r = await s3.zipS3Keys({ client, src: { bucket, prefix: "src/" }, dest: { bucket, key: s3Key } });
  results.s3Entries = r.entries;
  results.s3Assembly = r.assembly;
  await download(client, bucket, s3Key, `${out}/s3.zip`);
  results.archives.s3 = `${out}/s3.zip`;

  // One module instance whichever way it was loaded: an error thrown inside @zipstream/s3 is an
  // instance of the ZipError class this caller got from @zipstream/core.
  try {
    await s3.zipS3Keys({ client, src: { bucket, keys: ["src/missing"] }, dest: { bucket, key: `${tag}/never.zip` } });
    results.missingKey = "no error";
  } catch (err) {
    results.missingKey = { code: err.code, isZipError: err instanceof core.ZipError, isS3ZipError: err instanceof s3.S3ZipError };
  }

  // @zipstream/lambda: the handler, invoked in-process with a Lambda-like context.
  const lambdaKey = `${tag}/lambda.zip`;
  env.AWS_ENDPOINT_URL_S3 = env.S3_ENDPOINT;
  env.S3_FORCE_PATH_STYLE = "1";
  env.AWS_LAMBDA_LOG_LEVEL = "ERROR"; // only errors in the test output
  const lr = await lambda.handler(
    { src: [{ bucket, prefix: "src/" }], dest: { bucket, key: lambdaKey } },
    { awsRequestId: `pack-${tag}`, functionName: "pack", memoryLimitInMB: "1024", getRemainingTimeInMillis: () => 600_000 },
  );
  results.lambdaEntries = lr.entries;
  results.lambdaAssembly = lr.assembly;
  await download(client, bucket, lambdaKey, `${out}/lambda.zip`);
  results.archives.lambda = `${out}/lambda.zip`;

  // @zipstream/cli as a library: main(argv, io) resolves with the exit code.
  const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });
  results.cliExit = await cli.main([env.PACK_TREE + "/", `${out}/cli.zip`], { stdout: sink(), stderr: process.stderr, env });
  results.archives.cli = `${out}/cli.zip`;

  writeFileSync(`${out}/results.json`, JSON.stringify(results, null, 2));
}

module.exports = { exercise };
