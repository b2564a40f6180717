/**
 * Bad or unusual sources (issue 13): declared sizes that lie, archived objects, SSE-C objects,
 * more objects than a job may hold, and the prefetcher's memory before its first GET.
 */
import { randomBytes } from "node:crypto";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { HeadObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ZipError, zipS3Keys } from "../src/index.js";
import { Prefetcher } from "../src/prefetch.js";
import type { ResolvedObject } from "../src/sources.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, objectExists, patternBytes, put, s3Endpoint } from "./helpers.js";
import { startRewriteProxy, type ProxiedResponse, type SeenRequest } from "@zipstream/testkit";

const MiB = 1024 * 1024;
const TiB = 1024 * 1024 * MiB;
let client: S3Client;
let src: string;
let out: string;
const big = patternBytes(20 * MiB, 13);
const small = Buffer.from("twelve bytes");

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "edge-src");
  out = await createBucket(client, "edge-out");
  await put(client, src, "big.bin", big);
  await put(client, src, "small.txt", small);
  for (const k of ["cold/a.txt", "cold/frozen.bin", "cold/thawed.bin", "cold/thawing.bin"]) await put(client, src, k, `contents of ${k}\n`);
  for (let i = 0; i < 5; i++) await put(client, src, `many/${i}.txt`, `object ${i}\n`);
});

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
});

async function etagOf(key: string): Promise<string> {
  return (await client.send(new HeadObjectCommand({ Bucket: src, Key: key }))).ETag!;
}

async function expectNothingLeft(key: string): Promise<void> {
  expect(await objectExists(client, out, key)).toBe(false);
  expect(await listUploads(client, out)).toBe(0);
}

describe("a declared size is checked against the object's real size", () => {
  it("a reference declaring 9 MiB of a 20 MiB object fails with ERR_SIZE_MISMATCH (ranged GETs: Content-Range total)", async () => {
    const err = await zipS3Keys({
      client,
      src: [{ bucket: src, key: "big.bin", size: 9 * MiB, etag: await etagOf("big.bin") }],
      dest: { bucket: out, key: "short.zip" },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    expect(err).toMatchObject({ code: "ERR_SIZE_MISMATCH", key: "big.bin" });
    expect((err as Error).message).toContain(`is ${20 * MiB} bytes, not the ${9 * MiB} bytes`);
    await expectNothingLeft("short.zip");
  });

  it("a reference declaring more bytes than the object has fails the same way", async () => {
    const err = await zipS3Keys({
      client,
      src: [{ bucket: src, key: "big.bin", size: 30 * MiB, etag: await etagOf("big.bin") }],
      dest: { bucket: out, key: "long.zip" },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_SIZE_MISMATCH", key: "big.bin" });
    await expectNothingLeft("long.zip");
  });

  it("copy assembly: a member copied by S3 with a wrong declared size fails with ERR_SIZE_MISMATCH too", async () => {
    const err = await zipS3Keys({
      client,
      src: [{ bucket: src, key: "big.bin", size: 18 * MiB, etag: await etagOf("big.bin") }],
      dest: { bucket: out, key: "copied-short.zip" },
      assembly: "copy",
      copyMinSize: 5 * MiB,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_SIZE_MISMATCH", key: "big.bin" });
    await expectNothingLeft("copied-short.zip");
  });

  it("a small object read whole (Content-Length) with a wrong declared size fails with ERR_SIZE_MISMATCH", async () => {
    const err = await zipS3Keys({
      client,
      src: [{ bucket: src, key: "small.txt", size: 5, etag: await etagOf("small.txt") }],
      dest: { bucket: out, key: "small.zip" },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_SIZE_MISMATCH", key: "small.txt" });
    await expectNothingLeft("small.zip");
  });
});

describe("the prefetcher makes range segments lazily", () => {
  it("four 5 TiB objects cost under 4 MiB of heap before the first GET answers (was +267 MiB)", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const objects: ResolvedObject[] = Array.from({ length: 4 }, (_, i) => ({
      bucket: src,
      key: `absent-${i}.bin`,
      name: `huge-${i}.bin`,
      size: 5 * TiB,
      etag: '"0123456789abcdef0123456789abcdef"',
    }));
    gc();
    const before = process.memoryUsage().heapUsed;
    const p = new Prefetcher(client, objects, { bytes: 64 * MiB, rangeSize: 8 * MiB });
    p.pump(); // issues the first GETs (to keys that do not exist: nothing is downloaded)
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    console.log(`prefetcher heap growth before the first GET: ${(grown / MiB).toFixed(2)} MiB`);
    expect(grown).toBeLessThan(4 * MiB);
    // Only the segments within the 64 MiB budget exist: 8 of 8 MiB, not 4 x 655,360.
    expect(p.segmentsHeld).toBe(8);
    p.close();
  });

  it("a member larger than the byte budget is still read once per range, in order", async () => {
    // 20 MiB in 3 MiB ranges with a 1-byte budget: every range is fetched by the consumer itself.
    const r = await zipS3Keys({
      client,
      src: { bucket: src, keys: ["big.bin", "small.txt"] },
      dest: { bucket: out, key: "budget.zip" },
      prefetch: { bytes: 1, objects: 1, rangeSize: 3 * MiB },
    });
    expect(r.entries).toBe(2);
    const dl = await download(client, out, "budget.zip");
    try {
      await verifyZip(dl.path, [{ name: "big.bin", data: big }, { name: "small.txt", data: small }], { readers: ["unzip", "python"] });
    } finally {
      await dl.cleanup();
    }
  });
});

describe("archived sources (AWS GLACIER responses recorded into a proxy: Ceph has no archive storage classes)", () => {
  let proxy: Awaited<ReturnType<typeof startRewriteProxy>>;
  let viaProxy: S3Client;
  const restore: Record<string, string | undefined> = {
    "cold/frozen.bin": undefined,
    "cold/thawing.bin": 'ongoing-request="true"',
    "cold/thawed.bin": 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
  };
  const archivedKey = (url: string) => Object.keys(restore).find((k) => decodeURIComponent(url.split("?")[0]!).endsWith(`/${k}`));
  // What AWS sends for objects in GLACIER: the class in the listing, x-amz-storage-class and
  // x-amz-restore on HEAD, and 403 InvalidObjectState on a GET of an unrestored one.
  const rewrite = (req: SeenRequest, res: ProxiedResponse): ProxiedResponse | undefined => {
    if (req.method === "GET" && req.url.includes("list-type=2")) {
      let xml = res.body.toString("utf8");
      xml = xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (block, inner: string) => {
        const key = /<Key>([^<]*)<\/Key>/.exec(inner)?.[1];
        if (key === undefined || !(key in restore)) return block;
        return `<Contents>${inner.replace(/<StorageClass>[^<]*<\/StorageClass>/, "").concat("<StorageClass>GLACIER</StorageClass>")}</Contents>`;
      });
      return { ...res, body: Buffer.from(xml) };
    }
    const key = archivedKey(req.url);
    if (key === undefined) return undefined;
    if (req.method === "HEAD") {
      const headers: ProxiedResponse["headers"] = { ...res.headers, "x-amz-storage-class": "GLACIER" };
      if (restore[key] !== undefined) headers["x-amz-restore"] = restore[key];
      return { ...res, headers };
    }
    if (req.method === "GET" && restore[key] === undefined) {
      const body = Buffer.from(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message><StorageClass>GLACIER</StorageClass></Error>`,
      );
      return { status: 403, headers: { "content-type": "application/xml" }, body };
    }
    return undefined;
  };
  const uploadsSeen = () => proxy.seen.filter((r) => r.method === "PUT" || r.method === "POST").length;

  beforeAll(async () => {
    proxy = await startRewriteProxy(s3Endpoint(), rewrite);
    viaProxy = makeClient({ endpoint: proxy.endpoint });
  });
  afterAll(async () => {
    viaProxy?.destroy();
    await proxy?.close();
  });

  it("a listed GLACIER object that is not restored fails with ERR_S3_ARCHIVED before any upload", async () => {
    proxy.seen.length = 0;
    const err = await zipS3Keys({ client: viaProxy, src: { bucket: src, prefix: "cold/" }, dest: { bucket: out, key: "cold.zip" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    // Both unrestored objects are HEADed at once; the first answer names its key.
    expect(err).toMatchObject({ code: "ERR_S3_ARCHIVED" });
    expect(["cold/frozen.bin", "cold/thawing.bin"]).toContain((err as S3ZipError).key);
    expect((err as Error).message).toMatch(/archived \(GLACIER\) and (not restored|its restore has not finished)/);
    expect(uploadsSeen()).toBe(0);
    await expectNothingLeft("cold.zip");
  });

  it("a restore still running is named as such", async () => {
    const err = await zipS3Keys({ client: viaProxy, src: { bucket: src, keys: ["cold/a.txt", "cold/thawing.bin"] }, dest: { bucket: out, key: "thawing.zip" } }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "ERR_S3_ARCHIVED", key: "cold/thawing.bin" });
    expect((err as Error).message).toContain("its restore has not finished");
    await expectNothingLeft("thawing.zip");
  });

  it('onArchived: "skip" leaves unrestored objects out and keeps restored ones', async () => {
    const r = await zipS3Keys({ client: viaProxy, src: { bucket: src, prefix: "cold/" }, dest: { bucket: out, key: "thawed.zip" }, onArchived: "skip" });
    expect(r.skipped.sort()).toEqual([`s3://${src}/cold/frozen.bin`, `s3://${src}/cold/thawing.bin`]);
    expect(r.entries).toBe(2);
    const dl = await download(client, out, "thawed.zip");
    try {
      await verifyZip(
        dl.path,
        ["a.txt", "thawed.bin"].map((n) => ({ name: n, data: Buffer.from(`contents of cold/${n}\n`) })),
        { readers: ["unzip", "7z", "python"] },
      );
    } finally {
      await dl.cleanup();
    }
  });

  it("a reference with size and etag (not HEADed) fails at its GET with ERR_S3_ARCHIVED, upload aborted", async () => {
    const etag = await etagOf("cold/frozen.bin");
    const err = await zipS3Keys({
      client: viaProxy,
      src: [{ bucket: src, key: "cold/a.txt" }, { bucket: src, key: "cold/frozen.bin", size: 25, etag }],
      dest: { bucket: out, key: "ref.zip" },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_S3_ARCHIVED", key: "cold/frozen.bin" });
    await expectNothingLeft("ref.zip");
  });

  it("onArchived is validated up front", async () => {
    await expect(
      zipS3Keys({ client, src: { bucket: src, prefix: "cold/" }, dest: { bucket: out, key: "x.zip" }, onArchived: "later" as "skip" }),
    ).rejects.toThrow(/onArchived must be "error" or "skip"/);
  });
});

describe("SSE-C sources (real Ceph, over HTTP: infra/local-s3 sets rgw_crypt_require_ssl = false)", () => {
  const key = randomBytes(32);
  const secret = patternBytes(3 * MiB + 11, 5);
  const note = Buffer.from("customer-key encrypted\n");

  beforeAll(async () => {
    for (const [k, body] of [["ssec/secret.bin", secret], ["ssec/note.txt", note]] as const) {
      await client.send(
        new PutObjectCommand({ Bucket: src, Key: k, Body: body, ContentLength: body.length, SSECustomerAlgorithm: "AES256", SSECustomerKey: key.toString("base64") }),
      );
    }
  });

  const expected = [
    { name: "note.txt", data: note },
    { name: "secret.bin", data: secret },
  ];

  for (const [what, source] of [
    ["a prefix (GET only)", () => ({ bucket: src, prefix: "ssec/" })],
    ["keys (HEAD and ranged GETs)", () => ({ bucket: src, keys: ["ssec/note.txt", "ssec/secret.bin"] })],
  ] as const) {
    it(`reads ${what} with sse: { customerKey } and writes a correct archive`, async () => {
      const dest = `ssec-${what.split(" ")[0]}.zip`;
      await zipS3Keys({
        client,
        src: source(),
        dest: { bucket: out, key: dest },
        name: (k) => k.slice("ssec/".length),
        sse: { customerKey: key },
        prefetch: { rangeSize: 1 * MiB },
      });
      const dl = await download(client, out, dest);
      try {
        await verifyZip(dl.path, expected, { readers: ["unzip", "7z", "python"] });
      } finally {
        await dl.cleanup();
      }
    });
  }

  it("a key given on the reference itself (base64) works too", async () => {
    const r = await zipS3Keys({
      client,
      src: [{ bucket: src, key: "ssec/note.txt", name: "note.txt", sse: { customerKey: key.toString("base64") } }],
      dest: { bucket: out, key: "ssec-ref.zip" },
    });
    expect(r.entries).toBe(1);
  });

  it('copy assembly does not apply: "copy" is refused naming SSE-C, "auto" streams', async () => {
    // A member over copyMinSize, which "auto" would otherwise copy.
    const large = patternBytes(6 * MiB, 9);
    await client.send(
      new PutObjectCommand({ Bucket: src, Key: "ssec-large/large.bin", Body: large, ContentLength: large.length, SSECustomerAlgorithm: "AES256", SSECustomerKey: key.toString("base64") }),
    );
    const opts = { client, src: { bucket: src, keys: ["ssec-large/large.bin"] }, sse: { customerKey: key } };
    const err = await zipS3Keys({ ...opts, dest: { bucket: out, key: "ssec-copy.zip" }, assembly: "copy", copyMinSize: 5 * MiB }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_S3_COPY_UNSUPPORTED" });
    expect((err as Error).message).toContain("customer key (SSE-C)");
    await expectNothingLeft("ssec-copy.zip");
    const r = await zipS3Keys({ ...opts, dest: { bucket: out, key: "ssec-auto.zip" }, copyMinSize: 5 * MiB });
    expect(r.entries).toBe(1);
    const dl = await download(client, out, "ssec-auto.zip");
    try {
      await verifyZip(dl.path, [{ name: "ssec-large/large.bin", data: large }], { readers: ["unzip", "python"] });
    } finally {
      await dl.cleanup();
    }
  });

  it("without the key, the HEAD's 400 is ERR_S3_SSE_C_KEY before any upload", async () => {
    const err = await zipS3Keys({ client, src: { bucket: src, keys: ["ssec/note.txt"] }, dest: { bucket: out, key: "ssec-nokey.zip" } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_S3_SSE_C_KEY", key: "ssec/note.txt" });
    expect((err as Error).message).toContain("give its key as sse: { customerKey }");
    await expectNothingLeft("ssec-nokey.zip");
  });

  it("a key that is not 32 bytes is a TypeError naming the option", async () => {
    await expect(
      zipS3Keys({ client, src: { bucket: src, keys: ["ssec/note.txt"] }, dest: { bucket: out, key: "x.zip" }, sse: { customerKey: randomBytes(16) } }),
    ).rejects.toThrow(/sse\.customerKey must be a 32-byte/);
  });
});

describe("limits on the number of source objects", () => {
  it("maxEntries stops the listing with ERR_S3_TOO_MANY_ENTRIES naming the limit, before any upload", async () => {
    const err = await zipS3Keys({ client, src: { bucket: src, prefix: "many/" }, dest: { bucket: out, key: "many.zip" }, maxEntries: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(S3ZipError);
    expect(err).toMatchObject({ code: "ERR_S3_TOO_MANY_ENTRIES", key: "many/3.txt" });
    expect((err as Error).message).toContain("maxEntries (3)");
    await expectNothingLeft("many.zip");
  });

  it("maxEntryMemory counts 512 bytes plus the key and name of each object", async () => {
    // Each "many/i.txt" costs 512 + 2 x (10 + 5) = 542 bytes: four fit in 2,200, five do not.
    const ok = await zipS3Keys({ client, src: { bucket: src, keys: ["many/0.txt", "many/1.txt", "many/2.txt", "many/3.txt"] }, dest: { bucket: out, key: "four.zip" }, maxEntryMemory: 2200, name: (k) => k.slice(5) });
    expect(ok.entries).toBe(4);
    const err = await zipS3Keys({ client, src: { bucket: src, prefix: "many/" }, dest: { bucket: out, key: "five.zip" }, maxEntryMemory: 2200 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_S3_TOO_MANY_ENTRIES" });
    expect((err as Error).message).toContain("maxEntryMemory (2200 bytes");
    await expectNothingLeft("five.zip");
  });

  it("a limit that is not a positive integer is a TypeError", async () => {
    await expect(zipS3Keys({ client, src: { bucket: src, prefix: "many/" }, dest: { bucket: out, key: "x.zip" }, maxEntries: 0 })).rejects.toThrow(
      /maxEntries must be an integer >= 1/,
    );
  });
});
