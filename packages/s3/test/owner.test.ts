/**
 * The bucket-owner condition (issue 13): `expectedBucketOwner` puts `x-amz-expected-bucket-owner`
 * on every request a job makes, and `x-amz-source-expected-bucket-owner` on copies.
 *
 * - Request shape, on the main gateway (Ceph 16, which ignores the header): every request leaving
 *   the client is recorded at the SDK's last step before sending, and each one must carry the
 *   owner of the bucket it names. Streaming, copy assembly, verify, `overwrite: false`,
 *   `uploadStream`, the clean-up calls and a distributed archive are all run.
 * - Enforcement, on the Ceph 20 gateway of infra/checksum-s3 (which refuses a wrong owner with
 *   403, measured): the right owner builds the archive; a wrong one, for the sources or for the
 *   destination only, fails with ERR_S3_ACCESS_DENIED naming the condition and leaves nothing.
 */
import { Readable } from "node:stream";
import { readFile } from "node:fs/promises";
import { GetBucketAclCommand, S3Client } from "@aws-sdk/client-s3";
import { zipStream } from "@zipstream/core";
import { verifyZip } from "@zipstream/interop";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  abortIncompleteUploads,
  finalizeArchive,
  listIncompleteUploads,
  planArchive,
  resolveLocations,
  runSegment,
  s3ZipEntries,
  uploadStream,
  verifyS3Zip,
  zipS3Keys,
  type S3ZipError,
} from "../src/index.js";
import { createBucket, deleteBucket, download, listUploads, makeClient, objectExists, patternBytes, put } from "./helpers.js";

const MiB = 1024 * 1024;

interface Sent {
  command: string;
  bucket: string;
  owner?: string;
  sourceOwner?: string;
}

/** A client that records every request it sends (command, bucket, owner headers). */
function recordingClient(base: S3Client): { client: S3Client; sent: Sent[] } {
  const sent: Sent[] = [];
  base.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request as { headers: Record<string, string>; path: string };
      const input = args.input as { Bucket?: string };
      sent.push({
        command: String(context.commandName),
        bucket: input.Bucket ?? "",
        owner: req.headers["x-amz-expected-bucket-owner"],
        sourceOwner: req.headers["x-amz-source-expected-bucket-owner"],
      });
      return next(args);
    },
    { step: "finalizeRequest", name: "recordOwnerHeaders" },
  );
  return { client: base, sent };
}

async function ownerOf(client: S3Client, bucket: string): Promise<string> {
  const acl = await client.send(new GetBucketAclCommand({ Bucket: bucket }));
  const id = acl.Owner?.ID;
  if (!id) throw new Error(`no owner ID for ${bucket}`);
  return id;
}

describe("expectedBucketOwner: every request carries it (request shape, main gateway)", () => {
  let admin: S3Client;
  let src: string;
  let out: string;
  let owner: string;
  const data = new Map<string, Buffer>();

  beforeAll(async () => {
    admin = makeClient();
    src = await createBucket(admin, "ownsrc");
    out = await createBucket(admin, "ownout");
    owner = await ownerOf(admin, src);
    const objects: [string, Buffer][] = [
      ["d/big.bin", patternBytes(12 * MiB, 7)],
      ["d/a.txt", Buffer.from("alpha\n".repeat(50))],
      ["d/b.txt", Buffer.from("beta\n")],
    ];
    for (const [k, v] of objects) {
      data.set(k, v);
      await put(admin, src, k, v);
    }
  }, 120_000);

  afterAll(async () => {
    for (const b of [src, out]) await deleteBucket(admin, b);
    admin.destroy();
  });

  /** Every request names a bucket and carries its expected owner; copies carry the source's. */
  function expectAllOwned(sent: Sent[], owners: Record<string, string>): void {
    expect(sent.length).toBeGreaterThan(0);
    for (const s of sent) {
      expect(s.bucket, `${s.command} names a bucket`).not.toBe("");
      expect({ command: s.command, owner: s.owner }).toEqual({ command: s.command, owner: owners[s.bucket] });
      if (s.command === "UploadPartCopyCommand") expect(s.sourceOwner).toBe(owners[src]);
    }
  }

  it("zipS3Keys streaming and copy assembly, with verify and overwrite: false", async () => {
    for (const assembly of ["stream", "copy"] as const) {
      const { client, sent } = recordingClient(makeClient());
      const r = await zipS3Keys({
        client,
        src: [{ bucket: src, prefix: "d/" }, { bucket: src, keys: ["d/b.txt"] }],
        dest: { bucket: out, key: `${assembly}.zip`, overwrite: false },
        duplicates: "rename",
        assembly,
        copyMinSize: 5 * MiB,
        verify: true,
        expectedBucketOwner: owner,
      });
      expect(r.assembly).toBe(assembly);
      expect(r.verify?.ok).toBe(true);
      const commands = new Set(sent.map((s) => s.command));
      for (const c of ["ListObjectsV2Command", "HeadObjectCommand", "GetObjectCommand"]) expect(commands, assembly).toContain(c);
      for (const c of ["CreateMultipartUploadCommand", "UploadPartCommand", "CompleteMultipartUploadCommand"]) expect(commands, assembly).toContain(c);
      if (assembly === "copy") expect(commands).toContain("UploadPartCopyCommand");
      expectAllOwned(sent, { [src]: owner, [out]: owner });
      client.destroy();
    }
  }, 120_000);

  it("a record gives each bucket its own owner; buckets not in it get no condition", async () => {
    const { client, sent } = recordingClient(makeClient());
    // The destination is left out of the record: its requests must go without the header.
    await zipS3Keys({ client, src: { bucket: src, prefix: "d/" }, dest: { bucket: out, key: "record.zip" }, assembly: "copy", copyMinSize: 5 * MiB, expectedBucketOwner: { [src]: owner } });
    expect(sent.some((s) => s.bucket === out)).toBe(true);
    for (const s of sent) {
      expect({ command: s.command, owner: s.owner }).toEqual({ command: s.command, owner: s.bucket === src ? owner : undefined });
      if (s.command === "UploadPartCopyCommand") expect(s.sourceOwner).toBe(owner);
    }
    client.destroy();
  }, 60_000);

  it("uploadStream, verifyS3Zip and the clean-up calls", async () => {
    const { client, sent } = recordingClient(makeClient());
    await uploadStream({ client, dest: { bucket: out, key: "raw.bin" }, body: Readable.from([patternBytes(12 * MiB, 3)]), partSize: 5 * MiB, expectedBucketOwner: owner });
    await uploadStream({ client, dest: { bucket: out, key: "one.bin", overwrite: false }, body: Readable.from([Buffer.from("one part")]), expectedBucketOwner: owner });
    // A body that fails after its first part: the upload is aborted, under the same condition.
    async function* failing() {
      yield patternBytes(6 * MiB, 4);
      throw new Error("source failed");
    }
    await expect(uploadStream({ client, dest: { bucket: out, key: "failed.bin" }, body: failing(), partSize: 5 * MiB, expectedBucketOwner: owner })).rejects.toThrow();
    expect(await listUploads(admin, out)).toBe(0);
    const report = await verifyS3Zip({ client, bucket: out, key: "stream.zip", expect: [{ bucket: src, prefix: "d/" }, { bucket: src, keys: ["d/b.txt"] }], deep: true, expectedBucketOwner: owner });
    expect(report.problems).toEqual([]);
    await listIncompleteUploads({ client, bucket: out, expectedBucketOwner: owner });
    await abortIncompleteUploads({ client, bucket: out, expectedBucketOwner: owner });
    expect(new Set(sent.map((s) => s.command))).toEqual(
      new Set([
        "CreateMultipartUploadCommand",
        "UploadPartCommand",
        "CompleteMultipartUploadCommand",
        "PutObjectCommand",
        "AbortMultipartUploadCommand",
        "GetObjectCommand",
        "HeadObjectCommand",
        "ListObjectsV2Command",
        "ListMultipartUploadsCommand",
      ]),
    );
    expectAllOwned(sent, { [src]: owner, [out]: owner });
    client.destroy();
  }, 60_000);

  it("a distributed archive: the plan carries the condition to every worker and the finalizer", async () => {
    const planner = recordingClient(makeClient());
    const plan = await planArchive({ client: planner.client, src: { bucket: src, prefix: "d/" }, dest: { bucket: out, key: "dist.zip" }, copyMinSize: 5 * MiB, expectedBucketOwner: owner });
    expect(plan.expectedBucketOwner).toBe(owner);
    expectAllOwned(planner.sent, { [src]: owner, [out]: owner });
    // Workers and the finalizer are given only the plan's location: the owner comes from the plan.
    const worker = recordingClient(makeClient());
    for (let i = 0; i < plan.segments; i++) await runSegment({ client: worker.client, plan: `s3://${out}/dist.zip.plan.json`, segment: i });
    const done = await finalizeArchive({ client: worker.client, plan: `s3://${out}/dist.zip.plan.json` });
    expect(done.size).toBeGreaterThan(12 * MiB);
    // Reading the plan itself happens before its owner is known (the caller's option would guard
    // it): one GET of the plan per call goes without the condition, every other request carries it.
    const unowned = worker.sent.filter((s) => s.owner === undefined);
    expect(unowned).toEqual(Array.from({ length: plan.segments + 1 }, () => ({ command: "GetObjectCommand", bucket: out, owner: undefined, sourceOwner: undefined })));
    expectAllOwned(worker.sent.filter((s) => s.owner !== undefined), { [src]: owner, [out]: owner });
    expect(worker.sent.some((s) => s.command === "UploadPartCopyCommand")).toBe(true);
    planner.client.destroy();
    worker.client.destroy();
  }, 120_000);

  it("resolveLocations and s3ZipEntries (the CLI's S3 reads)", async () => {
    const { client, sent } = recordingClient(makeClient());
    const { objects } = await resolveLocations([{ bucket: src, key: "d/" }, { bucket: src, key: "d/a.txt" }], { client, expectedBucketOwner: owner });
    expect(objects.length).toBe(4);
    const s = s3ZipEntries(objects, { client, expectedBucketOwner: owner });
    const chunks: Buffer[] = [];
    for await (const c of zipStream(s.entries, { duplicates: "rename" })) chunks.push(c as Buffer);
    s.close();
    expect(Buffer.concat(chunks).length).toBeGreaterThan(12 * MiB);
    expect(new Set(sent.map((x) => x.command))).toEqual(new Set(["ListObjectsV2Command", "HeadObjectCommand", "GetObjectCommand"]));
    expectAllOwned(sent, { [src]: owner });
    client.destroy();
  }, 60_000);

  it("bad values are TypeErrors naming the option, before any request", async () => {
    const { client, sent } = recordingClient(makeClient());
    for (const bad of ["", "has space", 123, ["a"], { [src]: "" }, { [src]: 5 }]) {
      await expect(
        zipS3Keys({ client, src: { bucket: src, prefix: "d/" }, dest: { bucket: out, key: "bad.zip" }, expectedBucketOwner: bad as never }),
      ).rejects.toThrow(TypeError);
      await expect(zipS3Keys({ client, src: { bucket: src, prefix: "d/" }, dest: { bucket: out, key: "bad.zip" }, expectedBucketOwner: bad as never })).rejects.toThrow(/expectedBucketOwner/);
    }
    await expect(uploadStream({ client, dest: { bucket: out, key: "bad.bin" }, body: Readable.from([Buffer.from("x")]), expectedBucketOwner: "" })).rejects.toThrow(/expectedBucketOwner/);
    await expect(verifyS3Zip({ client, bucket: out, key: "stream.zip", expectedBucketOwner: "a b" })).rejects.toThrow(/expectedBucketOwner/);
    expect(sent).toEqual([]);
    client.destroy();
  });
});

const checksumEndpoint = process.env.S3_CHECKSUM_ENDPOINT;

describe("expectedBucketOwner: enforced by a server that checks it (Ceph 20)", () => {
  let client: S3Client;
  let src: string;
  let out: string;
  let owner: string;
  const data = new Map<string, Buffer>();

  beforeAll(async () => {
    if (!checksumEndpoint) throw new Error("S3_CHECKSUM_ENDPOINT is not set: start infra/checksum-s3 (scripts/test.sh does) and source its env");
    client = makeClient({ endpoint: checksumEndpoint, accessKeyId: process.env.S3_CHECKSUM_ACCESS_KEY_ID, secretAccessKey: process.env.S3_CHECKSUM_SECRET_ACCESS_KEY });
    src = await createBucket(client, "ownsrc20");
    out = await createBucket(client, "ownout20");
    owner = await ownerOf(client, src);
    for (const [k, v] of [
      ["p/big.bin", patternBytes(6 * MiB, 11)],
      ["p/small.txt", Buffer.from("small\n")],
    ] as const) {
      data.set(k, v);
      await put(client, src, k, v);
    }
  }, 120_000);

  afterAll(async () => {
    for (const b of [src, out]) await deleteBucket(client, b);
    client.destroy();
  });

  it("the right owner builds the archive (copy assembly), and readers accept it", async () => {
    const r = await zipS3Keys({ client, src: { bucket: src, prefix: "p/" }, dest: { bucket: out, key: "ok.zip" }, assembly: "copy", copyMinSize: 5 * MiB, expectedBucketOwner: owner });
    expect(r.entries).toBe(2);
    const dl = await download(client, out, "ok.zip");
    try {
      // verifyZip throws unless every reader lists and extracts exactly these members.
      const results = await verifyZip(dl.path, [...data].map(([k, v]) => ({ name: k.slice(2), data: v })));
      expect(results.length).toBeGreaterThan(3);
      expect((await readFile(dl.path)).length).toBe(r.size);
    } finally {
      await dl.cleanup();
    }
  }, 120_000);

  it("another owner for the sources: ERR_S3_ACCESS_DENIED naming the condition, nothing written", async () => {
    const err = (await zipS3Keys({ client, src: { bucket: src, prefix: "p/" }, dest: { bucket: out, key: "wrong-src.zip" }, expectedBucketOwner: "111122223333" }).catch((e: unknown) => e)) as S3ZipError;
    expect(err.code).toBe("ERR_S3_ACCESS_DENIED");
    expect(err.message).toContain(`bucket "${src}" to belong to account 111122223333`);
    expect(await objectExists(client, out, "wrong-src.zip")).toBe(false);
    expect(await listUploads(client, out)).toBe(0);
  }, 60_000);

  it("another owner for the destination only: refused before any byte is uploaded, no upload left", async () => {
    for (const assembly of ["stream", "copy"] as const) {
      const key = `wrong-dest-${assembly}.zip`;
      const err = (await zipS3Keys({
        client,
        src: { bucket: src, prefix: "p/" },
        dest: { bucket: out, key },
        assembly,
        copyMinSize: 5 * MiB,
        expectedBucketOwner: { [src]: owner, [out]: "111122223333" },
      }).catch((e: unknown) => e)) as S3ZipError;
      expect(err.code, assembly).toBe("ERR_S3_ACCESS_DENIED");
      expect(err.message).toContain(`bucket "${out}" to belong to account 111122223333`);
      expect(await objectExists(client, out, key)).toBe(false);
      expect(await listUploads(client, out)).toBe(0);
    }
  }, 60_000);
});
