import type { S3Client } from "@aws-sdk/client-s3";
import { zipStream, type ZipEntry } from "@zipstream/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { FIRST_READ, MIN_READ, uploadStream, verifyS3Zip } from "../src/index.js";
import { createBucket, deleteBucket, makeClient, patternBytes } from "./helpers.js";

/**
 * Requests and bytes of the structural check on large archives. CI sizes: 70,000 tiny entries,
 * and 300 members of 2 MiB (600 MiB). The full size, a few hundred 10 MB members, runs
 * with ZS_VERIFY_BIG_MB=10 (and ZS_VERIFY_BIG_MEMBERS for the count).
 */
const MiB = 1 << 20;
const MEMBERS = Number(process.env.ZS_VERIFY_BIG_MEMBERS ?? 300);
const MEMBER_BYTES = Math.round(Number(process.env.ZS_VERIFY_BIG_MB ?? 2) * (process.env.ZS_VERIFY_BIG_MB ? 1e6 : MiB));

let client: S3Client;
let bucket: string;
beforeAll(async () => {
  client = makeClient();
  bucket = await createBucket(client, "vlarge");
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

it("70,000 entries (Zip64 by count), localHeaders none: the directory in 2 requests", async () => {
  const count = 70_000;
  const list = function* (): Generator<ZipEntry> {
    for (let i = 0; i < count; i++) yield { name: `d${i % 100}/file-${i}.txt`, source: `entry ${i}\n` };
  };
  const up = await uploadStream({ client, dest: { bucket, key: "many.zip" }, body: zipStream(list(), { method: "store" }) });
  const t0 = performance.now();
  const r = await verifyS3Zip({ client, bucket, key: "many.zip", localHeaders: "none" });
  const ms = performance.now() - t0;
  expect(r.problems).toEqual([]);
  expect(r.ok).toBe(true);
  expect(r.entries).toBe(count);
  expect(r.zip64).toBe(true);
  // The last 1 MiB (end records and the directory's tail), then the rest of the directory.
  expect(r.requests).toBe(2);
  const cdSize = count * (46 + 9) + [...list()].reduce((s, e) => s + Buffer.byteLength(e.name), 0);
  expect(r.bytesRead).toBeGreaterThanOrEqual(cdSize);
  expect(r.bytesRead).toBeLessThanOrEqual(cdSize + FIRST_READ);
  console.log(`[verify] ${count} entries, ${up.size} bytes, localHeaders none: ${r.requests} requests, ${r.bytesRead} bytes (${((100 * r.bytesRead) / up.size).toFixed(1)} %), ${ms.toFixed(0)} ms`);

  // Every local header too: tiny members are read nearly whole, in a handful of merged ranges.
  const t1 = performance.now();
  const all = await verifyS3Zip({ client, bucket, key: "many.zip" });
  expect(all.ok).toBe(true);
  expect(all.checked.localHeaders).toBe(count);
  expect(all.requests).toBeLessThanOrEqual(3);
  console.log(`[verify] ${count} entries, localHeaders all: ${all.requests} requests, ${all.bytesRead} bytes, ${(performance.now() - t1).toFixed(0)} ms`);
}, 300_000);

it(`${MEMBERS} members of ${MEMBER_BYTES} bytes, local headers all: one request per member, a small fraction read`, async () => {
  const body = patternBytes(MEMBER_BYTES, 5);
  const list = function* (): Generator<ZipEntry> {
    for (let i = 0; i < MEMBERS; i++) yield { name: `big/member-${i}.bin`, source: body };
  };
  const up = await uploadStream({ client, dest: { bucket, key: "big.zip" }, body: zipStream(list(), { method: "store" }), partSize: 16 * MiB });
  const t0 = performance.now();
  const r = await verifyS3Zip({ client, bucket, key: "big.zip" });
  const ms = performance.now() - t0;
  expect(r.problems).toEqual([]);
  expect(r.checked.localHeaders).toBe(MEMBERS);
  // One suffix GET, then one GET per member: the gaps (a member each) exceed MERGE_GAP.
  expect(r.requests).toBe(1 + MEMBERS);
  expect(r.bytesRead).toBeLessThanOrEqual(FIRST_READ + MEMBERS * MIN_READ);
  expect(r.bytesRead / up.size).toBeLessThan(0.05);
  console.log(`[verify] ${MEMBERS} x ${MEMBER_BYTES} bytes = ${up.size} bytes: ${r.requests} requests, ${r.bytesRead} bytes (${((100 * r.bytesRead) / up.size).toFixed(2)} %), ${ms.toFixed(0)} ms`);
  const sample = await verifyS3Zip({ client, bucket, key: "big.zip", localHeaders: "sample" });
  expect(sample.ok).toBe(true);
  expect(sample.checked.localHeaders).toBe(64);
  expect(sample.requests).toBe(1 + 64);
}, 600_000);
