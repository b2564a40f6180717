import { crc32 } from "node:zlib";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { zipStream, type ZipEntry, type ZipOptions } from "@zipstream/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadStream, verifyS3Zip, zipS3Keys, type VerifyReport } from "../src/index.js";
import { createBucket, deleteBucket, makeClient, patternBytes, put } from "./helpers.js";
import { externalZip, zipBytes } from "./verify-helpers.js";

let client: S3Client;
let bucket: string;

beforeAll(async () => {
  client = makeClient();
  bucket = await createBucket(client, "verify");
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

const text = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => `line ${i} of file ${seed}\n`).join(""));

function entries(): ZipEntry[] {
  return [
    { name: "a.txt", source: text(200, 1) },
    { name: "dir/", type: "directory" },
    { name: "dir/b.bin", source: patternBytes(300_000, 2) },
    { name: "dir/ünïcode.txt", source: "héllo" },
    { name: "empty.txt", source: "" },
    { name: "streamed.bin", source: async function* () { yield patternBytes(70_000, 3); }, },
  ];
}

/** Uploads zipStream's output straight to S3 (no buffer of the whole archive). */
async function putZip(key: string, list: ZipEntry[], options: ZipOptions = {}): Promise<void> {
  await uploadStream({ client, dest: { bucket, key }, body: zipStream(list, options) });
}

function expectOk(r: VerifyReport): void {
  expect(r.problems, JSON.stringify(r.problems.slice(0, 5))).toEqual([]);
  expect(r.ok).toBe(true);
}

describe("archives written by zipstream verify as ok", () => {
  const modes: [string, ZipOptions][] = [
    ["store", { method: "store" }],
    ["deflate", { method: "deflate" }],
    ["zip64 always", { method: "deflate", zip64: "always" }],
    ["comments", { method: "store", comment: "archive comment ✓" }],
  ];
  for (const [label, opts] of modes) {
    it(`${label}: structural in 2 requests, deep recomputes every CRC`, async () => {
      const key = `modes/${label}.zip`;
      await putZip(key, entries(), opts);
      const r = await verifyS3Zip({ client, bucket, key });
      expectOk(r);
      expect(r.entries).toBe(6);
      // The last 1 MiB holds everything: one GET of the end, one of the merged local headers.
      expect(r.requests).toBeLessThanOrEqual(2);
      expect(r.checked.localHeaders).toBe(6);
      // streamed.bin has no declared size: zipstream gives its local header a Zip64 extra up front,
      // but its central header, written once the size is known, has none (docs/output-structure.md).
      // Only zip64 "always" puts unneeded Zip64 extras there, which verify reports as a warning.
      const always = opts.zip64 === "always";
      expect(r.zip64).toBe(always);
      expect(r.warnings.map((w) => w.code)).toEqual(always ? ["ZIP64_UNNEEDED"] : []);
      if (opts.comment) expect(r.comment).toBe(opts.comment);
      const d = await verifyS3Zip({ client, bucket, key, deep: true });
      expectOk(d);
      expect(d.checked.crc).toBe(6);
    });
  }

  it("AES-256: authenticated with the password, reported as not checked without", async () => {
    const key = "modes/aes.zip";
    await putZip(key, entries(), { method: "deflate", password: "s3cret" });
    const plain = await verifyS3Zip({ client, bucket, key, deep: true });
    expectOk(plain);
    expect(plain.warnings.map((w) => w.code)).toContain("AES_NOT_CHECKED");
    expect(plain.checked.aesAuthenticated).toBe(0);
    const withPw = await verifyS3Zip({ client, bucket, key, deep: true, password: "s3cret" });
    expectOk(withPw);
    // Five files are encrypted (the directory is not); each decrypted, inflated and CRC'd too.
    expect(withPw.checked.aesAuthenticated).toBe(5);
    expect(withPw.checked.crc).toBe(6);
    const wrong = await verifyS3Zip({ client, bucket, key, deep: true, password: "nope" });
    expect(wrong.ok).toBe(false);
    expect(new Set(wrong.problems.map((p) => p.code))).toEqual(new Set(["AES_PASSWORD_WRONG"]));
  });

  it("Zip64 by size: a 4 GiB + 1 MiB zero member deflated through zipStream straight to S3", async () => {
    const key = "modes/zip64-size.zip";
    const size = 4 * 1024 ** 3 + (1 << 20);
    const zeros = Buffer.alloc(4 << 20);
    async function* big() {
      for (let left = size; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
    }
    await putZip(key, [{ name: "small.txt", source: "x" }, { name: "zeros.bin", source: big, size }], { method: "deflate", level: 1 });
    const r = await verifyS3Zip({ client, bucket, key });
    expectOk(r);
    expect(r.zip64).toBe(true);
    expect(r.requests).toBeLessThanOrEqual(2);
    expect(r.warnings).toEqual([]);
    // Inflating and CRC'ing 4 GiB takes ~25 s here: the deep pass over it runs with ZS_VERIFY_FULL=1.
    if (process.env.ZS_VERIFY_FULL === "1") {
      const d = await verifyS3Zip({ client, bucket, key, deep: true });
      expectOk(d);
      expect(d.checked.crc).toBe(2);
    }
  }, 300_000);
});

describe("archives written by other tools verify as ok", () => {
  const files = { "readme.txt": text(100, 7).toString(), "data/x.bin": patternBytes(200_000, 8), "data/y.txt": text(5000, 9), "empty": "" };
  for (const tool of ["zip", "7z", "python"] as const) {
    it(`${tool}: structural and deep`, async () => {
      const key = `writers/${tool}.zip`;
      await put(client, bucket, key, await externalZip(tool, files));
      const r = await verifyS3Zip({ client, bucket, key });
      expectOk(r);
      // Info-ZIP and 7-Zip add directory entries for data/; python adds none.
      expect(r.entries).toBeGreaterThanOrEqual(4);
      const d = await verifyS3Zip({ client, bucket, key, deep: true, expect: { manifest: { entries: Object.entries(files).map(([name, b]) => ({ name, size: Buffer.byteLength(b), crc32: crc32(b) })) } } });
      expectOk(d);
      expect(d.checked.crc).toBe(r.entries);
      expect(d.checked.expected).toBe(4);
      if (tool !== "7z") expect(d.comment).toMatch(/Info-ZIP|python/);
    });
  }
});

describe("expect", () => {
  let src: string;
  beforeAll(async () => {
    src = await createBucket(client, "vsrc");
    for (let i = 0; i < 5; i++) await put(client, src, `p/f${i}.txt`, text(50 + i, i));
    await zipS3Keys({ client, src: { bucket: src, prefix: "p/" }, dest: { bucket, key: "expect/ok.zip" } });
  });
  afterAll(async () => deleteBucket(client, src));

  it("an S3 source, resolved as zipS3Keys resolves it", async () => {
    const r = await verifyS3Zip({ client, bucket, key: "expect/ok.zip", expect: { bucket: src, prefix: "p/" } });
    expectOk(r);
    expect(r.checked.expected).toBe(5);
    // A listing plus one HeadObject (ChecksumMode ENABLED) per object.
    expect(r.sourceRequests).toBe(5);
  });

  it("a missing member, an unexpected one and a wrong size are each reported", async () => {
    await put(client, src, "p/f5.txt", "new");
    await put(client, src, "p/f0.txt", "changed length");
    const r = await verifyS3Zip({ client, bucket, key: "expect/ok.zip", expect: { bucket: src, prefix: "p/" }, expectChecksums: false });
    expect(r.ok).toBe(false);
    const codes = r.problems.map((p) => `${p.code}:${p.entry}`).sort();
    expect(codes).toEqual(["EXPECTED_MISSING:f5.txt", "EXPECTED_SIZE_MISMATCH:f0.txt"]);
    const fewer = await verifyS3Zip({ client, bucket, key: "expect/ok.zip", expect: [{ bucket: src, key: "p/f1.txt", name: "f1.txt" }], expectChecksums: false });
    expect(fewer.problems.filter((p) => p.code === "UNEXPECTED_ENTRY").map((p) => p.entry).sort()).toEqual(["f0.txt", "f2.txt", "f3.txt", "f4.txt"]);
    expect(fewer.ok).toBe(false);
  });

  it("expected CRC-32 from the source's FULL_OBJECT checksum (recorded HeadObject responses: Ceph 16 keeps no checksums)", async () => {
    // The archive is read from the real gateway; only HeadObject with ChecksumMode is answered
    // with responses recorded from AWS S3's format (ChecksumCRC32 is base64 of the big-endian CRC).
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 5; i++) bodies.set(`p/f${i}.txt`, text(50 + i, i));
    const recorded = (k: string, crc: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc >>> 0);
      return { $metadata: { httpStatusCode: 200 }, ContentLength: bodies.get(k)!.length, ETag: '"x"', ChecksumCRC32: b.toString("base64"), ChecksumType: "FULL_OBJECT" };
    };
    const fake = (wrongFor?: string) =>
      new Proxy(client, {
        get(target, prop, recv) {
          if (prop !== "send") return Reflect.get(target, prop, recv);
          return async (cmd: { constructor: { name: string }; input: { Key?: string; ChecksumMode?: string; Bucket?: string } }, o: unknown) => {
            if (cmd.constructor.name === "HeadObjectCommand" && cmd.input.ChecksumMode === "ENABLED") {
              const k = cmd.input.Key!;
              return recorded(k, k === wrongFor ? 0xdeadbeef : crc32(bodies.get(k)!));
            }
            return target.send(cmd as never, o as never);
          };
        },
      }) as S3Client;
    const keys = [...bodies.keys()].map((k) => ({ bucket: src, key: k, name: k.slice(2), size: bodies.get(k)!.length, etag: '"x"' }));
    const ok = await verifyS3Zip({ client: fake(), bucket, key: "expect/ok.zip", expect: keys });
    expectOk(ok);
    expect(ok.sourceRequests).toBe(5);
    const bad = await verifyS3Zip({ client: fake("p/f3.txt"), bucket, key: "expect/ok.zip", expect: keys });
    expect(bad.problems.map((p) => `${p.code}:${p.entry}`)).toEqual(["EXPECTED_CRC_MISMATCH:f3.txt"]);
  });

  it("a CLI-style manifest, and a COMPOSITE checksum is not taken for a CRC of the bytes", async () => {
    const { crcFromChecksum } = await import("../src/verify-expect.js");
    expect(crcFromChecksum({ ChecksumCRC32: "3q2+7w==", ChecksumType: "COMPOSITE" })).toBeUndefined();
    expect(crcFromChecksum({ ChecksumCRC32: "3q2+7w==", ChecksumType: "FULL_OBJECT" })).toBe(0xdeadbeef);
    const manifest = { archive: "x", entries: [{ name: "f1.txt", size: text(51, 1).length, crc32: crc32(text(51, 1)) }] };
    const r = await verifyS3Zip({ client, bucket, key: "expect/ok.zip", expect: { manifest } });
    expect(r.problems.filter((p) => p.code !== "UNEXPECTED_ENTRY")).toEqual([]);
    await expect(verifyS3Zip({ client, bucket, key: "k", expect: { manifest: { entries: [{ name: "", size: 1 }] } } })).rejects.toThrow(/expect.manifest.entries\[0\].name/);
  });
});

describe("surfaces and guards", () => {
  it("zipS3Keys({ verify: true }) returns the structural report", async () => {
    const src = await createBucket(client, "vz");
    try {
      for (let i = 0; i < 3; i++) await put(client, src, `k${i}`, `body ${i}`);
      const r = await zipS3Keys({ client, src: { bucket: src, prefix: "" }, dest: { bucket, key: "surf/zk.zip" }, verify: true });
      expect(r.verify?.ok).toBe(true);
      expect(r.verify?.entries).toBe(3);
      expect(r.verify?.etag).toBe(r.etag);
    } finally {
      await deleteBucket(client, src);
    }
  });

  it("an object overwritten during a deep check is reported as OBJECT_CHANGED, not misread", async () => {
    const key = "surf/changing.zip";
    await putZip(key, [{ name: "a.bin", source: patternBytes(70 << 20, 1) }], { method: "store" });
    let replaced = false;
    const r = await verifyS3Zip({
      client,
      bucket,
      key,
      deep: true,
      onProgress: (p) => {
        if (!replaced && p.bytesRead > 0) {
          replaced = true;
          void client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: "replaced", ContentLength: 8 }));
        }
      },
    });
    expect(replaced).toBe(true);
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.code)).toEqual(["OBJECT_CHANGED"]);
  }, 120_000);

  it("bad options are TypeErrors naming the option; a missing key is ERR_S3_NO_SUCH_KEY", async () => {
    await expect(verifyS3Zip({ client, bucket, key: "" })).rejects.toThrow(TypeError);
    await expect(verifyS3Zip({ client, bucket, key: "k", localHeaders: "some" as never })).rejects.toThrow(/localHeaders/);
    await expect(verifyS3Zip({ client, bucket, key: "no/such.zip" })).rejects.toMatchObject({ code: "ERR_S3_NO_SUCH_KEY" });
    const ac = new AbortController();
    ac.abort();
    await expect(verifyS3Zip({ client, bucket, key: "k", signal: ac.signal })).rejects.toMatchObject({ code: "ERR_ABORTED" });
  });
});
