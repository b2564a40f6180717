import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getTestS3, parseEnvFile, uniqueBucketName, type TestS3 } from "../src/index.js";

let s3: TestS3;

beforeAll(async () => {
  s3 = await getTestS3();
});

afterAll(async () => {
  await s3?.cleanup();
});

/** The status of a rejected SDK call, and its error name. */
async function failure(p: Promise<unknown>): Promise<{ status?: number; name?: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, name: e.name };
  }
  throw new Error("expected the request to fail");
}

describe("getTestS3", () => {
  it("is memoized per process", async () => {
    expect(await getTestS3()).toBe(s3);
    expect(s3.endpoint).toMatch(/^https?:\/\//);
  });
});

describe("bucket and object round trip", () => {
  it("creates a bucket, puts, lists, gets and deletes it", async () => {
    const bucket = await s3.newBucket("Round_Trip");
    expect(bucket).toMatch(/^round-trip-[a-z0-9]+-[0-9a-f]{10}$/);
    const objects = Array.from({ length: 20 }, (_, i) => ({
      key: `dir/${String(i).padStart(2, "0")}-é.txt`,
      body: i % 2 ? `text ${i}` : new Uint8Array([i, 0, 255]),
    }));
    await s3.putObjects(bucket, objects, 8);

    const c = s3.client();
    const listed = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "dir/" }));
    expect(listed.KeyCount).toBe(20);
    expect((await s3.getObjectBytes(bucket, "dir/03-é.txt")).toString()).toBe("text 3");
    expect([...(await s3.getObjectBytes(bucket, "dir/04-é.txt"))]).toEqual([4, 0, 255]);

    const dir = await mkdtemp(join(tmpdir(), "testkit-"));
    try {
      await s3.downloadToFile(bucket, "dir/05-é.txt", join(dir, "out"));
      expect(await readFile(join(dir, "out"), "utf8")).toBe("text 5");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    await s3.emptyAndDeleteBucket(bucket);
    expect(await failure(c.send(new HeadBucketCommand({ Bucket: bucket })))).toMatchObject({ status: 404 });
    // Deleting twice is not an error (cleanup may meet buckets a test already removed).
    await s3.emptyAndDeleteBucket(bucket);
  });

  it("putObjects stores keys with characters that need URI encoding, byte for byte", async () => {
    const bucket = await s3.newBucket("keys");
    const keys = ["sp ace+plus", "a//double/slash", "(paren)*star!'quote~tilde", "ünï/çødé/日本語.txt", "%25percent&amp=eq?q#h", "empty"];
    await s3.putObjects(
      bucket,
      keys.map((key) => ({ key, body: key === "empty" ? "" : `body of ${key}` })),
      3,
    );
    const listed = await s3.client().send(new ListObjectsV2Command({ Bucket: bucket }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([...keys].sort());
    for (const key of keys) {
      expect((await s3.getObjectBytes(bucket, key)).toString()).toBe(key === "empty" ? "" : `body of ${key}`);
    }
    const big = new Uint8Array(1 << 20).map((_, i) => i % 251);
    await s3.putObjects(bucket, [{ key: "big.bin", body: big.subarray(1) }]);
    expect((await s3.getObjectBytes(bucket, "big.bin")).equals(Buffer.from(big.subarray(1)))).toBe(true);
  });

  it("putObjects rejects with the server's error code", async () => {
    const missing = `${await s3.newBucket("gone")}`;
    await s3.emptyAndDeleteBucket(missing);
    await expect(s3.putObjects(missing, [{ key: "k", body: "x" }])).rejects.toMatchObject({ name: "NoSuchBucket" });
  });

  it("uploads a Readable body of known length (no aws-chunked encoding)", async () => {
    const bucket = await s3.newBucket("stream");
    const data = Buffer.alloc(300_000, 7);
    await s3
      .client()
      .send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "r",
          Body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
          ContentLength: data.length,
        }),
      );
    expect((await s3.getObjectBytes(bucket, "r")).equals(data)).toBe(true);
  });
});

describe("multipart uploads", () => {
  it("uploads two parts, lists the upload and aborts it", async () => {
    const bucket = await s3.newBucket("mpu");
    const c = s3.client();
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "big/a.zip" }));
    expect(UploadId).toBeTruthy();
    const part1 = Buffer.alloc(5 * 1024 * 1024, 1);
    const r1 = await c.send(
      new UploadPartCommand({ Bucket: bucket, Key: "big/a.zip", UploadId, PartNumber: 1, Body: part1 }),
    );
    const r2 = await c.send(
      new UploadPartCommand({ Bucket: bucket, Key: "big/a.zip", UploadId, PartNumber: 2, Body: "last part" }),
    );
    expect(r1.ETag).toBeTruthy();
    expect(r2.ETag).toBeTruthy();

    expect(await s3.listMultipartUploads(bucket)).toEqual([{ key: "big/a.zip", uploadId: UploadId }]);
    expect(await s3.listMultipartUploads(bucket, "big/")).toHaveLength(1);
    expect(await s3.listMultipartUploads(bucket, "other/")).toEqual([]);

    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: "big/a.zip", UploadId }));
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
    expect(await failure(c.send(new HeadObjectCommand({ Bucket: bucket, Key: "big/a.zip" })))).toMatchObject({
      status: 404,
    });
  });

  it("cleanup aborts uploads left behind", async () => {
    const bucket = await s3.newBucket("leftover");
    const c = s3.client();
    await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "x" }));
    expect(await s3.listMultipartUploads(bucket)).toHaveLength(1);
    await s3.emptyAndDeleteBucket(bucket);
    expect(await failure(c.send(new HeadBucketCommand({ Bucket: bucket })))).toMatchObject({ status: 404 });
  });
});

describe("second user", () => {
  it("is denied access to the first user's bucket", async (ctx) => {
    const second = s3.secondClient();
    if (!second) {
      ctx.skip(`the ${s3.kind} server at ${s3.endpoint} has no second user (S3_SECOND_* unset)`);
      return;
    }
    const bucket = await s3.newBucket("private");
    await s3.putObjects(bucket, [{ key: "secret.txt", body: "secret" }]);
    expect(await failure(second.send(new GetObjectCommand({ Bucket: bucket, Key: "secret.txt" })))).toEqual({
      status: 403,
      name: "AccessDenied",
    });
    expect(await failure(second.send(new ListObjectsV2Command({ Bucket: bucket })))).toEqual({
      status: 403,
      name: "AccessDenied",
    });
    expect(
      await failure(second.send(new PutObjectCommand({ Bucket: bucket, Key: "intruder", Body: "x" }))),
    ).toEqual({ status: 403, name: "AccessDenied" });
    expect((await s3.getObjectBytes(bucket, "secret.txt")).toString()).toBe("secret");
  });
});

describe("conditional ranged GET", () => {
  it("returns 206 when If-Match holds and 412 when it does not", async () => {
    const bucket = await s3.newBucket("range");
    const data = Buffer.from("0123456789abcdefghij");
    await s3.putObjects(bucket, [{ key: "obj", body: data }]);
    const c = s3.client();
    const { ETag } = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: "obj" }));
    expect(ETag).toMatch(/^"[0-9a-f]{32}"$/);

    const hit = await c.send(new GetObjectCommand({ Bucket: bucket, Key: "obj", Range: "bytes=5-9", IfMatch: ETag }));
    expect(hit.$metadata.httpStatusCode).toBe(206);
    expect(hit.ContentRange).toBe("bytes 5-9/20");
    expect(await hit.Body!.transformToString()).toBe("56789");

    expect(
      await failure(
        c.send(
          new GetObjectCommand({ Bucket: bucket, Key: "obj", Range: "bytes=5-9", IfMatch: '"0123456789abcdef0123456789abcdef"' }),
        ),
      ),
    ).toEqual({ status: 412, name: "PreconditionFailed" });
  });
});

describe("helpers", () => {
  it("makes unique, valid bucket names", () => {
    const names = new Set(Array.from({ length: 100 }, () => uniqueBucketName("A very_LONG prefix! that goes on and on and on")));
    expect(names.size).toBe(100);
    for (const n of names) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    }
    expect(uniqueBucketName("---")).toMatch(/^zs-/);
  });

  it("parses the env file start.sh writes", () => {
    expect(parseEnvFile("export S3_ENDPOINT=http://127.0.0.1:7480\nexport S3_KIND=ceph\n# comment\n")).toEqual({
      S3_ENDPOINT: "http://127.0.0.1:7480",
      S3_KIND: "ceph",
    });
  });

  it("rejects a bad concurrency", async () => {
    await expect(s3.putObjects("any", [], 0)).rejects.toThrow(TypeError);
  });
});
