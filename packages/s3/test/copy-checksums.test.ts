/**
 * The checksum paths of copy assembly, against a server that has S3's flexible checksums: the
 * Ceph 20 gateway of infra/checksum-s3 (scripts/test.sh starts it and exports
 * S3_CHECKSUM_ENDPOINT). Measured there: HeadObject returns FULL_OBJECT CRC32s, UploadPartCopy
 * returns the copied range's CRC32 (as a response header), and Complete verifies a FULL_OBJECT
 * CRC32 of the whole archive.
 *
 * One path cannot be produced by that server: a COMPOSITE CRC32 on a multipart object (Ceph 20
 * stores multipart CRC32s as FULL_OBJECT). Its test replays AWS's HeadObject answer shape
 * (ChecksumType COMPOSITE) over the real object, with the real per-part checksums from
 * GetObjectAttributes: it is named "(recorded HeadObject response)".
 */
import zlib from "node:zlib";
import { readFile } from "node:fs/promises";
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipS3Keys, type ZipS3EntryInfo } from "../src/index.js";
import { sourceCrc32 } from "../src/checksums.js";
import { createBucket, deleteBucket, download, listUploads, patternBytes } from "./helpers.js";

const MiB = 1024 * 1024;
const endpoint = process.env.S3_CHECKSUM_ENDPOINT;

/** A client for the checksum server, with the SDK's default checksum behaviour (CRC32 on uploads). */
function checksumClient(defaults: boolean): S3Client {
  if (!endpoint) throw new Error("S3_CHECKSUM_ENDPOINT is not set: start infra/checksum-s3 (scripts/test.sh does) and source its env");
  return new S3Client({
    endpoint,
    region: process.env.S3_CHECKSUM_REGION ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.S3_CHECKSUM_ACCESS_KEY_ID!, secretAccessKey: process.env.S3_CHECKSUM_SECRET_ACCESS_KEY! },
    ...(defaults ? {} : { requestChecksumCalculation: "WHEN_REQUIRED" as const, responseChecksumValidation: "WHEN_REQUIRED" as const }),
  });
}

let client: S3Client;
let plain: S3Client;
let src: string;
let out: string;
const data = new Map<string, Buffer>();

beforeAll(async () => {
  client = checksumClient(true);
  plain = checksumClient(false);
  src = await createBucket(client, "cksrc");
  out = await createBucket(client, "ckout");
  const put = async (c: S3Client, key: string, body: Buffer) => {
    data.set(key, body);
    await c.send(new PutObjectCommand({ Bucket: src, Key: key, Body: body, ContentLength: body.length }));
  };
  // With the SDK's defaults every object carries a FULL_OBJECT CRC32 (path 1)...
  await put(client, "with/a.bin", patternBytes(20 * MiB, 1));
  await put(client, "with/b.bin", patternBytes(30 * MiB + 5, 2));
  await put(client, "with/small.txt", Buffer.from("small\n".repeat(100)));
  // ... and without them none: S3 computes the CRC while copying (path 3).
  await put(plain, "without/c.bin", patternBytes(18 * MiB, 3));
  await put(plain, "without/d.bin", patternBytes(26 * MiB, 4));
  await put(plain, "without/small.txt", Buffer.from("tiny"));
}, 300_000);

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
  plain.destroy();
});

async function fetchArchive(key: string): Promise<Buffer> {
  const dl = await download(client, out, key);
  try {
    return await readFile(dl.path);
  } finally {
    await dl.cleanup();
  }
}

describe("copy assembly where S3 has checksums (Ceph 20)", () => {
  it("path 1: CRCs from the sources' FULL_OBJECT checksums, cross-checked with the copies; archive CRC verified by S3", async () => {
    const infos: ZipS3EntryInfo[] = [];
    const r = await zipS3Keys({ client, src: { bucket: src, prefix: "with/" }, dest: { bucket: out, key: "with.zip" }, assembly: "copy", maxCopyPartSize: 16 * MiB, onEntry: (e) => infos.push(e) });
    expect(r.assembly).toBe("copy");
    const bySource = Object.fromEntries(infos.map((i) => [i.name, i.crcSource]));
    expect(bySource).toEqual({ "a.bin": "s3-object", "b.bin": "s3-object", "small.txt": "read" });
    expect(r.crcSources).toMatchObject({ "s3-object": 2, read: 1 });
    // Zero bytes of the copied members were read: only the small one and the stolen heads.
    expect(r.bytesRead).toBeLessThanOrEqual(600 + 2 * 5 * MiB);
    const zip = await fetchArchive("with.zip");
    expect(r.checksumCRC32).toBe(Buffer.from([0, 0, 0, 0].map((_, i) => (zlib.crc32(zip) >>> (24 - 8 * i)) & 0xff)).toString("base64"));
    for (const i of infos) expect(i.crc32).toBe(zlib.crc32(data.get(`with/${i.name}`)!));
    const dl = await download(client, out, "with.zip");
    try {
      await verifyZip(dl.path, [...data].filter(([k]) => k.startsWith("with/")).map(([k, d]) => ({ name: k.slice(5), data: d })), { readers: ["unzip", "python", "7z"] });
    } finally {
      await dl.cleanup();
    }
  });

  it("path 3: CRCs computed by S3 during the copy, for sources without a checksum; no copied byte read", async () => {
    const r = await zipS3Keys({ client: plain, src: { bucket: src, prefix: "without/" }, dest: { bucket: out, key: "without.zip" }, assembly: "copy" });
    expect(r.crcSources).toMatchObject({ "s3-copy": 2, read: 1 });
    const stolen = 2 * 5 * MiB;
    expect(r.bytesRead).toBeLessThanOrEqual(stolen + 100);
    const zip = await fetchArchive("without.zip");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(zip));
    expect(r.checksumCRC32).toBe(crc.toString("base64"));
    const dl = await download(client, out, "without.zip");
    try {
      await verifyZip(dl.path, [...data].filter(([k]) => k.startsWith("without/")).map(([k, d]) => ({ name: k.slice(8), data: d })), { readers: ["unzip", "python"] });
    } finally {
      await dl.cleanup();
    }
    expect(await listUploads(client, out)).toBe(0);
  });

  it("with checksums the default copyMinSize is 5 MiB: members of 7 MiB are copied", async () => {
    await client.send(new PutObjectCommand({ Bucket: src, Key: "mid/a.bin", Body: patternBytes(7 * MiB, 21) }));
    await client.send(new PutObjectCommand({ Bucket: src, Key: "mid/b.bin", Body: patternBytes(7 * MiB, 22) }));
    // "copy" (not "auto", which waits for a 16 MiB member): the threshold is then the server's default.
    const r = await zipS3Keys({ client, src: { bucket: src, prefix: "mid/" }, dest: { bucket: out, key: "mid.zip" }, assembly: "copy" });
    expect(r.assembly).toBe("copy");
    expect(r.bytesCopied).toBeGreaterThan(0);
  });

  it("path 5: the streamed archive is also sent with its CRC-32 and verified by S3", async () => {
    const r = await zipS3Keys({ client, src: { bucket: src, prefix: "with/" }, dest: { bucket: out, key: "streamed.zip" }, assembly: "stream", partSize: 5 * MiB });
    expect(r.parts).toBeGreaterThan(1);
    const zip = await fetchArchive("streamed.zip");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(zip));
    expect(r.checksumCRC32).toBe(crc.toString("base64"));
  });

  it("path 2: a COMPOSITE multipart checksum folded from its parts (recorded HeadObject response)", async () => {
    // A real multipart object with per-part CRC32s on the server.
    const parts = [patternBytes(5 * MiB, 7), patternBytes(5 * MiB, 8), patternBytes(123_457, 9)];
    const key = "multi/object.bin";
    const up = await client.send(new CreateMultipartUploadCommand({ Bucket: src, Key: key, ChecksumAlgorithm: "CRC32" }));
    const done = [];
    for (const [i, body] of parts.entries()) {
      const p = await client.send(new UploadPartCommand({ Bucket: src, Key: key, UploadId: up.UploadId, PartNumber: i + 1, Body: body, ChecksumAlgorithm: "CRC32" }));
      done.push({ PartNumber: i + 1, ETag: p.ETag, ChecksumCRC32: p.ChecksumCRC32 });
    }
    const fin = await client.send(new CompleteMultipartUploadCommand({ Bucket: src, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: done } }));
    const whole = Buffer.concat(parts);
    // AWS answers HeadObject for such an object with ChecksumType COMPOSITE and the checksum of
    // the checksums ("...-3"); Ceph 20 says FULL_OBJECT. Replay AWS's answer shape.
    const recorded = checksumClient(true);
    recorded.middlewareStack.add(
      (next, context) => async (args) => {
        const r = await next(args);
        if (context.commandName === "HeadObjectCommand") {
          const o = r.output as { ChecksumType?: string; ChecksumCRC32?: string };
          o.ChecksumType = "COMPOSITE";
          o.ChecksumCRC32 = "AAAAAA==-3";
        }
        return r;
      },
      { step: "initialize", name: "recordedCompositeHead" },
    );
    const ac = new AbortController();
    const got = await sourceCrc32(recorded, { bucket: src, key, name: "o", size: whole.length, etag: fin.ETag ?? "" }, ac.signal);
    expect(got).toEqual({ crc: zlib.crc32(whole), source: "s3-parts" });
    recorded.destroy();
  });
});
