/**
 * Distributed archives on the real gateway (Ceph RGW 16: no checksums, so every segment learns
 * its members' CRC-32s from one read pass and writes their local headers itself). Segments run
 * in separate Node processes (test/fixtures/segment-worker.mjs), as a job runner would start
 * them. Copy parts are lowered to 10 MiB and the segment limits to a few parts so that ~45 MiB
 * of sources give several segments and members with several copy parts.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { AES_READERS, verifyZip, type ExpectedEntry } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  abortArchive,
  finalizeArchive,
  planArchive,
  planFiles,
  resumeArchive,
  runSegment,
  zipS3Keys,
  type ArchivePlan,
  type ArchivePlanOptions,
  type SegmentResult,
} from "../src/index.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, objectExists, patternBytes, put, putMany, s3Env } from "./helpers.js";

const MiB = 1024 * 1024;
const WORKER = join(import.meta.dirname, "fixtures/segment-worker.mjs");
let client: S3Client;
let src: string;
let out: string;
const files = new Map<string, Buffer>();
let reference: Buffer;

// Large members between runs of small ones: copy parts, stolen head bytes and uploaded runs.
const LARGE: [string, number][] = [
  ["d/03-six.bin", 6 * MiB + 5],
  ["d/06-twelve.bin", 12 * MiB],
  ["d/09-multi.bin", 25 * MiB + 3],
];
const copyOptions = { copyMinSize: 5 * MiB, partSize: 5 * MiB, maxCopyPartSize: 10 * MiB };
const segment = { bytes: 12 * MiB, parts: 3 };

beforeAll(async () => {
  client = makeClient();
  src = await createBucket(client, "distsrc");
  out = await createBucket(client, "distout");
  let seed = 7;
  for (const [k, size] of LARGE) files.set(k, patternBytes(size, seed++));
  for (const g of ["00", "04", "07", "10"]) {
    for (let i = 0; i < 12; i++) files.set(`d/${g}-small/${String(i).padStart(2, "0")}.txt`, Buffer.from(`line ${i} of group ${g}\n`.repeat(200 + i * 900)));
  }
  const items = [...files.entries()].map(([key, body]) => ({ key, body }));
  await putMany(client, src, items, items.length, 8);
  const ref = await zipS3Keys({ client, src: { bucket: src, prefix: "d/" }, dest: { bucket: out, key: "reference.zip" }, assembly: "copy", ...copyOptions });
  expect(ref.assembly).toBe("copy");
  reference = await bytesOf("reference.zip");
}, 300_000);

afterAll(async () => {
  for (const b of [src, out]) await deleteBucket(client, b);
  client.destroy();
});

async function bytesOf(key: string, bucket = out): Promise<Buffer> {
  const dl = await download(client, bucket, key);
  try {
    return await readFile(dl.path);
  } finally {
    await dl.cleanup();
  }
}

function expected(prefix = "d/"): ExpectedEntry[] {
  return [...files.entries()].filter(([k]) => k.startsWith(prefix)).map(([k, data]) => ({ name: k.slice(prefix.length), data }));
}

const planOptions = (key: string, extra: Partial<ArchivePlanOptions> = {}): ArchivePlanOptions => ({
  client,
  src: { bucket: src, prefix: "d/" },
  dest: { bucket: out, key },
  ...copyOptions,
  segment,
  ...extra,
});

/** Runs segments as separate processes, all at once; resolves with each one's exit. */
function workers(plan: ArchivePlan, indexes: number[], env: Record<string, string> = {}): Promise<{ segment: number; code: number | null; signal: string | null; stdout: string; stderr: string }[]> {
  const ref = `s3://${plan.location.bucket}/${plan.location.key}`;
  return Promise.all(
    indexes.map(
      (i) =>
        new Promise<{ segment: number; code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [WORKER, ref, String(i)], { env: { ...process.env, ...s3Env(), ...env } });
          let stdout = "";
          let stderr = "";
          child.stdout.on("data", (d) => (stdout += d));
          child.stderr.on("data", (d) => (stderr += d));
          child.on("exit", (code, signal) => resolve({ segment: i, code, signal, stdout, stderr }));
        }),
    ),
  );
}

function shuffled(n: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  // Never the identity order: the point is that order does not matter.
  if (a.every((v, i) => v === i)) a.reverse();
  return a;
}

async function planKeys(plan: ArchivePlan): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: plan.location.bucket, Prefix: plan.location.key }));
  return (page.Contents ?? []).map((o) => o.Key!);
}

async function readResult(plan: ArchivePlan, i: number): Promise<SegmentResult | undefined> {
  try {
    const o = await client.send(new GetObjectCommand({ Bucket: plan.location.bucket, Key: planFiles.result(plan.location, i) }));
    return JSON.parse(await o.Body!.transformToString()) as SegmentResult;
  } catch {
    return undefined;
  }
}

describe("distributed archive (copy mode) on the gateway", () => {
  it("segments in separate processes, concurrently and shuffled, then finalize: byte-identical to zipS3Keys's copy assembly, readers agree, nothing left", async () => {
    const plan = await planArchive(planOptions("dist.zip"));
    expect(plan.mode).toBe("copy");
    expect(plan.segments).toBeGreaterThanOrEqual(3); // one per run of small members and the large member after it
    expect(plan.size).toBe(reference.length);
    expect(plan.checksums).toBe(false); // Ceph 16
    // The manifest does not grow with the members: segments are read by index.
    const manifest = await client.send(new GetObjectCommand({ Bucket: out, Key: "dist.zip.plan.json" }));
    expect(Number(manifest.ContentLength)).toBeLessThan(2048);

    const order = shuffled(plan.segments);
    const runs = await workers(plan, order);
    for (const r of runs) expect(r.code, `segment ${r.segment}: ${r.stderr}`).toBe(0);
    const stats = runs.map((r) => JSON.parse(r.stdout) as { members: number; bytesRead: number; bytesCopied: number });
    // Every member's CRC came from a read pass of its own segment; S3 copied the large ones.
    expect(stats.reduce((n, s) => n + s.members, 0)).toBeLessThanOrEqual(files.size);
    expect(stats.reduce((n, s) => n + s.bytesCopied, 0)).toBe(plan.bytesCopied);

    const res = await finalizeArchive({ client, plan: `s3://${out}/dist.zip.plan.json` });
    expect(res.size).toBe(reference.length);
    expect(res.entries).toBe(files.size);
    const bytes = await bytesOf("dist.zip");
    expect(bytes.equals(reference)).toBe(true);
    const dl = await download(client, out, "dist.zip");
    try {
      await verifyZip(dl.path, expected(), { readers: ["unzip", "7z", "python", "bsdtar", "java", "yauzl"] });
    } finally {
      await dl.cleanup();
    }
    expect(await listUploads(client, out)).toBe(0);
    expect(await planKeys(plan)).toEqual([]);
  });

  it("a segment killed mid-way (SIGKILL after its first part) and rerun gives the same archive", async () => {
    const plan = await planArchive(planOptions("killed.zip"));
    const [killed] = await workers(plan, [1], { ZS_KILL_AFTER_PARTS: "1" });
    expect(killed!.signal).toBe("SIGKILL");
    expect(await readResult(plan, 1)).toBeUndefined();
    await expect(finalizeArchive({ client, plan })).rejects.toMatchObject({ code: "ERR_S3_PLAN_INCOMPLETE", message: expect.stringMatching(/segments 0, 1, 2/) });
    const runs = await workers(plan, shuffled(plan.segments));
    for (const r of runs) expect(r.code, `segment ${r.segment}: ${r.stderr}`).toBe(0);
    await finalizeArchive({ client, plan });
    expect((await bytesOf("killed.zip")).equals(reference)).toBe(true);
    expect(await listUploads(client, out)).toBe(0);
  });

  it("a segment that keeps failing leads to abort: no upload, no object, no plan file left; a second abort does nothing", async () => {
    // Two copied members with a small one between: segments [a's parts] and [b, c's parts].
    await put(client, src, "fail/a.bin", patternBytes(12 * MiB, 99));
    await put(client, src, "fail/b.txt", "small\n");
    await put(client, src, "fail/c.bin", patternBytes(12 * MiB, 98));
    const plan = await planArchive({ ...planOptions("failing.zip"), src: { bucket: src, prefix: "fail/" }, segment: { bytes: 13 * MiB, parts: 2 } });
    expect(plan.segments).toBeGreaterThanOrEqual(2);
    await client.send(new DeleteObjectCommand({ Bucket: src, Key: "fail/c.bin" }));
    const failing = plan.segments - 1;
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(runSegment({ client, plan, segment: failing })).rejects.toMatchObject({
        code: "ERR_S3_NO_SUCH_KEY",
        message: expect.stringMatching(/kept for a rerun: the multipart upload .* and the plan/),
      });
    }
    expect(await readResult(plan, failing)).toBeUndefined();
    const aborted = await abortArchive({ client, plan: `s3://${out}/failing.zip.plan.json` });
    expect(aborted).toMatchObject({ found: true, uploadAborted: true });
    expect(aborted.filesRemoved).toBe(plan.segments + 2); // the segments, the final one, the manifest
    expect(await listUploads(client, out)).toBe(0);
    expect(await objectExists(client, out, "failing.zip")).toBe(false);
    expect(await planKeys(plan)).toEqual([]);
    expect(await abortArchive({ client, plan: `s3://${out}/failing.zip.plan.json` })).toEqual({ found: false, uploadAborted: false, filesRemoved: 0 });
    await expect(runSegment({ client, plan: `s3://${out}/failing.zip.plan.json`, segment: 0 })).rejects.toMatchObject({ code: "ERR_S3_PLAN" });
  });

  it("resumeArchive after half the segments runs only the others, and the archive is the same", async () => {
    const plan = await planArchive(planOptions("resumed.zip"));
    const half = Math.floor(plan.segments / 2);
    for (let i = 0; i < half; i++) await runSegment({ client, plan, segment: i });
    const res = await resumeArchive({ client, plan: `s3://${out}/resumed.zip.plan.json`, segmentsAtOnce: 2 });
    expect(res.segmentsRun).toEqual(Array.from({ length: plan.segments - half }, (_, i) => half + i));
    expect((await bytesOf("resumed.zip")).equals(reference)).toBe(true);
    expect(await listUploads(client, out)).toBe(0);
  });

  it("the source options zipS3Keys takes apply to a plan too: maxEntries stops the listing, an SSE-C key is refused; nothing written", async () => {
    await expect(planArchive(planOptions("capped.zip", { maxEntries: 1 }))).rejects.toMatchObject({ code: "ERR_S3_TOO_MANY_ENTRIES" });
    await expect(planArchive(planOptions("ssec.zip", { sse: { customerKey: Buffer.alloc(32, 7) } }))).rejects.toMatchObject({ code: "ERR_S3_COPY_UNSUPPORTED" });
    expect(await listUploads(client, out)).toBe(0);
    expect(await objectExists(client, out, "capped.zip.plan.json")).toBe(false);
    expect(await objectExists(client, out, "ssec.zip.plan.json")).toBe(false);
  });

  it("bad input: a segment index out of range, a plan that is not one", async () => {
    const plan = await planArchive(planOptions("bad.zip"));
    await expect(runSegment({ client, plan, segment: plan.segments })).rejects.toThrow(TypeError);
    await expect(runSegment({ client, plan: "not-a-url", segment: 0 })).rejects.toThrow(/s3:\/\/bucket\/key/);
    await put(client, out, "junk.json", "{not json");
    await expect(finalizeArchive({ client, plan: `s3://${out}/junk.json` })).rejects.toMatchObject({ code: "ERR_S3_PLAN" });
    await abortArchive({ client, plan });
    expect(await listUploads(client, out)).toBe(0);
  });
});

describe("distributed archive (compress mode): deflate and AES across segments", () => {
  it("deflate: segments whose compressed records end in small tails (< 5 MiB) and large ones, stitched; readers agree", async () => {
    const plan = await planArchive(planOptions("deflate.zip", { method: "deflate", segment: { bytes: 3 * MiB, members: 10 } }));
    expect(plan.mode).toBe("compress");
    expect(plan.uploadId).toBeUndefined();
    const runs = await workers(plan, shuffled(plan.segments));
    for (const r of runs) expect(r.code, `segment ${r.segment}: ${r.stderr}`).toBe(0);
    const results = await Promise.all(Array.from({ length: plan.segments }, (_, i) => readResult(plan, i)));
    const lengths = results.map((r) => r!.data!.recordsLength);
    // Both kinds of segment output: small tails the finalizer merges, and runs S3 copies.
    expect(lengths.filter((l) => l < 5 * MiB).length).toBeGreaterThanOrEqual(3);
    expect(lengths.filter((l) => l >= 10 * MiB).length).toBeGreaterThanOrEqual(1);
    for (const [i, r] of results.entries()) expect(r!.crcs.length).toBeGreaterThan(0), expect(r!.index).toBe(i);
    const res = await finalizeArchive({ client, plan });
    const bytes = await bytesOf("deflate.zip");
    expect(bytes.length).toBe(res.size);
    // The text compressed: the archive is smaller than its members.
    expect(res.size).toBeLessThan([...files.values()].reduce((n, d) => n + d.length, 0));
    const dl = await download(client, out, "deflate.zip");
    try {
      await verifyZip(dl.path, expected(), { readers: ["unzip", "7z", "python", "bsdtar", "java", "yauzl"] });
    } finally {
      await dl.cleanup();
    }
    expect(await listUploads(client, out)).toBe(0);
    expect(await planKeys(plan)).toEqual([]); // temporary objects included
  });

  it("a source replaced after planning fails its segment with ERR_S3_SOURCE_CHANGED (not a retryable upload error); plan kept", async () => {
    await put(client, src, "chg/a.txt", "first version\n".repeat(100));
    const plan = await planArchive(planOptions("changed.zip", { src: { bucket: src, prefix: "chg/" }, method: "deflate" }));
    await put(client, src, "chg/a.txt", "second version\n".repeat(100));
    const err = await runSegment({ client, plan, segment: 0 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ERR_S3_SOURCE_CHANGED", message: expect.stringMatching(/kept for a rerun: the plan/) });
    await abortArchive({ client, plan });
    expect(await planKeys(plan)).toEqual([]);
  });

  it("AES-256: the password goes to each worker (never into the plan); readers decrypt", async () => {
    const password = "distributed secret";
    const plan = await planArchive(planOptions("aes.zip", { src: { bucket: src, prefix: "d/00" }, password, segment: { bytes: 300 * 1024 } }));
    expect(plan.encrypted).toBe(true);
    expect(JSON.stringify(plan)).not.toContain(password);
    await expect(runSegment({ client, plan, segment: 0 })).rejects.toThrow(/password is required/);
    const runs = await workers(plan, shuffled(plan.segments), { ZS_PASSWORD: password });
    for (const r of runs) expect(r.code, `segment ${r.segment}: ${r.stderr}`).toBe(0);
    await finalizeArchive({ client, plan });
    const dl = await download(client, out, "aes.zip");
    try {
      await verifyZip(dl.path, expected("d/00"), { readers: [...AES_READERS], password });
    } finally {
      await dl.cleanup();
    }
  });
});

