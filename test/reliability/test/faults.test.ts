/**
 * 50 zipS3Keys runs at a ~5 % fault rate over a mixed source set: every run must end with a
 * correct archive or a typed ZipError, never leave an incomplete upload, and a failed run must
 * leave no object at dest. Replay a failing run with RELIABILITY_SEED=<logged seed>.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { zipS3Keys } from "@zipstream/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULT_KINDS, FaultProxy, countAttempts, type FaultKind } from "../src/index.js";
import {
  createBucket,
  destroyBucket,
  download,
  expectArchive,
  externalReadersAccept,
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

const RUNS = Number(process.env.RELIABILITY_FAULT_RUNS ?? 50);
const MiB = 1024 * 1024;
/**
 * ~5 % of all requests faulted. Resets apply to one operation each, so their rates are per
 * request of that operation: GetObject (~30 per run) sees 5.5 %, UploadPart (2 per run, so a
 * higher rate for the kind to be exercised at all in 50 runs) 12.5 %, other operations 4.5 %.
 */
const RATES: Record<FaultKind, number> = {
  internalError: 0.02,
  slowDown: 0.02,
  resetGetBody: 0.01,
  resetUploadPart: 0.08,
  delay: 0.005,
};

const env = s3Env();
const seed = runSeed();
let direct: S3Client;
let bucket: string;
let proxy: FaultProxy;
let objects: Seeded[];

beforeAll(async () => {
  direct = makeClient(env).client;
  bucket = uniqueBucket("faults");
  await createBucket(direct, bucket);
  // Mixed set: empty, small, and two objects read as several 512 KiB ranged GETs; the archive
  // (~7 MiB) is bigger than one 5 MiB part, so every run is a multipart upload. Kept small so
  // that 50 runs fit the CI budget on a loaded 2-core machine.
  const specs = [
    { key: "src/empty.bin", size: 0, seed: 1 },
    ...Array.from({ length: 12 }, (_, i) => ({ key: `src/small-${i}.bin`, size: 1 + ((i * 7919) % 60_000), seed: 100 + i })),
    { key: "src/big-a.bin", size: 5 * MiB + 12_345, seed: 900 },
    { key: "src/big-b.bin", size: MiB + 333, seed: 901 },
  ];
  objects = await seedObjects(direct, bucket, specs);
  proxy = await FaultProxy.start({ upstream: env.endpoint, seed, rates: RATES });
});

afterAll(async () => {
  await proxy?.close();
  if (bucket) await destroyBucket(direct, bucket);
});

describe(`${RUNS} zipS3Keys runs at a 5 % fault rate (seed ${seed})`, () => {
  it("every run ends with a correct archive or a typed error, and leaves nothing behind", { timeout: 900_000 }, async () => {
    const expected = new Map(objects.map((o) => [o.key, o]));
    const totals = {
      runs: 0,
      successes: 0,
      cleanFailures: 0,
      failureCodes: {} as Record<string, number>,
      requests: 0,
      faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
      proxyRepeats: 0,
      sdkRetries: 0,
      externalReaders: [] as string[],
      fullChecks: 0,
      identicalToReference: 0,
    };
    const reference = new Map<string, string>();
    const t0 = Date.now();
    for (let i = 0; i < RUNS; i++) {
      const runSeedI = seed + i;
      proxy.reset({ seed: runSeedI });
      const { client, agent } = makeClient(env, { endpoint: proxy.endpoint });
      const attempts = countAttempts(client);
      const key = `out/run-${i}.zip`;
      const method = i % 5 === 4 ? "deflate" : "store";
      let outcome: "ok" | ZipError;
      try {
        const res = await zipS3Keys({
          client,
          src: { bucket, keys: objects.map((o) => o.key) },
          dest: { bucket, key },
          method,
          partSize: 5 * MiB,
          concurrency: 3,
          prefetch: { objects: 6, bytes: 4 * MiB, rangeSize: 512 * 1024 },
        });
        expect(res.entries).toBe(objects.length);
        outcome = "ok";
      } catch (err) {
        if (!(err instanceof ZipError)) {
          throw new Error(`run ${i} (proxy seed ${runSeedI}) rejected with an untyped error: ${String(err)}`, { cause: err });
        }
        expect(err.code, `run ${i} seed ${runSeedI}`).toMatch(/^ERR_[A-Z0-9_]+$/);
        outcome = err;
      } finally {
        client.destroy();
        agent.destroy();
      }
      const st = proxy.stats;
      totals.runs++;
      totals.requests += st.requests;
      for (const k of FAULT_KINDS) totals.faults[k] += st.faults[k];
      totals.proxyRepeats += st.repeats;
      totals.sdkRetries += attempts.retries;

      // Verification through the direct client only.
      expect(await listUploads(direct, bucket, "out/"), `incomplete uploads after run ${i} (seed ${runSeedI})`).toEqual([]);
      if (outcome === "ok") {
        totals.successes++;
        // The same sources give the same bytes for a given method: the first archive of each
        // method is checked member by member (Python zipfile) and by Info-ZIP and 7-Zip; later
        // ones must be byte-identical to it, else they get the full member check too.
        const digest = await objectDigest(direct, bucket, key);
        if (reference.get(method) !== digest) {
          const file = await download(direct, bucket, key);
          try {
            await expectArchive(file.path, expected);
            if (!reference.has(method)) {
              reference.set(method, digest);
              totals.externalReaders = [...new Set([...totals.externalReaders, ...(await externalReadersAccept(file.path))])];
            }
            totals.fullChecks++;
          } finally {
            await file.dispose();
          }
        } else {
          totals.identicalToReference++;
        }
      } else {
        totals.cleanFailures++;
        totals.failureCodes[outcome.code] = (totals.failureCodes[outcome.code] ?? 0) + 1;
        console.log(`run ${i} (seed ${runSeedI}) failed cleanly: ${outcome.code}: ${outcome.message}`);
        expect(await objectExists(direct, bucket, key), `object left at dest by failed run ${i}`).toBe(false);
      }
    }
    const totalFaults = Object.values(totals.faults).reduce((a, b) => a + b, 0);
    console.log(
      `[reliability] faults: ${JSON.stringify({ ...totals, totalFaults, faultRate: +(totalFaults / totals.requests).toFixed(4), seconds: (Date.now() - t0) / 1000 })}`,
    );
    expect(totals.successes + totals.cleanFailures).toBe(RUNS);
    // The schedule really injected faults, and of every kind.
    if (RUNS >= 20) for (const k of FAULT_KINDS) expect(totals.faults[k], `faults of kind ${k}`).toBeGreaterThan(0);
    expect(totals.sdkRetries).toBeGreaterThan(0);
    // At 5 % with 3 SDK attempts per request, most runs must succeed.
    expect(totals.successes).toBeGreaterThan(RUNS / 2);
  });
});
