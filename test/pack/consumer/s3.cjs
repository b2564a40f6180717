// The consumer's own S3 client (from the @aws-sdk/client-s3 installed in the consumer project)
// for the test server in the environment, and a download helper.
"use strict";
const { S3Client, GetObjectCommand } = require("@aws-sdk/client-s3");
const { createWriteStream } = require("node:fs");
const { pipeline } = require("node:stream/promises");

/** Path-style, checksums only when required: what Ceph and MinIO need (harmless on AWS). */
function testClient(env = process.env) {
  return new S3Client({
    region: env.AWS_REGION,
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

async function download(client, bucket, key, file) {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await pipeline(got.Body, createWriteStream(file));
}

module.exports = { testClient, download };
