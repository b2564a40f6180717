import http from "node:http";
import { S3Client, PutObjectCommand, CreateBucketCommand } from "@aws-sdk/client-s3";
import { zipS3Keys } from "@zipstream/s3";
const env = Object.fromEntries(
  (await import("node:fs")).readFileSync("/work/main/.local-s3/env", "utf8").split("\n").filter(Boolean).map((l) => l.replace(/^export /, "").split("=")),
);
const mk = (endpoint) =>
  new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED", requestHandler: { httpAgent: new http.Agent({ keepAlive: true }) } });
const c = mk(env.S3_ENDPOINT);
const bucket = "rel-timing-" + Date.now();
await c.send(new CreateBucketCommand({ Bucket: bucket }));
const MiB = 1 << 20;
const sizes = [0, ...Array.from({ length: 20 }, (_, i) => 1 + ((i * 7919) % 150000)), 5 * MiB + 12345, 7 * MiB - 3, 2 * MiB + 1];
let t = Date.now();
await Promise.all(sizes.map((s, i) => c.send(new PutObjectCommand({ Bucket: bucket, Key: `src/${i}`, Body: Buffer.alloc(s, i) }))));
console.log("seed", Date.now() - t);
for (const method of ["store", "deflate"]) {
  t = Date.now();
  await zipS3Keys({ client: c, src: { bucket, keys: sizes.map((_, i) => `src/${i}`) }, dest: { bucket, key: "out.zip" }, method, partSize: 5 * MiB, concurrency: 3, prefetch: { objects: 6, bytes: 8 * MiB, rangeSize: 2 * MiB } });
  console.log(method, Date.now() - t);
}
