import { Readable } from "node:stream";
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
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

/**
 * A client that aborts `ac` once the server has answered `command` successfully, before the
 * library sees the response: the abort lands after the server acted. Only the timing is
 * arranged here; every request is real and the server decides every outcome.
 */
function abortAfter(command: string, ac: AbortController): S3Client {
  const c = makeClient();
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      if (context.commandName === command && !ac.signal.aborted) ac.abort(new Error(`abort after ${command}`));
      return out;
    },
    { step: "initialize", name: "abortAfterResponse" },
  );
  return c;
}

/**
 * A client whose HTTP handler lets requests matching `match` reach the server and return, then
 * fires `ac` while the response is "on its way": a request sent with an abort signal then fails
 * as the SDK's handler fails an aborted request, although the server acted. This reproduces the
 * race an abort landing between the server's action and its response creates.
 */
function loseResponseToAbort(match: (method: string, query: Record<string, unknown>) => boolean, ac: AbortController): S3Client {
  const c = makeClient();
  type Handle = (req: { method: string; query: Record<string, unknown> }, opts?: { abortSignal?: AbortSignal }) => Promise<{ response: { body?: { destroy?: () => void } } }>;
  const handler = c.config.requestHandler as unknown as { handle: Handle };
  const original = handler.handle.bind(handler);
  handler.handle = async (req, opts) => {
    if (!match(req.method, req.query ?? {})) return original(req, opts);
    const res = await original(req, { ...opts, abortSignal: undefined });
    ac.abort(new Error("abort while the response is in flight"));
    if (opts?.abortSignal?.aborted) {
      res.response.body?.destroy?.();
      throw Object.assign(new Error("Request aborted"), { name: "AbortError" });
    }
    return res;
  };
  return c;
}

describe("uploadStream: an abort racing the requests that create state on the server", () => {
  let versioned: string;
  beforeAll(async () => {
    versioned = await createBucket(client, "upload-ver");
    await client.send(new PutBucketVersioningCommand({ Bucket: versioned, VersioningConfiguration: { Status: "Enabled" } }));
  });
  afterAll(async () => {
    await deleteBucket(client, versioned);
  });

  /** Versions and delete markers of `key` in the versioned bucket. */
  async function versions(key: string): Promise<{ versions: string[]; markers: number }> {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket: versioned, Prefix: key }));
    return {
      versions: (page.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId ?? ""),
      markers: (page.DeleteMarkers ?? []).filter((m) => m.Key === key).length,
    };
  }

  it("abort while the CreateMultipartUpload response is in flight: the created upload is aborted, ERR_ABORTED", async () => {
    const ac = new AbortController();
    const c = loseResponseToAbort((method, query) => method === "POST" && "uploads" in query, ac);
    try {
      const err = await uploadStream({ client: c, dest: { bucket, key: "race-create.bin" }, body: chunks(patternBytes(6 * MiB, 7)), partSize: 5 * MiB, signal: ac.signal }).catch((e: unknown) => e);
      expect(ac.signal.aborted).toBe(true);
      expect(err).toBeInstanceOf(S3ZipError);
      expect((err as S3ZipError).code).toBe("ERR_ABORTED");
      expect(((err as S3ZipError).cause as Error).message).toBe("abort while the response is in flight");
    } finally {
      c.destroy();
    }
    expect(await listUploads(client, bucket)).toBe(0);
    expect(await objectExists(client, bucket, "race-create.bin")).toBe(false);
  });

  it("abort after the single PutObject stored the object: it is deleted again (only our version) and ERR_ABORTED says so", async () => {
    const key = "race-put.zip";
    const previous = patternBytes(1000, 8);
    await client.send(new PutObjectCommand({ Bucket: versioned, Key: key, Body: previous, ContentLength: previous.length }));
    const before = await versions(key);
    expect(before.versions).toHaveLength(1);

    const ac = new AbortController();
    const c = abortAfter("PutObjectCommand", ac);
    try {
      const err = await uploadStream({ client: c, dest: { bucket: versioned, key }, body: chunks(patternBytes(300_000, 9)), signal: ac.signal }).catch((e: unknown) => e);
      expect(ac.signal.aborted).toBe(true);
      expect(err).toBeInstanceOf(S3ZipError);
      expect((err as S3ZipError).code).toBe("ERR_ABORTED");
      expect((err as S3ZipError).message).toMatch(/completed and then removed/);
      expect(((err as S3ZipError).cause as Error).message).toBe("abort after PutObjectCommand");
    } finally {
      c.destroy();
    }
    // Our version is gone without a delete marker; the previous version is current again, intact.
    expect(await versions(key)).toEqual({ versions: before.versions, markers: 0 });
    const out = await client.send(new GetObjectCommand({ Bucket: versioned, Key: key }));
    expect(sha256(Buffer.from(await out.Body!.transformToByteArray()))).toBe(sha256(previous));
  });

  it("abort after CompleteMultipartUpload succeeded: the archive is deleted again, no upload left, ERR_ABORTED", async () => {
    const key = "race-complete.zip";
    const ac = new AbortController();
    const c = abortAfter("CompleteMultipartUploadCommand", ac);
    try {
      const err = await uploadStream({ client: c, dest: { bucket: versioned, key }, body: chunks(patternBytes(6 * MiB, 10)), partSize: 5 * MiB, signal: ac.signal }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(S3ZipError);
      expect((err as S3ZipError).code).toBe("ERR_ABORTED");
      expect((err as S3ZipError).message).toMatch(/completed and then removed/);
    } finally {
      c.destroy();
    }
    expect(await versions(key)).toEqual({ versions: [], markers: 0 });
    expect(await listUploads(client, versioned)).toBe(0);
  });

  it("an abort after the upload settled has no effect", async () => {
    const ac = new AbortController();
    const res = await uploadStream({ client, dest: { bucket, key: "settled.bin" }, body: chunks(patternBytes(1000, 11)), signal: ac.signal });
    ac.abort(new Error("too late"));
    expect(res.singlePut).toBe(true);
    expect(await objectExists(client, bucket, "settled.bin")).toBe(true);
  });

  it("concurrency 8 over 13 parts with a caller's signal: no MaxListenersExceededWarning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const ac = new AbortController();
      const data = patternBytes(12 * 5 * MiB + 1, 12);
      const res = await uploadStream({ client, dest: { bucket, key: "wide.bin" }, body: chunks(data), partSize: 5 * MiB, concurrency: 8, signal: ac.signal });
      expect(res.parts).toBe(13);
      expect(sha256(await getBytes("wide.bin"))).toBe(sha256(data));
      // Warnings are emitted on a later tick.
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message)).toEqual([]);
  });
});

describe("part buffers and Readable bodies", () => {
  it("reuses acknowledged part buffers, and reads a Readable chunk by chunk: the object is still exact", async () => {
    const data = patternBytes(3 * 5 * MiB + 123, 21);
    const bodies: ArrayBufferLike[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { PartNumber?: number; Body?: Uint8Array };
        if (context.commandName === "UploadPartCommand" && input.Body) bodies.push(input.Body.buffer);
        return next(args);
      },
      { step: "initialize", name: "recordPartBodies" },
    );
    try {
      const res = await uploadStream({ client, dest: { bucket, key: "reuse.bin" }, body: Readable.from(chunks(data)), partSize: 5 * MiB, concurrency: 1 });
      expect(res.parts).toBe(4);
      expect(bodies.length).toBe(4);
      // One worker: each part is read only after the previous one was acknowledged, into its buffer.
      expect(new Set(bodies).size).toBe(1);
      expect(sha256(await getBytes("reuse.bin"))).toBe(sha256(data));
    } finally {
      client.middlewareStack.remove("recordPartBodies");
    }
  });

  it("with 4 workers and many parts, reused buffers never corrupt a part in flight", async () => {
    const data = patternBytes(20 * 5 * MiB + 777, 22);
    const res = await uploadStream({ client, dest: { bucket, key: "reuse-wide.bin" }, body: Readable.from(chunks(data)), partSize: 5 * MiB, concurrency: 4 });
    expect(res.parts).toBe(21);
    expect(sha256(await getBytes("reuse-wide.bin"))).toBe(sha256(data));
  });

  it("a Readable body that errors mid-way: ERR_S3_READ with the cause, nothing at dest", async () => {
    const data = patternBytes(12 * MiB, 23);
    const boom = new Error("disk gone");
    const body = Readable.from(
      (async function* () {
        yield* chunks(data.subarray(0, 7 * MiB));
        throw boom;
      })(),
    );
    const uploadsBefore = await listUploads(client, bucket);
    const err = await uploadStream({ client, dest: { bucket, key: "readable-broken.bin" }, body, partSize: 5 * MiB }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    expect((err as S3ZipError).code).toBe("ERR_S3_READ");
    expect((err as S3ZipError).cause).toBe(boom);
    expect(await objectExists(client, bucket, "readable-broken.bin")).toBe(false);
    expect(await listUploads(client, bucket)).toBe(uploadsBefore);
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

/** A client whose `command` requests reach the server (or not) and then fail with `error`. */
function failAfter(command: string, error: () => Error, opts: { send: boolean }): S3Client {
  const c = makeClient();
  c.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== command) return next(args);
      if (opts.send) await next(args);
      throw error();
    },
    { step: "initialize", name: "failAfter" },
  );
  return c;
}
const sdkError = (name: string, status: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe("what a failure leaves, said truthfully", () => {
  it("an AbortMultipartUpload that fails: the error names the upload left behind (leftBehind.upload)", async () => {
    // The body fails mid-way (after Create), and the abort itself is denied.
    const c = failAfter("AbortMultipartUploadCommand", () => sdkError("AccessDenied", 403), { send: false });
    try {
      const err = await uploadStream({ client: c, dest: { bucket, key: "abort-denied.bin" }, body: chunks(patternBytes(12 * MiB, 11), 9 * MiB), partSize: 5 * MiB }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(S3ZipError);
      const e = err as S3ZipError;
      expect(e.leftBehind?.upload).toMatchObject({ bucket, key: "abort-denied.bin", uploadId: expect.any(String) });
      expect(e.message).toMatch(/left behind: the incomplete multipart upload .* remains/);
      expect(await listUploads(client, bucket)).toBe(1);
      await abortIncompleteUploads({ client, bucket, prefix: "abort-denied.bin" });
    } finally {
      c.destroy();
    }
    expect(await listUploads(client, bucket)).toBe(0);
  });

  it("a completed archive whose removal is denied after an abort: ERR_ABORTED names the object left (leftBehind.object)", async () => {
    const ac = new AbortController();
    const c = makeClient();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "DeleteObjectCommand") throw sdkError("AccessDenied", 403);
        const out = await next(args);
        if (context.commandName === "CompleteMultipartUploadCommand") ac.abort(new Error("abort during Complete"));
        return out;
      },
      { step: "initialize", name: "denyDelete" },
    );
    try {
      const err = await uploadStream({ client: c, dest: { bucket, key: "kept.zip" }, body: chunks(patternBytes(6 * MiB, 12)), partSize: 5 * MiB, signal: ac.signal }).catch((e: unknown) => e);
      const e = err as S3ZipError;
      expect(e.code).toBe("ERR_ABORTED");
      expect(e.message).toMatch(/removing it failed: it remains at dest/);
      expect(e.leftBehind?.object).toMatchObject({ bucket, key: "kept.zip" });
      expect(await objectExists(client, bucket, "kept.zip")).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it("a Complete whose response was lost (retried into NoSuchUpload) succeeds when the object is ours", async () => {
    const c = failAfter("CompleteMultipartUploadCommand", () => sdkError("NoSuchUpload", 404), { send: true });
    const data = patternBytes(11 * MiB, 13);
    try {
      const r = await uploadStream({ client: c, dest: { bucket, key: "lost-complete.zip" }, body: chunks(data), partSize: 5 * MiB });
      expect(r.parts).toBe(3);
      expect(r.etag).toMatch(/-3"$/);
    } finally {
      c.destroy();
    }
    expect(sha256(await getBytes("lost-complete.zip"))).toBe(sha256(data));
  });

  it("a NoSuchUpload at Complete with someone else's object at dest is a failure, and that object stays", async () => {
    const other = patternBytes(1000, 14);
    const c = makeClient();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== "CompleteMultipartUploadCommand") return next(args);
        // Another writer's object appears, and our upload is gone.
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: "not-ours.zip", Body: other, ContentLength: other.length }));
        throw sdkError("NoSuchUpload", 404);
      },
      { step: "initialize", name: "someoneElse" },
    );
    try {
      const err = await uploadStream({ client: c, dest: { bucket, key: "not-ours.zip" }, body: chunks(patternBytes(6 * MiB, 15)), partSize: 5 * MiB }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(S3ZipError);
      expect((err as S3ZipError).code).toBe("ERR_S3_UPLOAD");
    } finally {
      c.destroy();
    }
    expect(sha256(await getBytes("not-ours.zip"))).toBe(sha256(other));
    expect(await listUploads(client, bucket)).toBe(0);
  });
});
