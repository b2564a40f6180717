/**
 * Copy assembly through the fault-injecting proxy: UploadPartCopy answered with 500 and 503
 * SlowDown or delayed, GET bodies cut, UploadPart bodies reset. Every run must end with the
 * correct archive or a typed error, and leave no incomplete upload and, on failure, no object.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { zipS3Keys } from "@zipstream/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy, countAttempts } from "../src/index.js";
import {
  createBucket,
  destroyBucket,
  download,
  expectArchive,
  listUploads,
  makeClient,
  objectDigest,
  objectExists,
  runSeed,
  s3Env,
  seedObjects,
  uniqueBucket,
  type Seeded,
} from "./helpers.js";

const RUNS = Number(process.env.RELIABILITY_COPY_FAULT_RUNS ?? 12);
const MiB = 1024 * 1024;
const env = s3Env();
const seed = runSeed();
let direct: S3Client;
let bucket: string;
let proxy: FaultProxy;
let objects: Seeded[];

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("copyfaults");
  await createBucket(direct, bucket);
  objects = await seedObjects(direct, bucket, [
    { key: "src/small-a.bin", size: 70_001, seed: 1 },
    { key: "src/big-a.bin", size: 12 * MiB + 5, seed: 2 },
    { key: "src/small-b.bin", size: 3, seed: 3 },
    { key: "src/big-b.bin", size: 21 * MiB, seed: 4 },
  ]);
  // Faults only on the requests copy assembly makes for its parts and reads.
  proxy = await FaultProxy.start({
    upstream: env.endpoint,
    seed,
    rates: { internalError: 0.12, slowDown: 0.12, delay: 0.05, resetGetBody: 0.08, resetUploadPart: 0.1 },
    operations: ["UploadPartCopy", "UploadPart", "GetObject"],
  });
});

afterAll(async () => {
  await proxy?.close();
  if (bucket) await destroyBucket(direct, bucket);
});

describe(`${RUNS} copy assemblies with faults on UploadPartCopy, UploadPart and GET (seed ${seed})`, () => {
  it("every run ends with the correct archive or a typed error, and leaves nothing behind", { timeout: 600_000 }, async () => {
    const expected = new Map(objects.map((o) => [o.key.slice(4), o]));
    let successes = 0;
    let copyFaults = 0;
    let retries = 0;
    let reference: string | undefined;
    for (let i = 0; i < RUNS; i++) {
      proxy.reset({ seed: seed + i });
      const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
      const attempts = countAttempts(client);
      const key = `out/copy-${i}.zip`;
      let ok = false;
      try {
        const r = await zipS3Keys({ client, src: { bucket, prefix: "src/" }, dest: { bucket, key }, assembly: "copy", copyMinSize: 5 * MiB, maxCopyPartSize: 10 * MiB, concurrency: 3 });
        expect(r.assembly).toBe("copy");
        expect(r.bytesCopied).toBeGreaterThan(0);
        ok = true;
      } catch (err) {
        if (!(err instanceof ZipError)) throw new Error(`run ${i} rejected with an untyped error: ${String(err)}`, { cause: err });
        console.log(`run ${i} (seed ${seed + i}) failed cleanly: ${err.code}: ${err.message}`);
      } finally {
        client.destroy();
        agent.destroy();
      }
      copyFaults += Object.values(proxy.stats.faultsByOperation?.UploadPartCopy ?? {}).reduce((a: number, b) => a + (b as number), 0);
      retries += attempts.retries;
      expect(await listUploads(direct, bucket, "out/"), `incomplete uploads after run ${i}`).toEqual([]);
      if (ok) {
        successes++;
        const digest = await objectDigest(direct, bucket, key);
        if (digest !== reference) {
          const file = await download(direct, bucket, key);
          try {
            await expectArchive(file.path, expected);
          } finally {
            await file.dispose();
          }
          reference ??= digest;
        }
        // Every successful run writes the same bytes.
        expect(digest).toBe(reference);
      } else {
        expect(await objectExists(direct, bucket, key)).toBe(false);
      }
    }
    console.log(`[reliability] copy faults: ${JSON.stringify({ runs: RUNS, successes, copyFaults, sdkRetries: retries })}`);
    expect(retries).toBeGreaterThan(0);
    if (RUNS >= 10) expect(copyFaults, "faults injected on UploadPartCopy").toBeGreaterThan(0);
    expect(successes).toBeGreaterThan(RUNS / 2);
  });
});
