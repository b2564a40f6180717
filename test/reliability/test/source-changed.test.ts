/**
 * A source overwritten while zipS3Keys reads it: every GET is pinned to the ETag seen when the
 * sources were resolved, so the run fails with ERR_S3_SOURCE_CHANGED instead of writing an
 * archive mixing two versions. The overwrite is made at three points through the proxy's hooks:
 * before the first GET, between two ranged GETs, and between a mid-body reset and its resume.
 */
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { zipS3Keys } from "@zipstream/s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { FaultProxy, type ProxyRequestInfo } from "../src/index.js";
import {
  createBucket,
  destroyBucket,
  download,
  expectArchive,
  listUploads,
  makeClient,
  objectExists,
  patternBytes,
  s3Env,
  seedObjects,
  sha256,
  uniqueBucket,
  type Seeded,
} from "./helpers.js";

const MiB = 1024 * 1024;
const env = s3Env();
let direct: S3Client;
let bucket: string;
let proxy: FaultProxy;
let small: Seeded[];
const BIG = "src/changing.bin";
const BIG_SIZE = 6 * MiB + 77;

/** Key of a path-style request. */
function keyOf(info: Pick<ProxyRequestInfo, "url">): string {
  const path = decodeURIComponent(new URL(info.url, "http://x").pathname);
  return path.split("/").slice(2).join("/");
}

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("changed");
  await createBucket(direct, bucket);
  small = await seedObjects(direct, bucket, [
    { key: "src/a.txt", size: 1000, seed: 1 },
    { key: "src/b.txt", size: 70_000, seed: 2 },
  ]);
  proxy = await FaultProxy.start({ upstream: env.endpoint, seed: 1 });
});
afterAll(async () => {
  await proxy?.close();
  if (bucket) await destroyBucket(direct, bucket);
});
beforeEach(async () => {
  proxy.reset();
  proxy.onRequest = undefined;
  proxy.choose = undefined;
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: BIG, Body: patternBytes(BIG_SIZE, 7) }));
});

async function overwrite(): Promise<void> {
  await direct.send(new PutObjectCommand({ Bucket: bucket, Key: BIG, Body: patternBytes(BIG_SIZE, 8) }));
}

async function runExpectingChange(dest: string): Promise<ZipError> {
  const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
  try {
    const err = await zipS3Keys({
      client,
      src: { bucket, keys: ["src/a.txt", BIG, "src/b.txt"] },
      dest: { bucket, key: dest },
      partSize: 5 * MiB,
      prefetch: { objects: 2, bytes: 4 * MiB, rangeSize: 2 * MiB },
    }).then(
      () => {
        throw new Error("zipS3Keys resolved although its source changed");
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ZipError);
    const z = err as ZipError;
    expect(z.code).toBe("ERR_S3_SOURCE_CHANGED");
    expect(z.message).toContain(BIG);
    // Nothing written and nothing left behind.
    expect(await objectExists(direct, bucket, dest)).toBe(false);
    expect(await listUploads(direct, bucket, "out/")).toEqual([]);
    return z;
  } finally {
    client.destroy();
    agent.destroy();
  }
}

describe("source overwritten while being read (ETag pinning)", () => {
  it("before its first GET: ERR_S3_SOURCE_CHANGED, nothing written", async () => {
    let done = false;
    proxy.onRequest = async (info) => {
      if (!done && info.operation === "GetObject" && keyOf(info) === BIG) {
        done = true;
        await overwrite();
      }
    };
    await runExpectingChange("out/before.zip");
    expect(done).toBe(true);
  });

  it("between two ranged GETs: ERR_S3_SOURCE_CHANGED, nothing written", async () => {
    let ranges = 0;
    proxy.onRequest = async (info) => {
      if (info.operation === "GetObject" && keyOf(info) === BIG) {
        ranges++;
        // The first range of the object is read from the old version; the second finds a new one.
        if (String(info.headers.range ?? "").startsWith(`bytes=${2 * MiB}-`)) await overwrite();
      }
    };
    await runExpectingChange("out/between.zip");
    expect(ranges).toBeGreaterThanOrEqual(2);
  });

  it("between a mid-body reset and the resumed GET: ERR_S3_SOURCE_CHANGED, nothing written", async () => {
    let first = true;
    let resumed = false;
    proxy.choose = (info) => {
      if (first && info.operation === "GetObject" && keyOf(info) === BIG) {
        first = false;
        return "resetGetBody";
      }
      return undefined;
    };
    proxy.onRequest = async (info) => {
      // Any GET of the object after the reset (the library's resume or the next range).
      if (!first && info.fault === undefined && info.operation === "GetObject" && keyOf(info) === BIG && !resumed) {
        resumed = true;
        await overwrite();
      }
    };
    await runExpectingChange("out/resume.zip");
    expect(proxy.stats.faults.resetGetBody).toBe(1);
    expect(resumed).toBe(true);
  });

  it("control: with no overwrite the same run succeeds and the archive holds the version read", async () => {
    const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
    try {
      const res = await zipS3Keys({
        client,
        src: { bucket, keys: ["src/a.txt", BIG, "src/b.txt"] },
        dest: { bucket, key: "out/control.zip" },
        partSize: 5 * MiB,
        prefetch: { objects: 2, bytes: 4 * MiB, rangeSize: 2 * MiB },
      });
      expect(res.entries).toBe(3);
    } finally {
      client.destroy();
      agent.destroy();
    }
    const file = await download(direct, bucket, "out/control.zip");
    try {
      const big = patternBytes(BIG_SIZE, 7);
      await expectArchive(
        file.path,
        new Map<string, Seeded>([
          ...small.map((s) => [s.key, s] as const),
          [BIG, { key: BIG, size: BIG_SIZE, sha256: sha256(big) }],
        ]),
      );
    } finally {
      await file.dispose();
    }
  });
});
