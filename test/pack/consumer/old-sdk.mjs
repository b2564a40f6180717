// A consumer that pins the lowest @aws-sdk/client-s3 that @zipstream/s3 supports: its own
// S3Client (s3.cjs requires the consumer's SDK) goes into zipS3Keys.
import { zipS3Keys } from "@zipstream/s3";
import { mkdirSync } from "node:fs";
import { testClient, download } from "./s3.cjs";

const bucket = process.env.PACK_BUCKET;
const client = testClient();
const key = "old-sdk/s3.zip";
const result = await zipS3Keys({ client, src: { bucket, prefix: "src/" }, dest: { bucket, key } });
mkdirSync("out", { recursive: true });
await download(client, bucket, key, "out/old-sdk.zip");
console.log(JSON.stringify({ entries: result.entries, assembly: result.assembly }));
