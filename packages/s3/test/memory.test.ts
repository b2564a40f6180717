import type { S3Client } from "@aws-sdk/client-s3";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { zipS3Keys, type S3ObjectRef } from "../src/index.js";
import { createBucket, deleteBucket, makeClient, patternBytes, putMany } from "./helpers.js";

/**
 * Memory of many small members. The documented bound is partSize x (concurrency + 1) +
 * prefetch.bytes; buffers sized by something other than the object (the range size, the byte
 * budget), or member buffers kept alive after their turn, show up as ArrayBuffer memory far above
 * it. `process.memoryUsage().arrayBuffers` also counts garbage not yet collected, and V8 starts a
 * collection for external memory only after it grows by about 64 MiB, so the margins are generous:
 * this catches buffers of the wrong size or kept per object, not a few MiB of slack.
 */
const DISTINCT = 200;
const ENTRIES = 600;
const SIZE = 16 * 1024;
const MiB = 1024 * 1024;

let client: S3Client;
let src: string;
let out: string;

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "memsrc");
  out = await createBucket(client, "memout");
  await putMany(client, src, (i) => ({ key: `s/${String(i).padStart(4, "0")}.bin`, body: patternBytes(SIZE, i + 1) }), DISTINCT, 32);
}, 600_000);

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
});

it(`keeps ArrayBuffer memory near the documented bound over ${ENTRIES} small members`, async () => {
  const etags: string[] = [];
  const page = await client.send(new ListObjectsV2Command({ Bucket: src, Prefix: "s/" }));
  for (const o of page.Contents ?? []) etags.push(o.ETag!);
  expect(etags.length).toBe(DISTINCT);
  const refs: S3ObjectRef[] = [];
  for (let n = 0; n < ENTRIES; n++) {
    const i = n % DISTINCT;
    refs.push({ bucket: src, key: `s/${String(i).padStart(4, "0")}.bin`, name: `${n}.bin`, size: SIZE, etag: etags[i]! });
  }

  const partSize = 5 * MiB;
  const concurrency = 1;
  const prefetchBytes = 1 * MiB;
  const bound = partSize * (concurrency + 1) + prefetchBytes;
  const base = process.memoryUsage();
  let peakArrayBuffers = 0;
  let peakExternal = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers - base.arrayBuffers);
    peakExternal = Math.max(peakExternal, m.external - base.external);
  };
  const timer = setInterval(sample, 5);
  let r;
  try {
    r = await zipS3Keys({
      client,
      src: refs,
      dest: { bucket: out, key: "mem.zip" },
      partSize,
      concurrency,
      prefetch: { bytes: prefetchBytes },
      onProgress: sample,
    });
  } finally {
    clearInterval(timer);
  }
  sample();
  expect(r.entries).toBe(ENTRIES);
  expect(r.size).toBe(r.predictedSize);
  console.log(`[memory] ${ENTRIES} x ${SIZE} B: peak arrayBuffers +${(peakArrayBuffers / MiB).toFixed(1)} MiB, external +${(peakExternal / MiB).toFixed(1)} MiB (bound ${(bound / MiB).toFixed(0)} MiB)`);
  // Bound + 64 MiB of garbage V8 may leave before an external-memory GC + 16 MiB of slack. One
  // 8 MiB buffer per prefetched object (16 ahead) would already be 128 MiB.
  expect(peakArrayBuffers).toBeLessThan(bound + 80 * MiB);
  expect(peakExternal).toBeLessThan(bound + 80 * MiB);
}, 600_000);
