// Measures the cost of a ranged GET against its length on the S3 server in S3_ENDPOINT:
// the time of one request of n bytes, median of ROUNDS, for n from 1 KiB to 16 MiB. The
// break-even gap of verifyS3Zip's merged local-header reads comes from these numbers:
// a gap is worth reading through when reading it costs less than one more request.
// Run: source .local-s3/env && node packages/s3/bench/range-cost.mjs
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, DeleteObjectCommand, DeleteBucketCommand } from "@aws-sdk/client-s3";
import { randomBytes } from "node:crypto";
const client = new S3Client({
  endpoint: process.env.S3_ENDPOINT, region: process.env.AWS_REGION ?? "us-east-1", forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED",
});
const Bucket = `range-cost-${Date.now()}`;
const SIZE = 64 << 20;
const ROUNDS = Number(process.env.ROUNDS ?? 40);
await client.send(new CreateBucketCommand({ Bucket }));
await client.send(new PutObjectCommand({ Bucket, Key: "o", Body: randomBytes(SIZE), ContentLength: SIZE }));
async function get(start, n) {
  const out = await client.send(new GetObjectCommand({ Bucket, Key: "o", Range: `bytes=${start}-${start + n - 1}` }));
  let got = 0;
  for await (const c of out.Body) got += c.length;
  if (got !== n) throw new Error(`got ${got} of ${n}`);
}
for (let i = 0; i < 20; i++) await get(i * 4096, 4096); // warm-up
const rows = [];
for (const n of (process.env.SIZES ?? "1024,16384,32768,49152,65536,262144,1048576,4194304,16777216").split(",").map(Number)) {
  const t = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = Math.floor(Math.random() * (SIZE - n));
    const t0 = performance.now();
    await get(start, n);
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  rows.push({ bytes: n, medianMs: +t[t.length >> 1].toFixed(2), p90Ms: +t[Math.floor(t.length * 0.9)].toFixed(2) });
}
console.table(rows);
const base = rows[0].medianMs;
const big = rows[rows.length - 1];
const msPerMiB = ((big.medianMs - base) / (big.bytes - rows[0].bytes)) * (1 << 20);
console.log(`fixed cost per request ≈ ${base.toFixed(2)} ms; transfer ≈ ${msPerMiB.toFixed(2)} ms/MiB; break-even gap ≈ ${((base / msPerMiB) * 1024).toFixed(0)} KiB`);
await client.send(new DeleteObjectCommand({ Bucket, Key: "o" }));
await client.send(new DeleteBucketCommand({ Bucket }));
