/**
 * A process SIGKILLed mid-upload necessarily leaves an incomplete multipart upload behind:
 * listIncompleteUploads finds it, abortIncompleteUploads removes it when it is older than the
 * given age and leaves it alone otherwise.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { abortIncompleteUploads, listIncompleteUploads } from "@zipstream/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../src/index.js";
import { spawnZipChild } from "./child.js";
import {
  createBucket,
  destroyBucket,
  listUploads,
  makeClient,
  objectExists,
  s3Env,
  seedObjects,
  uniqueBucket,
  waitFor,
} from "./helpers.js";

const MiB = 1024 * 1024;
const env = s3Env();
let direct: S3Client;
let bucket: string;
let proxy: FaultProxy;
let keys: string[];

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("sigkill");
  await createBucket(direct, bucket);
  const seeded = await seedObjects(direct, bucket, [
    ...Array.from({ length: 4 }, (_, i) => ({ key: `src/big-${i}.bin`, size: 6 * MiB, seed: i })),
    ...Array.from({ length: 10 }, (_, i) => ({ key: `src/small-${i}.bin`, size: 5000, seed: 100 + i })),
  ]);
  keys = seeded.map((s) => s.key);
  proxy = await FaultProxy.start({ upstream: env.endpoint, seed: 1 });
});
afterAll(async () => {
  await proxy?.close();
  if (bucket) await destroyBucket(direct, bucket);
});

describe("SIGKILL mid-upload, then incomplete-upload cleanup", () => {
  it("leaves an upload that listIncompleteUploads finds and abortIncompleteUploads removes by age", async () => {
    const dest = "out/killed.zip";
    let parts = 0;
    // Slow the parts down so the child is surely mid-upload when it is killed.
    proxy.onRequest = async (info) => {
      if (info.operation === "UploadPart") {
        parts++;
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const child = spawnZipChild({
      endpoint: proxy.endpoint,
      region: env.region,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      options: { src: { bucket, keys }, dest: { bucket, key: dest }, partSize: 5 * MiB, concurrency: 2 },
    });
    try {
      await waitFor(() => parts > 0, "the child's first UploadPart", 60_000);
      await waitFor(async () => (await listUploads(direct, bucket, "out/")).length > 0, "the upload to be listed", 30_000);
      child.child.kill("SIGKILL");
      const { signal } = await child.exit;
      expect(signal).toBe("SIGKILL");
    } finally {
      proxy.onRequest = undefined;
      if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill("SIGKILL");
    }
    expect(child.lines.some((l) => l.type === "done")).toBe(false);
    expect(await objectExists(direct, bucket, dest)).toBe(false);

    // Initiated has one-second resolution on the gateway: make sure "older than 0" is past it.
    await new Promise((r) => setTimeout(r, 1500));
    const found = await listIncompleteUploads({ client: direct, bucket, prefix: "out/" });
    expect(found.map((u) => u.key)).toEqual([dest]);
    expect(found[0].initiated).toBeInstanceOf(Date);

    // Younger than an hour: not removed.
    expect(await abortIncompleteUploads({ client: direct, bucket, prefix: "out/", olderThan: 3_600_000 })).toEqual([]);
    // A different prefix: not removed.
    expect(await abortIncompleteUploads({ client: direct, bucket, prefix: "elsewhere/", olderThan: 0 })).toEqual([]);
    // Dry run: reported, not removed.
    const dry = await abortIncompleteUploads({ client: direct, bucket, prefix: "out/", olderThan: 0, dryRun: true });
    expect(dry.map((u) => u.uploadId)).toEqual([found[0].uploadId]);
    expect(await listUploads(direct, bucket, "out/")).toHaveLength(1);

    const aborted = await abortIncompleteUploads({ client: direct, bucket, prefix: "out/", olderThan: 0 });
    expect(aborted.map((u) => u.uploadId)).toEqual([found[0].uploadId]);
    expect(await listUploads(direct, bucket, "out/")).toEqual([]);
    expect(await listIncompleteUploads({ client: direct, bucket, prefix: "out/" })).toEqual([]);
  });
});
