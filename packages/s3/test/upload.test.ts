import { Readable } from "node:stream";
import { CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ZipError, abortIncompleteUploads, listIncompleteUploads, uploadStream } from "../src/index.js";
import { createBucket, deleteBucket, listUploads, makeClient, objectExists, patternBytes, secondUser, sha256 } from "./helpers.js";

const MiB = 1024 * 1024;
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  client = makeClient();
  bucket = await createBucket(client, "upload");
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

/** Chunks of awkward sizes, so parts never line up with chunks. */
async function* chunks(data: Buffer, failAt?: number): AsyncGenerator<Buffer> {
  const sizes = [1, 65_536, 100_003, 7 * MiB + 1, 4099];
  let off = 0;
  for (let i = 0; off < data.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, data.length - off);
    if (failAt !== undefined && off + n > failAt) throw new Error("source broke");
    yield data.subarray(off, off + n);
    off += n;
  }
}

async function getBytes(key: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

describe("uploadStream", () => {
  it("sends an archive that fits one part as a single PutObject with the object settings", async () => {
    const data = patternBytes(300_000, 1);
    const parts: number[] = [];
    const res = await uploadStream({
      client,
      dest: { bucket, key: "single.zip", contentDisposition: 'attachment; filename="a.zip"', metadata: { job: "t1" }, cacheControl: "no-cache" },
      body: Readable.from(chunks(data)),
      onProgress: (p) => parts.push(p.partsUploaded),
    });
    expect(res.singlePut).toBe(true);
    expect(res.parts).toBe(1);
    expect(res.size).toBe(data.length);
    expect(res.etag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(parts).toEqual([1]);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "single.zip" }));
    expect(head.ContentType).toBe("application/zip");
    expect(head.ContentDisposition).toBe('attachment; filename="a.zip"');
    expect(head.Metadata).toEqual({ job: "t1" });
    expect(head.CacheControl).toBe("no-cache");
    expect(sha256(await getBytes("single.zip"))).toBe(sha256(data));
  });

  it("an empty body is an empty object", async () => {
    const res = await uploadStream({ client, dest: { bucket, key: "empty.bin" }, body: Readable.from([]) });
    expect(res).toMatchObject({ size: 0, parts: 1, singlePut: true });
    expect((await getBytes("empty.bin")).length).toBe(0);
  });

  it("uploads a multipart object with exact part sizes, in order, and an ETag despite Ceph's empty one", async () => {
    const data = patternBytes(23 * MiB + 12_345, 2);
    const res = await uploadStream({
      client,
      dest: { bucket, key: "multi.bin", contentType: "application/octet-stream" },
      body: chunks(data),
      partSize: 5 * MiB,
      concurrency: 3,
    });
    expect(res.singlePut).toBe(false);
    expect(res.parts).toBe(5);
    expect(res.size).toBe(data.length);
    // Multipart ETags are "<md5 of part md5s>-<count>".
    expect(res.etag).toMatch(/^"[0-9a-f]{32}-5"$/);
    expect(sha256(await getBytes("multi.bin"))).toBe(sha256(data));
    expect(await listUploads(client, bucket)).toBe(0);
  });

  it("a body exactly one part long is a single PutObject; one byte more is two parts", async () => {
    const one = await uploadStream({ client, dest: { bucket, key: "exact.bin" }, body: chunks(patternBytes(5 * MiB, 3)), partSize: 5 * MiB });
    expect(one).toMatchObject({ singlePut: true, parts: 1, size: 5 * MiB });
    const two = await uploadStream({ client, dest: { bucket, key: "exact1.bin" }, body: chunks(patternBytes(5 * MiB + 1, 3)), partSize: 5 * MiB });
    expect(two).toMatchObject({ singlePut: false, parts: 2, size: 5 * MiB + 1 });
  });

  it("a body that fails mid-way aborts the upload: typed error, cause kept, nothing at dest", async () => {
    const data = patternBytes(18 * MiB, 4);
    const err = await uploadStream({ client, dest: { bucket, key: "broken.bin" }, body: chunks(data, 16 * MiB), partSize: 5 * MiB, concurrency: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    expect((err as S3ZipError).code).toBe("ERR_S3_READ");
    expect(((err as S3ZipError).cause as Error).message).toBe("source broke");
    expect(await objectExists(client, bucket, "broken.bin")).toBe(false);
    expect(await listUploads(client, bucket)).toBe(0);
  });

  it("an abort through the signal cancels in-flight parts and leaves no multipart upload", async () => {
    const ac = new AbortController();
    let produced = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      const block = patternBytes(MiB, 5);
      for (;;) {
        produced += block.length;
        if (produced === 12 * MiB) setTimeout(() => ac.abort(new Error("user cancelled")), 50);
        yield block;
      }
    }
    const err = await uploadStream({ client, dest: { bucket, key: "aborted.bin" }, body: endless(), partSize: 5 * MiB, signal: ac.signal }).catch((e: unknown) => e);
    expect((err as S3ZipError).code).toBe("ERR_ABORTED");
    expect(((err as S3ZipError).cause as Error).message).toBe("user cancelled");
    expect(await objectExists(client, bucket, "aborted.bin")).toBe(false);
    expect(await listUploads(client, bucket)).toBe(0);
  });

  it("maps a missing destination bucket, a denied write and an invalid key to stable codes", async () => {
    const missing = await uploadStream({ client, dest: { bucket: `${bucket}-nope`, key: "x.zip" }, body: chunks(patternBytes(10, 1)) }).catch((e: unknown) => e);
    expect((missing as S3ZipError).code).toBe("ERR_S3_NO_SUCH_BUCKET");
    expect((missing as S3ZipError).cause).toBeDefined();

    const other = makeClient(secondUser());
    const denied = await uploadStream({ client: other, dest: { bucket, key: "denied.bin" }, body: chunks(patternBytes(6 * MiB, 1)), partSize: 5 * MiB }).catch((e: unknown) => e);
    other.destroy();
    expect((denied as S3ZipError).code).toBe("ERR_S3_ACCESS_DENIED");
    expect(await objectExists(client, bucket, "denied.bin")).toBe(false);

    for (const key of ["", "k".repeat(1025), "é".repeat(513)]) {
      await expect(uploadStream({ client, dest: { bucket, key }, body: chunks(Buffer.alloc(1)) })).rejects.toMatchObject({ code: "ERR_S3_INVALID_DEST" });
    }
    await expect(uploadStream({ client, dest: { bucket, key: "a" }, body: chunks(Buffer.alloc(1)), concurrency: 0 })).rejects.toThrow(/concurrency/);
  });
});

describe("incomplete-upload cleanup", () => {
  it("lists and aborts incomplete uploads under a prefix older than an age", async () => {
    const ids: string[] = [];
    for (const key of ["jobs/a.zip", "jobs/b.zip", "other/c.zip"]) {
      const r = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      ids.push(r.UploadId!);
    }
    const all = await listIncompleteUploads({ client, bucket });
    expect(all.map((u) => u.key).sort()).toEqual(["jobs/a.zip", "jobs/b.zip", "other/c.zip"]);
    expect(await listIncompleteUploads({ client, bucket, prefix: "jobs/", olderThan: 3_600_000 })).toEqual([]);
    const future = new Date(Date.now() + 60_000);
    const dry = await abortIncompleteUploads({ client, bucket, prefix: "jobs/", olderThan: future, dryRun: true });
    expect(dry.length).toBe(2);
    expect(await listUploads(client, bucket)).toBe(3);
    const aborted = await abortIncompleteUploads({ client, bucket, prefix: "jobs/", olderThan: 0 });
    expect(aborted.map((u) => u.key).sort()).toEqual(["jobs/a.zip", "jobs/b.zip"]);
    expect((await listIncompleteUploads({ client, bucket })).map((u) => u.key)).toEqual(["other/c.zip"]);
    await abortIncompleteUploads({ client, bucket });
    expect(await listUploads(client, bucket)).toBe(0);
    await expect(listIncompleteUploads({ client, bucket, olderThan: -1 })).rejects.toThrow(/olderThan/);
  });
});
