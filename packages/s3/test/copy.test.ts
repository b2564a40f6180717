/**
 * Copy assembly against the real gateway (Ceph RGW 16: no flexible checksums, so every copied
 * member's CRC-32 comes from one read pass; `x-amz-copy-source-if-match` is ignored, so each
 * copied source is confirmed by HEAD). The checksum paths run in copy-checksums.test.ts against
 * a Ceph 20 gateway.
 */
import zlib from "node:zlib";
import { readFile } from "node:fs/promises";
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { zipStream, type ZipEntry } from "@zipstream/core";
import { verifyZip, type ExpectedEntry } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { zipS3Keys, type ZipS3EntryInfo, type ZipS3Options } from "../src/index.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, objectExists, patternBytes, put, putMany } from "./helpers.js";

const MiB = 1024 * 1024;
let client: S3Client;
let src: string;
let out: string;
const files = new Map<string, Buffer>();

// Sizes around S3's 5 MiB part minimum, a member needing several copy parts (the largest copy
// part is lowered to 10 MiB in these tests so that a 25 MiB object needs three, instead of a
// 5 GiB+ object), and many small objects.
const SIZES: [string, number][] = [
  ["zero.bin", 0],
  ["one-k.bin", 1024],
  ["under-5m.bin", 5 * MiB - 1],
  ["at-5m.bin", 5 * MiB],
  ["over-5m.bin", 5 * MiB + 1],
  ["twelve-m.bin", 12 * MiB],
  ["multi-copy.bin", 25 * MiB + 3],
  ["hundred-m.bin", 100 * MiB],
];

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "copysrc");
  out = await createBucket(client, "copyout");
  let seed = 1;
  for (const [k, size] of SIZES) {
    const b = patternBytes(size, seed++);
    files.set(`mixed/${k}`, b);
    await put(client, src, `mixed/${k}`, b);
  }
  const small = Array.from({ length: 60 }, (_, i) => ({ key: `mixed/small/${String(i).padStart(3, "0")}.txt`, body: Buffer.from(`small object ${i}\n`.repeat(1 + i * 37)) }));
  for (const s of small) files.set(s.key, s.body);
  await putMany(client, src, small, small.length, 16);
}, 300_000);

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
});

function expectedFor(prefix: string): ExpectedEntry[] {
  return [...files.entries()].filter(([k]) => k.startsWith(prefix)).map(([k, data]) => ({ name: k.slice(prefix.length), data }));
}

async function bytesOf(key: string): Promise<Buffer> {
  const dl = await download(client, out, key);
  try {
    return await readFile(dl.path);
  } finally {
    await dl.cleanup();
  }
}

/** The archive zipStream writes for the same members with their sizes and CRCs declared. */
async function declaredStream(prefix: string): Promise<Buffer> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: src, Prefix: prefix }));
  const entries: ZipEntry[] = (page.Contents ?? []).map((o) => {
    const data = files.get(o.Key!)!;
    return { name: o.Key!.slice(prefix.length), size: data.length, crc32: zlib.crc32(data), mtime: o.LastModified, source: () => [data] };
  });
  const chunks: Buffer[] = [];
  for await (const c of zipStream(entries, { method: "store" })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const base = (key: string, extra: Partial<ZipS3Options> = {}): ZipS3Options => ({
  client,
  src: { bucket: src, prefix: "mixed/" },
  dest: { bucket: out, key },
  maxCopyPartSize: 10 * MiB,
  ...extra,
});

describe("copy assembly on the gateway", () => {
  for (const copyMinSize of [5 * MiB, undefined]) {
    it(`mixed sizes, copyMinSize ${copyMinSize ?? "default (16 MiB)"}: byte-identical to zipStream with CRCs declared, readers agree, uploads bounded`, async () => {
      const infos: ZipS3EntryInfo[] = [];
      const copied = await zipS3Keys(base(`copy-${copyMinSize}.zip`, { assembly: "copy", copyMinSize, onEntry: (e) => infos.push(e) }));
      const streamed = await zipS3Keys(base(`stream-${copyMinSize}.zip`, { assembly: "stream" }));
      expect(copied.assembly).toBe("copy");
      expect(streamed.assembly).toBe("stream");
      const a = await bytesOf(`copy-${copyMinSize}.zip`);
      const b = await declaredStream("mixed/");
      expect(a.length).toBe(copied.size);
      expect(a.equals(b)).toBe(true);
      // Streaming does not know the CRCs up front (data descriptors): a different, equally valid layout.
      expect(streamed.size).toBeGreaterThan(copied.size);
      expect(copied.predictedSize).toBe(copied.size);

      // What S3 copied and what we sent add up to the archive, and the uploads stay within
      // small members + headers + stolen head bytes + the directory.
      const min = copyMinSize ?? 16 * MiB;
      const bigOnes = SIZES.filter(([, s]) => s >= min);
      const smallBytes = [...files.entries()].filter(([, d]) => d.length < min).reduce((n, [, d]) => n + d.length, 0);
      const overhead = [...files.keys()].length * 200 + 64 * 1024; // headers and directory, generously
      expect(copied.bytesCopied + copied.bytesUploaded).toBe(copied.size);
      // Without checksums (Ceph 16) the default threshold is 16 MiB: the 12 MiB member is uploaded.
      if (copyMinSize === undefined) expect(copied.bytesCopied).toBeLessThanOrEqual(125 * MiB + 3);
      expect(copied.bytesCopied).toBeGreaterThan(0);
      expect(copied.bytesUploaded).toBeLessThanOrEqual(smallBytes + bigOnes.length * 5 * MiB + overhead);
      // Ceph 16 has no checksums: every copied byte is read once for its CRC, never re-uploaded.
      expect(copied.crcSources.read).toBe(files.size);
      expect(copied.checksumCRC32).toBeUndefined();
      expect(copied.bytesRead).toBe([...files.values()].reduce((n, d) => n + d.length, 0));
      expect(streamed.bytesUploaded).toBe(streamed.size);

      // The manifest reports the CRC of each member, in order.
      expect(infos.map((i) => i.name)).toEqual(expectedFor("mixed/").map((e) => e.name).sort());
      for (const i of infos) expect(i.crc32).toBe(zlib.crc32(files.get(`mixed/${i.name}`)!));

      const dl = await download(client, out, `copy-${copyMinSize}.zip`);
      try {
        await verifyZip(dl.path, expectedFor("mixed/"), { readers: ["unzip", "7z", "python", "bsdtar", "java", "yauzl"] });
      } finally {
        await dl.cleanup();
      }
      expect(await listUploads(client, out)).toBe(0);
    });
  }

  it('"auto" copies when a member is large enough, and streams (saying why) when none is', async () => {
    const auto = await zipS3Keys(base("auto.zip"));
    expect(auto.assembly).toBe("copy");
    const smallOnly = await zipS3Keys(base("auto-small.zip", { src: { bucket: src, prefix: "mixed/small/" } }));
    expect(smallOnly.assembly).toBe("stream");
    expect(smallOnly.assemblyReason).toMatch(/no member is at least copyMinSize/);
    const deflated = await zipS3Keys(base("auto-deflate.zip", { src: { bucket: src, prefix: "mixed/small/" }, method: "deflate" }));
    expect(deflated.assembly).toBe("stream");
  });

  it('"copy" that cannot apply rejects with ERR_S3_COPY_UNSUPPORTED naming the reason, before anything is written', async () => {
    for (const [extra, why] of [
      [{ method: "deflate" }, /method is "deflate"/],
      [{ password: "pw" }, /password/],
      [{ equalParts: true }, /equalParts/],
      [{ src: { bucket: src, prefix: "mixed/small/" } }, /copyMinSize/],
    ] as [Partial<ZipS3Options>, RegExp][]) {
      const err = await zipS3Keys(base("unsupported.zip", { ...extra, assembly: "copy" })).catch((e) => e);
      expect(err).toMatchObject({ code: "ERR_S3_COPY_UNSUPPORTED" });
      expect(err.message).toMatch(why);
    }
    expect(await objectExists(client, out, "unsupported.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
  });

  it("a source overwritten during the assembly fails with ERR_S3_SOURCE_CHANGED and leaves nothing behind", async () => {
    const key = "race/victim.bin";
    await put(client, src, key, patternBytes(20 * MiB, 99));
    const racer = makeClient();
    // The moment S3 is asked to copy the victim, another writer replaces it.
    let replaced = false;
    const c = makeClient();
    c.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UploadPartCopyCommand" && !replaced) {
          replaced = true;
          await racer.send(new PutObjectCommand({ Bucket: src, Key: key, Body: patternBytes(20 * MiB, 100) }));
        }
        return next(args);
      },
      { step: "initialize", name: "raceOverwrite" },
    );
    const err = await zipS3Keys({ ...base("race.zip", { src: [{ bucket: src, prefix: "race/" }] }), client: c }).catch((e) => e);
    expect(replaced).toBe(true);
    expect(err).toMatchObject({ code: "ERR_S3_SOURCE_CHANGED" });
    expect(await objectExists(client, out, "race.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
    racer.destroy();
    c.destroy();
  });

  it("aborts at random points leave no upload and no object", async () => {
    for (let i = 0; i < 6; i++) {
      const ac = new AbortController();
      const delay = [5, 40, 120, 300, 700, 1500][i]!;
      const timer = setTimeout(() => ac.abort(new Error("user abort")), delay);
      const r = await zipS3Keys(base(`abort-${i}.zip`, { assembly: "copy", signal: ac.signal })).then(
        () => "completed",
        (e) => e,
      );
      clearTimeout(timer);
      if (r === "completed") {
        // The abort came after completion: the archive is whole; remove it for the next check.
        expect(await objectExists(client, out, `abort-${i}.zip`)).toBe(true);
      } else {
        expect(r).toMatchObject({ code: "ERR_ABORTED" });
        expect(await objectExists(client, out, `abort-${i}.zip`)).toBe(false);
      }
      expect(await listUploads(client, out)).toBe(0);
    }
  });

  it("dest.overwrite false keeps an existing object (ERR_S3_DEST_EXISTS), for copy and stream", async () => {
    await client.send(new PutObjectCommand({ Bucket: out, Key: "taken.zip", Body: "precious" }));
    for (const assembly of ["copy", "stream"] as const) {
      const err = await zipS3Keys(base("taken.zip", { assembly, dest: { bucket: out, key: "taken.zip", overwrite: false } })).catch((e) => e);
      expect(err).toMatchObject({ code: "ERR_S3_DEST_EXISTS" });
      expect((await bytesOf("taken.zip")).toString()).toBe("precious");
    }
    expect(await listUploads(client, out)).toBe(0);
    const fresh = await zipS3Keys(base("fresh.zip", { dest: { bucket: out, key: "fresh.zip", overwrite: false } }));
    expect(fresh.size).toBeGreaterThan(0);
  });
});
