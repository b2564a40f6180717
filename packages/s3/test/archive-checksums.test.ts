/**
 * A distributed archive on a server with flexible checksums (the Ceph 20 gateway of
 * infra/checksum-s3, S3_CHECKSUM_ENDPOINT): the planner creates the upload with CRC32
 * FULL_OBJECT, segments learn CRCs from S3 (source checksums or copy CRCs, no read pass), and
 * finalize sends the archive's combined CRC-32, which S3 verifies at Complete.
 */
import zlib from "node:zlib";
import { readFile } from "node:fs/promises";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { finalizeArchive, planArchive, runSegment, zipS3Keys } from "../src/index.js";
import { crc32FromBase64 } from "../src/checksums.js";
import { createBucket, deleteBucket, download, listUploads, patternBytes } from "./helpers.js";

const MiB = 1024 * 1024;
const endpoint = process.env.S3_CHECKSUM_ENDPOINT;
let client: S3Client;
let src: string;
let out: string;
const data = new Map<string, Buffer>();

beforeAll(async () => {
  if (!endpoint) throw new Error("S3_CHECKSUM_ENDPOINT is not set: start infra/checksum-s3 (scripts/test.sh does) and source its env");
  client = new S3Client({
    endpoint,
    region: process.env.S3_CHECKSUM_REGION ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.S3_CHECKSUM_ACCESS_KEY_ID!, secretAccessKey: process.env.S3_CHECKSUM_SECRET_ACCESS_KEY! },
  });
  src = await createBucket(client, "dcksrc");
  out = await createBucket(client, "dckout");
  const items: [string, Buffer][] = [
    ["s/a.txt", Buffer.from("a\n".repeat(3000))],
    ["s/b.bin", patternBytes(12 * MiB, 1)],
    ["s/c.txt", Buffer.from("c\n".repeat(5000))],
    ["s/d.bin", patternBytes(21 * MiB + 1, 2)],
  ];
  for (const [k, b] of items) {
    data.set(k, b);
    await client.send(new PutObjectCommand({ Bucket: src, Key: k, Body: b, ContentLength: b.length }));
  }
}, 300_000);

afterAll(async () => {
  for (const b of [src, out]) if (b) await deleteBucket(client, b);
  client?.destroy();
});

const bytesOf = async (key: string) => {
  const dl = await download(client, out, key);
  try {
    return await readFile(dl.path);
  } finally {
    await dl.cleanup();
  }
};

describe("distributed archive on a checksum server (Ceph 20)", () => {
  it("CRCs from S3, no read pass; the archive's CRC-32 verified at Complete; byte-identical to zipS3Keys", async () => {
    const opts = { client, src: { bucket: src, prefix: "s/" }, copyMinSize: 5 * MiB, partSize: 5 * MiB, maxCopyPartSize: 10 * MiB };
    await zipS3Keys({ ...opts, dest: { bucket: out, key: "ref.zip" }, assembly: "copy" });
    const plan = await planArchive({ ...opts, dest: { bucket: out, key: "dist.zip" }, segment: { bytes: 10 * MiB } });
    expect(plan.checksums).toBe(true);
    expect(plan.segments).toBeGreaterThanOrEqual(2);
    let read = 0;
    for (let i = plan.segments - 1; i >= 0; i--) {
      const r = await runSegment({ client, plan, segment: i });
      read += r.bytesRead;
      for (const s of r.crcSource) expect(["s3-object", "s3-copy", "read"]).toContain(s);
    }
    // Only the uploaded pieces (small members, stolen head bytes) are read: never a copied byte.
    expect(read).toBeLessThan(plan.bytesUploaded!);
    const res = await finalizeArchive({ client, plan });
    expect(res.checksumVerified).toBe(true);
    const bytes = await bytesOf("dist.zip");
    expect(crc32FromBase64(res.checksumCRC32)).toBe(zlib.crc32(bytes));
    expect(bytes.equals(await bytesOf("ref.zip"))).toBe(true);
    const dl = await download(client, out, "dist.zip");
    try {
      await verifyZip(dl.path, [...data.entries()].map(([k, d]) => ({ name: k.slice(2), data: d })), { readers: ["unzip", "python"] });
    } finally {
      await dl.cleanup();
    }
    expect(await listUploads(client, out)).toBe(0);
  });
});
