import type { S3Client } from "@aws-sdk/client-s3";
import type { ZipEntry } from "@zipstream/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyS3Zip, type VerifyProblemCode } from "../src/index.js";
import { createBucket, deleteBucket, makeClient, patternBytes, put } from "./helpers.js";
import { externalZip, layout, zipBytes } from "./verify-helpers.js";

/**
 * Each corruption is written to S3 and must be caught with its own code (and the intact archive
 * it was made from verifies as ok, so the code comes from the damage).
 */
let client: S3Client;
let bucket: string;
let n = 0;

beforeAll(async () => {
  client = makeClient();
  bucket = await createBucket(client, "vbad");
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

const files = (): ZipEntry[] => [
  { name: "one.bin", source: patternBytes(100_000, 1) },
  { name: "two.txt", source: "two ".repeat(5000) },
  { name: "three.bin", source: patternBytes(50_000, 3) },
];

async function codesOf(zip: Buffer, opts: { deep?: boolean; password?: string } = {}): Promise<Set<VerifyProblemCode>> {
  const key = `bad-${n++}.zip`;
  await put(client, bucket, key, zip);
  const r = await verifyS3Zip({ client, bucket, key, ...opts });
  expect(r.ok).toBe(r.problems.length === 0);
  return new Set(r.problems.map((p) => p.code));
}

let stored: Buffer;
let deflated: Buffer;
beforeAll(async () => {
  stored = await zipBytes(files(), { method: "store" });
  deflated = await zipBytes(files(), { method: "deflate" });
  expect(await codesOf(stored, { deep: true })).toEqual(new Set());
  expect(await codesOf(deflated, { deep: true })).toEqual(new Set());
});

describe("each corruption has its own code", () => {
  it("a flipped byte in a stored member: CRC_MISMATCH (deep); the structural check cannot see it", async () => {
    const z = Buffer.from(stored);
    z[1000] ^= 0x40;
    expect(await codesOf(z)).toEqual(new Set());
    expect(await codesOf(z, { deep: true })).toEqual(new Set(["CRC_MISMATCH"]));
  });

  it("a flipped byte in a deflated member: DATA_CORRUPT or CRC_MISMATCH (deep)", async () => {
    const z = Buffer.from(deflated);
    z[200] ^= 0xff;
    const codes = await codesOf(z, { deep: true });
    expect(codes.size).toBe(1);
    expect(["DATA_CORRUPT", "CRC_MISMATCH"]).toContain([...codes][0]);
  });

  it("a flipped byte in an AES member: AES_AUTH_FAILED (deep, with the password)", async () => {
    const z = await zipBytes(files(), { method: "deflate", password: "pw" });
    z[500] ^= 0x01;
    expect(await codesOf(z, { deep: true, password: "pw" })).toEqual(new Set(["AES_AUTH_FAILED"]));
  });

  it("a truncated object: TRUNCATED; something else entirely: NOT_A_ZIP", async () => {
    expect(await codesOf(stored.subarray(0, stored.length - 100))).toEqual(new Set(["TRUNCATED"]));
    expect(await codesOf(patternBytes(5000, 9))).toEqual(new Set(["NOT_A_ZIP"]));
  });

  it("a directory entry pointing past the end: OFFSET_OUT_OF_BOUNDS", async () => {
    const z = Buffer.from(stored);
    const { central } = layout(z);
    z.writeUInt32LE(z.length + 5000, central[1]! + 42);
    expect(await codesOf(z)).toEqual(new Set(["OFFSET_OUT_OF_BOUNDS"]));
  });

  it("overlapping members: OVERLAP", async () => {
    // The third entry claims the second one's local header: both name the same bytes.
    const z = Buffer.from(stored);
    const { central } = layout(z);
    z.writeUInt32LE(z.readUInt32LE(central[1]! + 42), central[2]! + 42);
    const codes = await codesOf(z, { });
    expect(codes.has("OVERLAP")).toBe(true);
    // The stolen header also names another member (its own check, on the same bytes).
    expect([...codes].sort()).toEqual(["LOCAL_HEADER_MISMATCH", "OVERLAP"]);
  });

  it("a wrong size in the directory: STORED_SIZE_MISMATCH (structure) and SIZE_MISMATCH (deflated, deep)", async () => {
    const s = Buffer.from(stored);
    const ls = layout(s);
    s.writeUInt32LE(s.readUInt32LE(ls.central[0]! + 24) + 1, ls.central[0]! + 24);
    expect(await codesOf(s)).toEqual(new Set(["STORED_SIZE_MISMATCH", "LOCAL_HEADER_MISMATCH"]));
    const d = Buffer.from(deflated);
    const ld = layout(d);
    d.writeUInt32LE(d.readUInt32LE(ld.central[1]! + 24) - 7, ld.central[1]! + 24);
    // Under a data descriptor the local header holds no size; the descriptor and the data disagree.
    expect(await codesOf(d, { deep: true })).toEqual(new Set(["SIZE_MISMATCH", "DESCRIPTOR_MISMATCH"]));
  });

  it("a duplicate name: NAME_DUPLICATE", async () => {
    const z = await zipBytes([...files(), { name: "two.txt", source: "again" }], { duplicates: "allow" });
    expect(await codesOf(z)).toEqual(new Set(["NAME_DUPLICATE"]));
  });

  it("'..' names from a hostile writer (Python's zipfile, which keeps them): NAME_UNSAFE", async () => {
    const z = await externalZip("python", { "a.txt": "a", "b.txt": "b", "c.txt": "c" }, { pythonNames: { "a.txt": "../../etc/evil.txt", "b.txt": "ok/../../x.txt" /* normalised by Python to ../x.txt */ } });
    const key = `bad-${n++}.zip`;
    await put(client, bucket, key, z);
    const r = await verifyS3Zip({ client, bucket, key });
    expect(r.problems.map((p) => `${p.code}:${p.entry}`).sort()).toEqual(["NAME_UNSAFE:../../etc/evil.txt", "NAME_UNSAFE:../x.txt"]);
  });

  it("the end records and the directory disagree: ENTRY_COUNT_MISMATCH, CD_MISPLACED, END_RECORDS_DISAGREE", async () => {
    const a = Buffer.from(stored);
    const la = layout(a);
    a.writeUInt16LE(4, la.eocd + 8);
    a.writeUInt16LE(4, la.eocd + 10);
    expect(await codesOf(a)).toEqual(new Set(["ENTRY_COUNT_MISMATCH"]));
    // 10 bytes of junk between the directory and the end record.
    const b = Buffer.concat([stored.subarray(0, layout(stored).eocd), Buffer.alloc(10), stored.subarray(layout(stored).eocd)]);
    expect(await codesOf(b)).toEqual(new Set(["CD_MISPLACED"]));
    const c = await zipBytes(files(), { zip64: "always" });
    const lc = layout(c);
    c.writeUInt16LE(2, lc.eocd + 8);
    c.writeUInt16LE(2, lc.eocd + 10);
    expect(await codesOf(c)).toEqual(new Set(["END_RECORDS_DISAGREE"]));
  });

  it("a local header that disagrees with its entry: LOCAL_HEADER_MISMATCH; no header at all: LOCAL_HEADER_INVALID", async () => {
    const a = Buffer.from(stored);
    a[30] = "X".charCodeAt(0); // first byte of the first local header's name
    expect(await codesOf(a)).toEqual(new Set(["LOCAL_HEADER_MISMATCH"]));
    const b = Buffer.from(stored);
    b.writeUInt32LE(0, 0);
    expect(await codesOf(b)).toEqual(new Set(["LOCAL_HEADER_INVALID"]));
  });
});
