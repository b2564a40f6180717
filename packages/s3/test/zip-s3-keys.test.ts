import { PassThrough, type Readable } from "node:stream";
import { PutBucketVersioningCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { verifyZip, type ExpectedEntry } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ZipError, zipS3Keys, type ZipS3EntryInfo, type ZipS3Progress } from "../src/index.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, objectExists, patternBytes, put } from "./helpers.js";

const MiB = 1024 * 1024;
const READERS = ["unzip", "7z", "python", "yauzl"] as const;
let client: S3Client;
let src: string;
let src2: string;
let out: string;
const files = new Map<string, Buffer>();

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "src");
  src2 = await createBucket(client, "src2");
  out = await createBucket(client, "out");
  const items: [string, Buffer][] = [
    ["photos/a.txt", Buffer.from("hello world\n".repeat(100))],
    ["photos/empty.bin", Buffer.alloc(0)],
    ["photos/sub/b.bin", patternBytes(300_001, 1)],
    ["photos/ünïcödé/日本語 ファイル.txt", Buffer.from("utf-8 names\n")],
    ["photos/big.bin", patternBytes(20 * MiB + 7, 2)],
    ["photos/sub/", Buffer.alloc(0)], // a console "folder" marker: left out
    ["other/c.txt", Buffer.from("not in the prefix")],
  ];
  for (const [k, v] of items) {
    files.set(k, v);
    await put(client, src, k, v);
  }
  files.set("x/y.txt", Buffer.from("from the second bucket"));
  await put(client, src2, "x/y.txt", files.get("x/y.txt")!);
});

afterAll(async () => {
  for (const b of [src, src2, out]) await deleteBucket(client, b);
  client.destroy();
});

function expected(pairs: [name: string, key: string][]): ExpectedEntry[] {
  return pairs.map(([name, key]) => ({ name, data: files.get(key)! }));
}

async function verify(key: string, exp: ExpectedEntry[], readers: readonly (typeof READERS)[number][] = READERS): Promise<void> {
  const dl = await download(client, out, key);
  try {
    await verifyZip(dl.path, exp, { readers });
  } finally {
    await dl.cleanup();
  }
}

const PHOTOS: [string, string][] = [
  ["a.txt", "photos/a.txt"],
  ["big.bin", "photos/big.bin"],
  ["empty.bin", "photos/empty.bin"],
  ["sub/b.bin", "photos/sub/b.bin"],
  ["ünïcödé/日本語 ファイル.txt", "photos/ünïcödé/日本語 ファイル.txt"],
];

describe("zipS3Keys round trips (checked by external readers)", () => {
  it("zips a prefix in store mode: names relative to the prefix, exact predicted size, multipart", async () => {
    const seen: ZipS3EntryInfo[] = [];
    let last: ZipS3Progress | undefined;
    const res = await zipS3Keys({
      client,
      src: { bucket: src, prefix: "photos/" },
      dest: { bucket: out, key: "photos.zip", tags: { job: "t" } },
      partSize: 5 * MiB,
      // The streaming pipeline itself (copy assembly has its own tests in copy.test.ts).
      assembly: "stream",
      prefetch: { objects: 3, bytes: 16 * MiB, rangeSize: 6 * MiB },
      onEntry: (e) => seen.push(e),
      onProgress: (p) => (last = p),
    });
    expect(res.entries).toBe(5);
    expect(res.predictedSize).toBe(res.size);
    expect(res.parts).toBe(Math.ceil(res.size / (5 * MiB)));
    expect(res.zip64).toBe(false);
    expect(res.skipped).toEqual([]);
    expect(res.etag).not.toBe("");
    // Listing order is lexicographic by key.
    expect(seen.map((e) => [e.name, e.key])).toEqual(PHOTOS.map(([n, k]) => [n, k]).sort((a, b) => (a[1]! < b[1]! ? -1 : 1)));
    expect(seen.every((e) => e.bucket === src && e.method === "store")).toBe(true);
    expect(last).toMatchObject({ entries: 5, entriesTotal: 5, bytesOut: res.size, bytesUploaded: res.size, partsUploaded: res.parts });
    await verify("photos.zip", expected(PHOTOS));
    expect(await listUploads(client, out)).toBe(0);
  });

  it("zips explicit keys across buckets with deflate and a name mapping", async () => {
    const res = await zipS3Keys({
      client,
      src: [
        { bucket: src, keys: ["photos/a.txt", "photos/sub/b.bin"] },
        [{ bucket: src2, key: "x/y.txt", name: "renamed/y.txt" }],
        { bucket: src, key: "photos/empty.bin" } as unknown as { bucket: string; key: string }[],
      ] as never,
      dest: { bucket: out, key: "deflate.zip" },
      method: "deflate",
      level: 9,
      name: (key) => `k/${key}`,
    });
    expect(res.entries).toBe(4);
    expect(res.predictedSize).toBeUndefined();
    expect(res.size).toBeLessThan(files.get("photos/sub/b.bin")!.length + 2000);
    await verify(
      "deflate.zip",
      expected([
        ["k/photos/a.txt", "photos/a.txt"],
        ["k/photos/sub/b.bin", "photos/sub/b.bin"],
        ["renamed/y.txt", "x/y.txt"],
        ["k/photos/empty.bin", "photos/empty.bin"],
      ]),
    );
  });

  it("reads a given object version", async () => {
    const vb = await createBucket(client, "ver");
    try {
      await client.send(new PutBucketVersioningCommand({ Bucket: vb, VersioningConfiguration: { Status: "Enabled" } }));
      const v1 = await client.send(new PutObjectCommand({ Bucket: vb, Key: "doc.txt", Body: "version one", ContentLength: 11 }));
      await put(client, vb, "doc.txt", "version two!");
      const res = await zipS3Keys({
        client,
        src: [
          { bucket: vb, key: "doc.txt", versionId: v1.VersionId, name: "v1.txt" },
          { bucket: vb, key: "doc.txt", name: "latest.txt" },
        ],
        dest: { bucket: out, key: "versions.zip" },
      });
      expect(res.predictedSize).toBe(res.size);
      await verify("versions.zip", [
        { name: "v1.txt", data: Buffer.from("version one") },
        { name: "latest.txt", data: Buffer.from("version two!") },
      ]);
    } finally {
      await deleteBucket(client, vb);
    }
  });
});

describe("zipS3Keys sources that are missing or empty", () => {
  it('onMissing "error": ERR_S3_NO_SUCH_KEY names the key, before any upload', async () => {
    const err = await zipS3Keys({
      client,
      src: { bucket: src, keys: ["photos/a.txt", "photos/nope.txt"] },
      dest: { bucket: out, key: "missing.zip" },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    expect(err).toMatchObject({ code: "ERR_S3_NO_SUCH_KEY", bucket: src, key: "photos/nope.txt" });
    expect((err as Error).message).toContain(`s3://${src}/photos/nope.txt`);
    expect(await objectExists(client, out, "missing.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
  });

  it('onMissing "skip": the archive holds the rest and result.skipped names the missing', async () => {
    const res = await zipS3Keys({
      client,
      src: { bucket: src, keys: ["photos/a.txt", "photos/nope.txt"] },
      dest: { bucket: out, key: "skipped.zip" },
      onMissing: "skip",
    });
    expect(res.skipped).toEqual([`s3://${src}/photos/nope.txt`]);
    expect(res.entries).toBe(1);
    await verify("skipped.zip", expected([["photos/a.txt", "photos/a.txt"]]), ["unzip", "python"]);
  });

  it("maps a missing bucket, an empty prefix, denied reads and a bad dest to stable codes", async () => {
    await expect(zipS3Keys({ client, src: { bucket: `${src}-nope`, prefix: "" }, dest: { bucket: out, key: "a.zip" } })).rejects.toMatchObject({
      code: "ERR_S3_NO_SUCH_BUCKET",
    });
    await expect(zipS3Keys({ client, src: { bucket: `${src}-nope`, keys: ["k"] }, dest: { bucket: out, key: "a.zip" } })).rejects.toMatchObject({
      code: "ERR_S3_NO_SUCH_BUCKET",
    });
    await expect(zipS3Keys({ client, src: { bucket: src, prefix: "nothing-here/" }, dest: { bucket: out, key: "a.zip" } })).rejects.toMatchObject({
      code: "ERR_S3_EMPTY_SOURCE",
    });
    await expect(zipS3Keys({ client, src: { bucket: src, prefix: "photos/" }, dest: { bucket: out, key: "" } })).rejects.toMatchObject({
      code: "ERR_S3_INVALID_DEST",
    });
    await expect(zipS3Keys({ client, src: { bucket: src, prefix: "photos/" }, dest: { bucket: out, key: "a.zip" }, prefetch: { objects: 0 } })).rejects.toThrow(
      /prefetch\.objects/,
    );
    const empty = await zipS3Keys({ client, src: { bucket: src, prefix: "nothing-here/" }, dest: { bucket: out, key: "empty.zip" }, allowEmpty: true });
    expect(empty).toMatchObject({ entries: 0, size: 22, parts: 1 });
    // Info-ZIP's `unzip -t` exits 1 on any empty archive ("zipfile is empty"), so it is not asked.
    await verify("empty.zip", [], ["python", "7z"]);
  });
});

/** Test-only middleware: lets a GET through but cuts its body after `after` bytes (once). */
function cutOneBody(c: S3Client, match: (input: { Key?: string; Range?: string }) => boolean, after: number, onCut?: () => Promise<void>) {
  const gets: { key?: string; range?: string; ifMatch?: string }[] = [];
  let done = false;
  c.middlewareStack.add(
    (next, context) => async (args) => {
      const r = await next(args);
      if (context.commandName !== "GetObjectCommand") return r;
      const input = args.input as { Key?: string; Range?: string; IfMatch?: string };
      gets.push({ key: input.Key, range: input.Range, ifMatch: input.IfMatch });
      if (done || !match(input)) return r;
      done = true;
      const body = (r.output as { Body: Readable }).Body;
      const cut = new PassThrough();
      let n = 0;
      body.on("data", (chunk: Buffer) => {
        if (n + chunk.length >= after) {
          cut.write(chunk.subarray(0, after - n));
          body.destroy();
          void (onCut ? onCut() : Promise.resolve()).then(() => cut.destroy(new Error("connection reset (injected)")));
          n = after;
          return;
        }
        n += chunk.length;
        cut.write(chunk);
      });
      (r.output as { Body: Readable }).Body = cut;
      return r;
    },
    { step: "initialize", name: "cutOneBody" },
  );
  return gets;
}

describe("zipS3Keys reading faults", () => {
  it("a body cut mid-way resumes from the next byte with a ranged GET pinned by If-Match", async () => {
    const c = makeClient();
    const gets = cutOneBody(c, (i) => i.Key === "photos/sub/b.bin", 100_000);
    const res = await zipS3Keys({ client: c, src: { bucket: src, keys: ["photos/a.txt", "photos/sub/b.bin"] }, dest: { bucket: out, key: "resumed.zip" } });
    c.destroy();
    const bGets = gets.filter((g) => g.key === "photos/sub/b.bin");
    expect(bGets.length).toBe(2);
    // Resumed from the first byte not yet received (the cut happened at or before byte 100,000).
    const m = /^bytes=(\d+)-300000$/.exec(bGets[1]!.range ?? "");
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThanOrEqual(100_000);
    expect(bGets[1]!.ifMatch).toMatch(/^"[0-9a-f]+"$/);
    expect(bGets[1]!.ifMatch).toBe(bGets[0]!.ifMatch);
    expect(res.predictedSize).toBe(res.size);
    await verify("resumed.zip", expected([["photos/a.txt", "photos/a.txt"], ["photos/sub/b.bin", "photos/sub/b.bin"]]));
  });

  it("an object replaced while being read fails with ERR_S3_SOURCE_CHANGED, never a mixed member", async () => {
    await put(client, src, "changing.bin", patternBytes(2 * MiB, 7));
    const c = makeClient();
    cutOneBody(c, (i) => i.Key === "changing.bin", MiB, () => put(client, src, "changing.bin", patternBytes(2 * MiB, 8)));
    const err = await zipS3Keys({ client: c, src: { bucket: src, keys: ["photos/a.txt", "changing.bin"] }, dest: { bucket: out, key: "changed.zip" } }).catch(
      (e: unknown) => e,
    );
    c.destroy();
    expect(err).toMatchObject({ code: "ERR_S3_SOURCE_CHANGED", key: "changing.bin" });
    expect(await objectExists(client, out, "changed.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
  });

  it("an abort through the signal mid-upload leaves no multipart upload and no object", async () => {
    const ac = new AbortController();
    const err = await zipS3Keys({
      client,
      src: { bucket: src, prefix: "photos/" },
      dest: { bucket: out, key: "aborted.zip" },
      partSize: 5 * MiB,
      concurrency: 1,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.partsUploaded >= 1) ac.abort(new Error("stop"));
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_ABORTED" });
    expect(await objectExists(client, out, "aborted.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
  });
});

describe("zipS3Keys prefetch", () => {
  it("reads ahead within the object budget and splits large objects into ranged GETs", async () => {
    const c = makeClient();
    let inFlight = 0;
    let maxInFlight = 0;
    const ranges: string[] = [];
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== "GetObjectCommand") return next(args);
        const input = args.input as { Key?: string; Range?: string };
        if (input.Key === "photos/big.bin") ranges.push(input.Range ?? "");
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          return await next(args);
        } finally {
          inFlight--;
        }
      },
      { step: "initialize", name: "countGets" },
    );
    const res = await zipS3Keys({
      client: c,
      src: { bucket: src, prefix: "photos/" },
      dest: { bucket: out, key: "prefetch.zip" },
      assembly: "stream",
      prefetch: { objects: 2, bytes: 13 * MiB, rangeSize: 6 * MiB },
    });
    c.destroy();
    expect(res.predictedSize).toBe(res.size);
    // The budget caps requests ahead: at most 2 objects at once, and big.bin's 6 MiB ranges only
    // two at a time within 13 MiB: a small object plus two ranges is the most ever in flight.
    expect(maxInFlight).toBeGreaterThanOrEqual(1);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    const size = files.get("photos/big.bin")!.length;
    expect(ranges).toEqual([`bytes=0-${6 * MiB - 1}`, `bytes=${6 * MiB}-${12 * MiB - 1}`, `bytes=${12 * MiB}-${18 * MiB - 1}`, `bytes=${18 * MiB}-${size - 1}`]);
    await verify("prefetch.zip", expected(PHOTOS), ["unzip", "python"]);
  });
});

describe("zipS3Keys and the caller's signal", () => {
  it("4 jobs at concurrency 8 sharing one signal: no MaxListenersExceededWarning, every archive correct", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    const ac = new AbortController();
    try {
      const results = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          zipS3Keys({
            client,
            src: { bucket: src, prefix: "photos/" },
            dest: { bucket: out, key: `shared-signal-${i}.zip` },
            partSize: 5 * MiB,
            assembly: "stream",
            concurrency: 8,
            prefetch: { objects: 8, rangeSize: 2 * MiB },
            signal: ac.signal,
          }),
        ),
      );
      for (const r of results) {
        expect(r.parts).toBe(5);
        expect(r.size).toBe(r.predictedSize);
      }
      // Warnings are emitted on a later tick.
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message)).toEqual([]);
    await verify("shared-signal-3.zip", expected(PHOTOS), ["unzip"]);
  });
});
