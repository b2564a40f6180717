import type { S3Client } from "@aws-sdk/client-s3";
import { intOption } from "@zipstream/core";
import { S3ZipError } from "./errors.js";
import { checkClient } from "./multipart.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
import { MAX_HEAD_CONCURRENCY } from "./limits.js";
import type { NameFn } from "./sources.js";
import {
  END_RECORDS_MAX,
  Findings,
  MERGE_GAP,
  checkLayout,
  checkLocalHeaders,
  readDirectory,
  readEnd,
  sampleMembers,
  type LocalHeaderMode,
  type VerifyProblem,
  type VerifyProblemCode,
  type VerifyWarningCode,
} from "./verify-check.js";
import { deepCheck, type DeepProgress } from "./verify-deep.js";
import { checkExpected, checkManifest, isManifestExpect, resolveExpected, type ExpectedMember, type VerifyExpect } from "./verify-expect.js";
import { ObjectChangedError, S3RangeSource } from "./verify-read.js";

export type { VerifyProblem, VerifyProblemCode, VerifyWarningCode, LocalHeaderMode, VerifyExpect };
export type { VerifyManifest } from "./verify-expect.js";
export { MERGE_GAP, MIN_READ, SAMPLE_SIZE } from "./verify-check.js";
export { DEEP_RANGE } from "./verify-deep.js";

/** Progress of the deep pass: archive bytes read and members checked so far. */
export type VerifyProgress = DeepProgress;

/** Options of {@link verifyS3Zip}. */
export interface VerifyS3ZipOptions {
  /** An `@aws-sdk/client-s3` v3 client (for Ceph RGW: path style, checksums "WHEN_REQUIRED"). */
  client: S3Client;
  bucket: string;
  key: string;
  /** A version of the archive; default the current one. */
  versionId?: string;
  /**
   * What the archive should hold: S3 sources exactly as `zipS3Keys` takes them (names by the same
   * rule, or `name`), or `{ manifest }` as the CLI's `--manifest` writes it. Every expected member
   * must be present with its size, and its CRC-32 where known; no other file may be. Memory: one
   * small record per expected member.
   */
  expect?: VerifyExpect;
  /** Key-to-name mapping of `expect`'s S3 sources, as `zipS3Keys`' `name`. */
  name?: NameFn;
  /**
   * With S3 sources in `expect`: one HeadObject with `ChecksumMode: ENABLED` per source object
   * (`headConcurrency` at once) to read its FULL_OBJECT CRC32, when the store keeps one. Default
   * true; false skips those requests (sizes are still compared).
   */
  expectChecksums?: boolean;
  /** HeadObject requests at once for `expect`. Default 16. */
  headConcurrency?: number;
  /**
   * Also read every member's data once (ranged GETs of {@link DEEP_RANGE}, 64 MiB) and recompute
   * CRC-32 and size of stored and deflated members, compare data descriptors, and authenticate
   * AES-256 members when `password` is given. Default false. Memory: about 1 MiB (one inflater,
   * one AES decryptor, small deflated members inflated in one call up to 1 MiB compressed), plus
   * the chunk in hand.
   */
  deep?: boolean;
  /**
   * Local headers compared with their directory entries: "all" (default), "sample" (the first,
   * the last and evenly spaced ones, {@link SAMPLE_SIZE} at most) or "none". Read as merged
   * ranges: headers closer than {@link MERGE_GAP} (1 MiB, measured) share one GET, each GET at
   * least {@link MIN_READ} (64 KiB): big members cost about one request each, tiny ones are read
   * nearly whole in few requests. Ignored with `deep` (the deep pass reads them all).
   */
  localHeaders?: LocalHeaderMode;
  /** Password of AES members, for `deep`. Without it they are reported as not checked. */
  password?: string;
  /** Local-header ranges read at once. Default 4. */
  concurrency?: number;
  /** Cancels the check: it rejects with `ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Progress of the deep pass. */
  onProgress?: (p: VerifyProgress) => void;
  /** The account that must own the archive's bucket (and `expect`'s buckets), sent on every request; see {@link ExpectedBucketOwner}. Default: none. */
  expectedBucketOwner?: ExpectedBucketOwner;
}

/** What {@link verifyS3Zip} found. */
export interface VerifyReport {
  /** True when no invariant is broken (`problems` is empty). Warnings do not make it false. */
  ok: boolean;
  bucket: string;
  key: string;
  versionId?: string;
  /** ETag every read was pinned to. */
  etag?: string;
  /** Object size in bytes. */
  size: number;
  /** Entries in the central directory (as parsed; the end records' count when it could not be). */
  entries: number;
  /** The archive uses Zip64: end records, or an entry's Zip64 extra field. */
  zip64: boolean;
  /** The archive comment (UTF-8 decoded). */
  comment?: string;
  /** Broken invariants, each with a stable code (see {@link VerifyProblemCode}); at most 1,001. */
  problems: VerifyProblem[];
  /** Observations that break nothing (see {@link VerifyWarningCode}), one per code. */
  warnings: VerifyProblem<VerifyWarningCode>[];
  /** GET/HEAD requests made on the archive. */
  requests: number;
  /** Bytes of the archive read. */
  bytesRead: number;
  /** Requests made on `expect`'s sources (listing and HEADs). */
  sourceRequests: number;
  checked: {
    /** Local headers compared with their directory entries. */
    localHeaders: number;
    /** Members whose CRC-32 and size were recomputed (deep). */
    crc: number;
    /** AES members whose authentication code matched (deep, with a password). */
    aesAuthenticated: number;
    /** Expected members found. */
    expected: number;
  };
}

/**
 * The first read: the last 1 MiB. The end records need at most {@link END_RECORDS_MAX} bytes
 * (a 64 KiB comment, the Zip64 locator and record); reading up to about {@link MERGE_GAP} more
 * costs less than a second request (measured, see MERGE_GAP), and brings in the whole central
 * directory of archives of up to several thousand entries.
 */
export const FIRST_READ = Math.max(END_RECORDS_MAX, MERGE_GAP);

function validate(o: VerifyS3ZipOptions): void {
  if (o === null || typeof o !== "object") throw new TypeError("options must be an object");
  checkClient(o.client);
  if (typeof o.bucket !== "string" || o.bucket === "") throw new TypeError("bucket must be a non-empty string");
  if (typeof o.key !== "string" || o.key === "") throw new TypeError("key must be a non-empty string");
  if (o.versionId !== undefined && (typeof o.versionId !== "string" || o.versionId === "")) throw new TypeError("versionId must be a non-empty string");
  if (o.deep !== undefined && typeof o.deep !== "boolean") throw new TypeError("deep must be a boolean");
  if (o.localHeaders !== undefined && !["all", "sample", "none"].includes(o.localHeaders)) throw new TypeError(`localHeaders must be "all", "sample" or "none"`);
  if (o.password !== undefined && (typeof o.password !== "string" || o.password === "")) throw new TypeError("password must be a non-empty string");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
  if (o.onProgress !== undefined && typeof o.onProgress !== "function") throw new TypeError("onProgress must be a function");
  if (o.name !== undefined && typeof o.name !== "function") throw new TypeError("name must be a function (key, src) => string");
  if (o.expectChecksums !== undefined && typeof o.expectChecksums !== "boolean") throw new TypeError("expectChecksums must be a boolean");
  intOption("concurrency", o.concurrency, 1, 1000);
  intOption("headConcurrency", o.headConcurrency, 1, MAX_HEAD_CONCURRENCY);
  if (o.expect !== undefined) {
    if (o.expect === null || typeof o.expect !== "object") throw new TypeError("expect must be an S3 source (as in zipS3Keys) or { manifest }");
    if (isManifestExpect(o.expect)) checkManifest(o.expect.manifest);
  }
  validateExpectedBucketOwner(o.expectedBucketOwner);
}

/**
 * Verifies a ZIP archive where it lies in S3, with ranged GETs and without downloading it.
 *
 * Reads the end records and the central directory (usually one request: the last 1 MiB; one more
 * when the directory is bigger), checks the structure (entry counts and sizes across the end
 * records and the directory, offsets inside the object, no overlapping members, the directory
 * ending where the end records begin, Zip64 where values need it, local headers against their
 * entries, names safe and unique by the encoder's own rules), then optionally the members against
 * `expect` and, with `deep`, every member's data. Every GET after the first is pinned with
 * `If-Match` to the first response's ETag: an object that changes mid-check is reported
 * (`OBJECT_CHANGED`), never misread.
 *
 * A damaged archive is a report with `ok: false`, not an exception. It rejects (S3ZipError) only
 * when the check cannot run: no such bucket/key (`ERR_S3_NO_SUCH_KEY`, `ERR_S3_NO_SUCH_BUCKET`),
 * access denied, a read failing after retries (`ERR_S3_READ`), the signal (`ERR_ABORTED`), and
 * the same errors for `expect`'s sources. Bad options throw a TypeError naming the option.
 *
 * Memory: about 50 bytes plus the name per entry (the directory is parsed as it streams in,
 * never held whole), the first 1 MiB read, and per the options above.
 */
export async function verifyS3Zip(options: VerifyS3ZipOptions): Promise<VerifyReport> {
  validate(options);
  const { bucket, key, versionId, signal } = options;
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  if (signal?.aborted) throw new S3ZipError("ERR_ABORTED", "verification aborted before it started", { cause: signal.reason, bucket, key });
  const f = new Findings();
  const src = new S3RangeSource(client, bucket, key, versionId, signal);
  const report: VerifyReport = {
    ok: false,
    bucket,
    key,
    ...(versionId !== undefined ? { versionId } : {}),
    size: 0,
    entries: 0,
    zip64: false,
    problems: f.problems,
    warnings: f.warnings,
    requests: 0,
    bytesRead: 0,
    sourceRequests: 0,
    checked: { localHeaders: 0, crc: 0, aesAuthenticated: 0, expected: 0 },
  };

  // The expected members first: a missing source fails before the archive is read.
  let expected: ExpectedMember[] | undefined;
  if (options.expect !== undefined) {
    const r = await resolveExpected(client, options.expect, {
      name: options.name,
      checksums: options.expectChecksums ?? true,
      headConcurrency: options.headConcurrency ?? 16,
      signal,
    });
    expected = r.members;
    report.sourceRequests = r.requests;
  }

  try {
    const tail = await src.suffix(FIRST_READ);
    report.size = src.size;
    const tailStart = src.size - tail.length;
    const end = await readEnd(src, tail, tailStart, f);
    if (end !== undefined) {
      report.zip64 = end.zip64;
      report.entries = end.entries;
      if (end.comment.length > 0) report.comment = Buffer.from(end.comment).toString("utf8");
      const dir = await readDirectory(src, end, tail, tailStart, f);
      if (dir !== undefined) {
        const { table } = dir;
        report.zip64 ||= dir.zip64Entries > 0;
        report.entries = table.length;
        const order = table.byOffset();
        if (options.deep) {
          const d = await deepCheck(src, table, order, end.cdOffset, f, options.password, options.onProgress);
          report.checked.crc = d.crcChecked;
          report.checked.aesAuthenticated = d.aesAuthenticated;
        } else {
          const mode = options.localHeaders ?? "all";
          const wanted = mode === "all" ? Array.from(order) : mode === "sample" ? sampleMembers(order) : [];
          // Headers at offsets outside the object are reported by the layout check, not read.
          const readable = wanted.filter((i) => table.offset[i]! < end.cdOffset);
          await checkLocalHeaders(src, table, readable, end.cdOffset, f, options.concurrency ?? 4);
        }
        for (let i = 0; i < table.length; i++) if (table.localLength[i]) report.checked.localHeaders++;
        checkLayout(table, order, end.cdOffset, f);
        if (expected !== undefined) report.checked.expected = checkExpected(table, expected, f);
      }
    }
  } catch (err) {
    if (!(err instanceof ObjectChangedError)) throw err;
    f.problem("OBJECT_CHANGED", err.message);
  } finally {
    report.requests = src.requests;
    report.bytesRead = src.bytesRead;
    if (src.etag !== undefined) report.etag = src.etag;
  }
  f.finish();
  report.ok = f.problems.length === 0;
  return report;
}
