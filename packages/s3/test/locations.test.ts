/**
 * The public API the CLI reads S3 through (issue 15 §1): `resolveLocations` turns command-line
 * locations into objects with the package's listing, HEAD and error mapping, and `s3ZipEntries`
 * makes core entries whose bytes come from the package's pinned ranged reader.
 */
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { zipStream, type ZipEntry } from "@zipstream/core";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ZipError, resolveLocations, s3SourceFailure, s3ZipEntries, type ResolvedObject } from "../src/index.js";
import { createBucket, deleteBucket, makeClient, patternBytes, put } from "./helpers.js";

const MiB = 1024 * 1024;
let client: S3Client;
let bucket: string;
let dir: string;
const files: Record<string, Buffer> = {
  "docs/a.txt": Buffer.from("alpha\n"),
  "docs/sub/b.bin": patternBytes(3 * MiB + 5, 21),
  "docs/": Buffer.alloc(0), // a console "folder" marker: not a member
  "one.txt": Buffer.from("one\n"),
  "photos/p.jpg": patternBytes(70_000, 22),
};

beforeAll(async () => {
  client = makeClient();
  bucket = await createBucket(client, "locations");
  for (const [k, v] of Object.entries(files)) await put(client, bucket, k, v);
  dir = await mkdtemp(path.join(tmpdir(), "zs-locations-"));
});

afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<S3ZipError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(S3ZipError);
  return err as S3ZipError;
}

describe("resolveLocations", () => {
  it("lists prefixes, HEADs keys, takes a key with no object as the prefix key/, keeps the order", async () => {
    const seen: [string, string | undefined][] = [];
    const r = await resolveLocations(
      [
        { bucket, key: "docs/" },
        { bucket, key: "one.txt" },
        { bucket, key: "photos" },
      ],
      { client, name: (key, src) => (seen.push([key, src.prefix]), `n:${key}`) },
    );
    expect(r.skipped).toEqual([]);
    expect(r.objects.map((o) => [o.key, o.name, o.size])).toEqual([
      ["docs/a.txt", "n:docs/a.txt", 6],
      ["docs/sub/b.bin", "n:docs/sub/b.bin", 3 * MiB + 5],
      ["one.txt", "n:one.txt", 4],
      ["photos/p.jpg", "n:photos/p.jpg", 70_000],
    ]);
    // The name function learns the prefix an object was listed under (none for a key named directly).
    for (const pair of [["docs/a.txt", "docs/"], ["docs/sub/b.bin", "docs/"], ["one.txt", undefined], ["photos/p.jpg", "photos/"]]) {
      expect(seen).toContainEqual(pair);
    }
    for (const o of r.objects) {
      expect(o.etag).toMatch(/^"[0-9a-f-]+"$/);
      expect(o.lastModified).toBeInstanceOf(Date);
    }
    // Default names: relative to the prefix, the key itself when named directly.
    const d = await resolveLocations([{ bucket, key: "docs/" }, { bucket, key: "one.txt" }], { client });
    expect(d.objects.map((o) => o.name)).toEqual(["a.txt", "sub/b.bin", "one.txt"]);
  });

  it("a missing key, an empty prefix and a missing bucket get the one mapping's codes; skip lists the missing", async () => {
    const key = await failure(resolveLocations([{ bucket, key: "nope.txt" }], { client }));
    expect(key).toMatchObject({ code: "ERR_S3_NO_SUCH_KEY", bucket, key: "nope.txt" });
    expect(key.message).toContain("no object under nope.txt/");
    expect(await failure(resolveLocations([{ bucket, key: "empty/" }], { client }))).toMatchObject({ code: "ERR_S3_EMPTY_SOURCE" });
    for (const onMissing of ["error", "skip"] as const) {
      for (const k of ["x.txt", "x/"]) {
        const b = await failure(resolveLocations([{ bucket: `${bucket}-missing`, key: k }], { client, onMissing }));
        expect(b).toMatchObject({ code: "ERR_S3_NO_SUCH_BUCKET", bucket: `${bucket}-missing` });
      }
    }
    const s = await resolveLocations([{ bucket, key: "nope.txt" }, { bucket, key: "one.txt" }, { bucket, key: "empty/" }], { client, onMissing: "skip" });
    expect(s.objects.map((o) => o.key)).toEqual(["one.txt"]);
    expect(s.skipped).toEqual([`s3://${bucket}/nope.txt`, `s3://${bucket}/empty/`]);
  });

  it("bad options are TypeErrors naming the option", async () => {
    await expect(resolveLocations([{ bucket, key: "a" }], { client, headConcurrency: 0 })).rejects.toThrow(/headConcurrency/);
    await expect(resolveLocations([{ bucket, key: "a" }], { client, onMissing: "ignore" as "skip" })).rejects.toThrow(/onMissing/);
    await expect(resolveLocations([{ bucket: "", key: "a" }], { client })).rejects.toThrow(TypeError);
    await expect(resolveLocations([{ bucket, key: "a" }], { client: {} as S3Client })).rejects.toThrow(/client/);
    expect(() => s3ZipEntries([], { client, prefetch: { bytes: 0 } })).toThrow(/prefetch\.bytes/);
  });
});

describe("s3ZipEntries", () => {
  async function zipTo(file: string, entries: ZipEntry[]): Promise<void> {
    await pipeline(zipStream(entries, { method: "store" }), createWriteStream(file));
  }

  it("S3 members mixed with other entries, read in order with ranged GETs, nothing before their turn", async () => {
    const { objects } = await resolveLocations([{ bucket, key: "docs/" }, { bucket, key: "one.txt" }], { client });
    const s3 = s3ZipEntries(objects, { client, prefetch: { rangeSize: MiB } });
    expect(s3.bytesFetched).toBe(0);
    const file = path.join(dir, "mixed.zip");
    try {
      await zipTo(file, [{ name: "local.txt", source: "in memory\n" }, ...s3.entries]);
    } finally {
      s3.close();
    }
    expect(s3.bytesFetched).toBe(6 + 3 * MiB + 5 + 4);
    expect(s3.resumed).toBe(0);
    await verifyZip(
      file,
      [
        { name: "local.txt", data: Buffer.from("in memory\n") },
        { name: "a.txt", data: files["docs/a.txt"]! },
        { name: "sub/b.bin", data: files["docs/sub/b.bin"]! },
        { name: "one.txt", data: files["one.txt"]! },
      ],
      { readers: ["unzip", "python"] },
    );
  });

  it("an object overwritten after it was resolved fails ERR_S3_SOURCE_CHANGED; a wrong size ERR_SIZE_MISMATCH", async () => {
    await put(client, bucket, "changing.txt", "first version\n");
    const { objects } = await resolveLocations([{ bucket, key: "changing.txt" }], { client });
    await put(client, bucket, "changing.txt", "second version\n");
    const changed = s3ZipEntries(objects, { client });
    const err = await zipTo(path.join(dir, "changed.zip"), changed.entries).catch((e: unknown) => e);
    changed.close();
    expect(s3SourceFailure(err)).toMatchObject({ code: "ERR_S3_SOURCE_CHANGED", key: "changing.txt" });

    const { objects: fresh } = await resolveLocations([{ bucket, key: "one.txt" }], { client });
    const lying: ResolvedObject[] = [{ ...fresh[0]!, size: 3 }];
    const short = s3ZipEntries(lying, { client });
    const err2 = await zipTo(path.join(dir, "short.zip"), short.entries).catch((e: unknown) => e);
    short.close();
    expect(s3SourceFailure(err2)).toMatchObject({ code: "ERR_SIZE_MISMATCH", key: "one.txt" });
  });
});
