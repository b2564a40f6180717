/**
 * `expect` of `verifyS3Zip`: the members an archive should hold, from S3 sources (resolved as
 * `zipS3Keys` resolves them) or from a manifest written by the CLI's `--manifest`, and the check
 * of the archive's directory against them.
 */
import { HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { checkName, METHOD_AES, pool } from "@zipstream/core";
import { crc32FromBase64 } from "./checksums.js";
import { mapS3Error } from "./errors.js";
import { resolveSources, type NameFn, type S3Source } from "./sources.js";
import type { EntryTable, Findings } from "./verify-check.js";

/** The manifest the CLI's `--manifest` writes (only `entries[].name` and `size` are required). */
export interface VerifyManifest {
  archive?: string;
  size?: number;
  entries: { name: string; size: number; crc32?: number; source?: string }[];
}

/** What the archive should hold: S3 sources as in `zipS3Keys`, or a manifest. */
export type VerifyExpect = S3Source | S3Source[] | { manifest: VerifyManifest };

export interface ExpectedMember {
  name: string;
  size: number;
  /** Known CRC-32: from the manifest, or the source's FULL_OBJECT CRC32 checksum. */
  crc32?: number;
  source?: string;
}

export function isManifestExpect(e: unknown): e is { manifest: VerifyManifest } {
  return typeof e === "object" && e !== null && !Array.isArray(e) && "manifest" in e;
}

/** Validates a manifest's shape (a TypeError naming the first bad field). */
export function checkManifest(m: unknown): VerifyManifest {
  const bad = (why: string): never => {
    throw new TypeError(`expect.manifest${why.startsWith(".") ? "" : " "}${why}`);
  };
  if (typeof m !== "object" || m === null || !Array.isArray((m as VerifyManifest).entries)) bad("must be { entries: [{ name, size, crc32? }] }");
  (m as VerifyManifest).entries.forEach((e, i) => {
    if (typeof e !== "object" || e === null) bad(`.entries[${i}] must be an object`);
    if (typeof e.name !== "string" || e.name === "") bad(`.entries[${i}].name must be a non-empty string`);
    if (!Number.isSafeInteger(e.size) || e.size < 0) bad(`.entries[${i}].size must be a non-negative integer`);
    if (e.crc32 !== undefined && !(Number.isInteger(e.crc32) && e.crc32 >= 0 && e.crc32 <= 0xffffffff)) bad(`.entries[${i}].crc32 must be an unsigned 32-bit integer`);
  });
  return m as VerifyManifest;
}

/**
 * The CRC-32 an S3 object's checksum gives, or undefined. Only a FULL_OBJECT CRC32 is the
 * CRC-32 of the bytes (a COMPOSITE one, from a multipart upload, is a CRC of the parts' CRCs).
 * The value is base64 of the big-endian 4 bytes (S3 API, HeadObject `x-amz-checksum-crc32`).
 */
export function crcFromChecksum(head: { ChecksumCRC32?: string; ChecksumType?: string }): number | undefined {
  return head.ChecksumType === "FULL_OBJECT" ? crc32FromBase64(head.ChecksumCRC32) : undefined;
}

/**
 * Resolves the expected members. S3 sources: listed and HEADed like `zipS3Keys` does, then one
 * HeadObject with `ChecksumMode: ENABLED` per object (`headConcurrency` at once) for its CRC32,
 * unless `checksums` is false. Returns the members and the requests spent on the sources.
 */
export async function resolveExpected(
  client: S3Client,
  expect: VerifyExpect,
  o: { name?: NameFn; checksums: boolean; headConcurrency: number; signal?: AbortSignal },
): Promise<{ members: ExpectedMember[]; requests: number }> {
  if (isManifestExpect(expect)) {
    return { members: checkManifest(expect.manifest).entries.map((e) => ({ name: e.name, size: e.size, crc32: e.crc32, source: e.source })), requests: 0 };
  }
  const { objects } = await resolveSources(expect, { client, name: o.name, onMissing: "error", headConcurrency: o.headConcurrency, signal: o.signal });
  const members: ExpectedMember[] = objects.map((x) => ({ name: x.name, size: x.size, source: `s3://${x.bucket}/${x.key}` }));
  let requests = 0;
  if (o.checksums) {
    const headCrc = async (x: (typeof objects)[number], k: number) => {
      requests++;
      const head = await client
        .send(new HeadObjectCommand({ Bucket: x.bucket, Key: x.key, VersionId: x.versionId, ChecksumMode: "ENABLED", IfMatch: x.etag || undefined }), {
          abortSignal: o.signal,
        })
        .catch((err: unknown) => {
          throw mapS3Error(err, "ERR_S3_READ", { bucket: x.bucket, key: x.key, action: "HeadObject" });
        });
      members[k]!.crc32 = crcFromChecksum(head);
    };
    await pool(objects, headCrc, { concurrency: o.headConcurrency });
  }
  return { members, requests };
}

/**
 * Every expected member present with its size and (where known) CRC-32; no other file entries
 * (directory entries are not members of any source and are left out). Names are compared after
 * the encoder's normalisation, as the archive's were written. An AE-2 member's directory CRC is
 * 0: its CRC is compared only when the deep check decrypted it.
 */
export function checkExpected(t: EntryTable, expected: ExpectedMember[], f: Findings): number {
  const norm = (n: string, dir: boolean) => {
    try {
      return checkName(n, dir);
    } catch {
      return n;
    }
  };
  const byName = new Map<string, number>();
  for (let i = 0; i < t.length; i++) byName.set(norm(t.names[i]!, t.isDirectory(i)), i);
  const seen = new Uint8Array(t.length);
  let matched = 0;
  for (const e of expected) {
    const i = byName.get(norm(e.name, false));
    const from = e.source ? ` (from ${e.source})` : "";
    if (i === undefined) {
      f.problem("EXPECTED_MISSING", `the expected member is not in the archive${from}`, e.name);
      continue;
    }
    seen[i] = 1;
    matched++;
    if (t.uncompressedSize[i] !== e.size) {
      f.problem("EXPECTED_SIZE_MISMATCH", `the member has ${t.uncompressedSize[i]} bytes, ${e.size} expected${from}`, e.name);
      continue;
    }
    if (e.crc32 !== undefined) {
      const aesV2 = t.method[i] === METHOD_AES && t.aesVersion[i] === 2;
      const crc = t.computed[i] ? t.computedCrc[i] : aesV2 ? undefined : t.crc32[i];
      if (crc !== undefined && crc !== e.crc32 >>> 0) {
        f.problem("EXPECTED_CRC_MISMATCH", `the member's CRC-32 is 0x${crc.toString(16).padStart(8, "0")}, 0x${e.crc32.toString(16).padStart(8, "0")} expected${from}`, e.name);
      }
    }
  }
  for (let i = 0; i < t.length; i++) {
    if (!seen[i] && !t.isDirectory(i)) f.problem("UNEXPECTED_ENTRY", "the archive holds a member no expected source gives", t.names[i]);
  }
  return matched;
}
