import { ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, expect, it } from "vitest";
import { zipS3Keys, type S3ObjectRef } from "../src/index.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, patternBytes, putMany, sha256 } from "./helpers.js";

/**
 * 70,000 members from 70,000 small objects: Zip64 by entry count (over 65,535), a listing of 70
 * pages, prefetch of many small objects. On CI's gateway creating them takes about 4-5 minutes
 * and deleting them about as long. For quicker local runs, ZS_S3_MANY_DISTINCT creates fewer
 * objects and the archive names each of them ENTRIES / DISTINCT times (separate GETs, separate
 * members) through object references; ZS_S3_MANY_ENTRIES sets the member count.
 */
const DISTINCT = Number(process.env.ZS_S3_MANY_DISTINCT ?? 70_000);
const ENTRIES = Number(process.env.ZS_S3_MANY_ENTRIES ?? 70_000);
const SIZE = 1024;

let client: S3Client;
let src: string;
let out: string;

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "manysrc");
  out = await createBucket(client, "manyout");
  const t0 = performance.now();
  await putMany(client, src, (i) => ({ key: `m/${String(i).padStart(6, "0")}.bin`, body: body(i) }), DISTINCT, 64);
  const s = (performance.now() - t0) / 1000;
  console.log(`[many] created ${DISTINCT} objects of ${SIZE} B in ${s.toFixed(1)} s (${(DISTINCT / s).toFixed(0)} PUT/s at 64 at once)`);
}, 3_600_000);

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
}, 3_600_000);

function body(i: number): Buffer {
  const b = patternBytes(SIZE, i + 1);
  b.writeUInt32LE(i, 0);
  return b;
}

it(`zips ${ENTRIES} members (Zip64 by count) from a paginated listing plus object references`, async () => {
  // The listing pages through every distinct object once (ListObjectsV2, 1,000 keys a page); the
  // references name them again with the size and ETag known (no HEAD), as a manifest would.
  const etags: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: src, Prefix: "m/", ContinuationToken: token }));
    for (const o of page.Contents ?? []) etags.push(o.ETag!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  expect(etags.length).toBe(DISTINCT);
  const key = (i: number) => `m/${String(i).padStart(6, "0")}.bin`;
  const refs = function* (): Generator<S3ObjectRef> {
    for (let n = DISTINCT; n < ENTRIES; n++) {
      const i = n % DISTINCT;
      yield { bucket: src, key: key(i), name: `d${Math.floor(n / DISTINCT)}/${i}.bin`, size: SIZE, etag: etags[i]! };
    }
  };
  const t0 = performance.now();
  const res = await zipS3Keys({
    client,
    src: [{ bucket: src, prefix: "m/" }, refs()],
    dest: { bucket: out, key: "many.zip" },
    prefetch: { objects: 32 },
  });
  const s = (performance.now() - t0) / 1000;
  console.log(`[many] zipped ${res.entries} members (${(res.size / 1e6).toFixed(1)} MB) in ${s.toFixed(1)} s: ${(res.entries / s).toFixed(0)} objects/s`);
  expect(res.entries).toBe(ENTRIES);
  expect(res.predictedSize).toBe(res.size);
  expect(res.zip64).toBe(ENTRIES >= 65_535);
  expect(await listUploads(client, out)).toBe(0);

  const expected = [
    ...Array.from({ length: DISTINCT }, (_, i) => ({ name: `${String(i).padStart(6, "0")}.bin`, sha256: sha256(body(i)), size: SIZE })),
    ...Array.from(refs(), (r, n) => ({ name: r.name!, sha256: sha256(body((n + DISTINCT) % DISTINCT)), size: SIZE })),
  ];
  const dl = await download(client, out, "many.zip");
  try {
    const t1 = performance.now();
    await verifyZip(dl.path, expected, { readers: ["unzip", "python"] });
    console.log(`[many] verified by unzip and python in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  } finally {
    await dl.cleanup();
  }
}, 3_600_000);
