// A consumer that pins the lowest @aws-sdk/client-s3 that @zipstream/s3 supports: its own
// S3Client goes into zipS3Keys (one SDK copy in node_modules).
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";
import { createWriteStream, mkdirSync } from "node:fs";
import { pipeline } from "node:stream/promises";

const env = process.env;
const client = new S3Client({
  region: env.AWS_REGION,
  endpoint: env.S3_ENDPOINT,
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
const key = "old-sdk/s3.zip";
const result = await zipS3Keys({ client, src: { bucket: env.PACK_BUCKET, prefix: "src/" }, dest: { bucket: env.PACK_BUCKET, key } });
mkdirSync("out", { recursive: true });
const got = await client.send(new GetObjectCommand({ Bucket: env.PACK_BUCKET, Key: key }));
await pipeline(got.Body, createWriteStream("out/old-sdk.zip"));
console.log(JSON.stringify({ entries: result.entries }));
