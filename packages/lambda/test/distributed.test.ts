/**
 * The distributed handlers in-process against the real S3 server, called as a state machine
 * would: plan → every segment (shuffled) → finalize; and a segment that keeps failing → abort.
 */
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { getTestS3, type TestS3 } from "@zipstream/testkit";
import { isZipError } from "@zipstream/core";
import { readWith } from "@zipstream/interop";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContinuingHandler, createDistributedHandlers } from "../src/index.js";

const MiB = 1024 * 1024;
let s3: TestS3;
let client: S3Client;
let bucket: string;
let work: string;
const context = { awsRequestId: "t", getRemainingTimeInMillis: () => 300_000 };

beforeAll(async () => {
  s3 = await getTestS3();
  client = s3.client();
  bucket = await s3.newBucket("lambda-dist");
  await s3.putObjects(bucket, [
    { key: "in/a.txt", body: "a\n".repeat(1000) },
    { key: "in/b.bin", body: Buffer.alloc(12 * MiB + 3, 1) },
    { key: "in/c.txt", body: "c\n".repeat(3000) },
    { key: "in/d.bin", body: Buffer.alloc(12 * MiB, 2) },
  ]);
  work = await mkdtemp(join(tmpdir(), "zipstream-lambda-d-"));
});

afterAll(async () => {
  await s3?.cleanup();
  client?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
});

const keys = async (prefix: string) => ((await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

describe("distributed handlers (in-process)", () => {
  const h = () => createDistributedHandlers({ client });
  const event = (key: string) => ({
    src: { bucket, prefix: "in/" },
    dest: { bucket, key },
    options: { copyMinSize: 5 * MiB, partSize: 5 * MiB },
    plan: { bucket, key: `plans/${key}.json` },
    segment: { bytes: 8 * MiB },
  });

  it("plan → segments (shuffled) → finalize: the state carries only the plan's location and indexes", async () => {
    const planned = await h().plan(event("a.zip"), context);
    expect(planned.plan).toBe(`s3://${bucket}/plans/a.zip.json`);
    expect(planned.segments.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(planned).length).toBeLessThan(300);
    for (const segment of [...planned.segments].reverse()) {
      const r = await h().segment({ plan: planned.plan, segment }, context);
      expect(r.segment).toBe(segment);
    }
    const done = await h().finalize({ plan: planned.plan }, context);
    expect(done).toMatchObject({ bucket, key: "a.zip", entries: 4 });
    const file = join(work, "a.zip");
    await s3.downloadToFile(bucket, "a.zip", file);
    const seen = await readWith("python", file);
    expect(seen.entries.map((e) => e.name).sort()).toEqual(["a.txt", "b.bin", "c.txt", "d.bin"]);
    expect(await keys("plans/")).toEqual([]);
  });

  it("a segment that keeps failing: typed error for Catch, then abort leaves nothing", async () => {
    await s3.putObjects(bucket, [{ key: "gone/x.bin", body: Buffer.alloc(12 * MiB, 4) }, { key: "gone/y.txt", body: "y" }]);
    const planned = await h().plan({ ...event("b.zip"), src: { bucket, prefix: "gone/" } }, context);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: "gone/x.bin" }));
    for (let i = 0; i < 2; i++) {
      const err = await h().segment({ plan: planned.plan, segment: 0 }, context).catch((e: unknown) => e);
      expect(isZipError(err, "ERR_S3_NO_SUCH_KEY")).toBe(true);
      expect((err as Error).name).toBe("ERR_S3_NO_SUCH_KEY");
    }
    expect(await h().abort({ plan: planned.plan })).toMatchObject({ found: true, uploadAborted: true });
    expect(await s3.listMultipartUploads(bucket)).toEqual([]);
    expect(await keys("plans/")).toEqual([]);
    expect(await keys("b.zip")).toEqual([]);
    const bad = await h().segment({ plan: "nope" }, context).catch((e: unknown) => e);
    expect(isZipError(bad, "ERR_INVALID_EVENT")).toBe(true);
  });

  it('past its time budget the continuing handler returns { status: "continue", plan }; re-invoked, it completes', async () => {
    const run = createContinuingHandler({ client });
    // Time runs low after the first segment: plenty for the first three looks at the clock
    // (plan, the check before segment 0, its deadline), then only the safety margin is left.
    let looks = 0;
    const short = { awsRequestId: "c1", getRemainingTimeInMillis: () => (++looks <= 3 ? 300_000 : 10_001) };
    const first = await run(event("c.zip"), short);
    expect(first).toMatchObject({ status: "continue", plan: `s3://${bucket}/plans/c.zip.json` });
    expect((first as { segmentsLeft: number }).segmentsLeft).toBeGreaterThanOrEqual(1);
    expect(await keys("c.zip")).toEqual([]);
    const done = await run({ plan: (first as { plan: string }).plan }, context);
    expect(done).toMatchObject({ status: "complete", key: "c.zip", entries: 4 });
    const file = join(work, "c.zip");
    await s3.downloadToFile(bucket, "c.zip", file);
    expect((await readWith("python", file)).entries).toHaveLength(4);
    expect(await keys("plans/")).toEqual([]);
  });
});
