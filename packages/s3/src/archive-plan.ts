/**
 * Archives bigger than one worker: a plan written to S3, segments run by any number of workers
 * (Step Functions, a job runner, local processes), and a finalizer that writes the central
 * directory. See docs/distributed.md.
 *
 * Two modes, chosen from the options:
 * - "copy" (stored members, no password): the copy-assembly plan of `zipS3Keys` (`layoutZip`,
 *   `planCopyParts`), cut into segments at part boundaries no member straddles. The planner
 *   creates the destination multipart upload; each segment uploads and copies its own parts into
 *   it (same part numbers, same bytes on every rerun), learns its members' CRC-32s, and writes
 *   them next to the plan; the finalizer uploads the last part (the central directory, with the
 *   members that share it) and completes. The archive is byte-identical to `zipS3Keys`'s copy
 *   assembly of the same inputs.
 * - "compress" (deflate or AES): sizes are known only after compressing, so each segment writes
 *   its members' local records as a temporary object, and the finalizer stitches the archive
 *   from them with the same part planner (large runs copied by S3, small tails read and merged
 *   into uploaded parts of at least 5 MiB), then appends the central directory.
 *
 * Files of a plan at `s3://B/K`: the manifest `K` (small, whatever the member count), and under
 * `K.d/`: `seg/<i>.json` (segment i's members and parts), `seg/final.json`, `res/<i>.json`
 * (segment i's result), `data/<i>.zip` (compress mode: segment i's records).
 */
import zlib from "node:zlib";
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { AES_OVERHEAD, ZipError, intOption, layoutZip, pool, zipStream, type Zip64Mode, type ZipEntry, type ZipEntryInfo, type ZipLayout } from "@zipstream/core";
import {
  DEFAULT_SEGMENT_LIMITS,
  decodeMembers,
  decodeParts,
  encodeMembers,
  encodeParts,
  segmentPlan,
  type SegmentDoc,
  type SegmentLimits,
  type SegmentRange,
} from "./archive-segments.js";
import type { CrcSource } from "./checksums.js";
import { assemblyTasks, defaultCopyMinSize, layoutForPlan, planFor } from "./copy-assembly.js";
import { planCopyParts, type CopyPlan, type PlannedPart } from "./copy-plan.js";
import { S3ZipError, httpStatus, mapS3Error, s3Code, s3SourceFailure } from "./errors.js";
import { s3ZipEntries } from "./locations.js";
import { JobState, abort, checkDestFree, complete, create, finish, runMultipart, runParts, type PartResult, type PartTask } from "./multipart.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
import { MAX_CONCURRENCY } from "./limits.js";
import { DEFAULT_PART_SIZE, MAX_PARTS, MIN_PART_SIZE } from "./parts.js";
import { DEFAULT_PREFETCH_BYTES, DEFAULT_PREFETCH_OBJECTS, type PrefetchOptions } from "./prefetch.js";
import { readRange } from "./ranges.js";
import { resolveSources, type ResolvedObject } from "./sources.js";
import { uploadStream, validateDest, type S3Dest } from "./upload.js";
import { resolveOptions, validate, type ZipS3Options, type ZipS3Result } from "./zip-s3-keys.js";

/** Where a plan's manifest is stored. Its other files are under `key + ".d/"`. */
export interface PlanLocation {
  bucket: string;
  key: string;
}

/** Options of {@link planArchive}: `zipS3Keys`'s, plus where the plan goes and how big a segment is. */
export interface ArchivePlanOptions extends ZipS3Options {
  /** Where the manifest is written. Default: next to the archive, `{ dest.bucket, dest.key + ".plan.json" }`. */
  plan?: PlanLocation;
  /**
   * One worker's share. Defaults: 4 GiB of archive, 500 parts, 50,000 members per segment. A
   * segment closes before it would pass a limit; in copy mode a single member larger than the
   * limits is a segment of its own (its header and data are not split).
   * Memory of a worker: partSize × (concurrency + 1) for its uploaded parts, plus about
   * 0.85 KB per member of its segment (the parsed segment and its local headers; measured 833 B).
   */
  segment?: Partial<SegmentLimits>;
}

/** The manifest of a distributed archive (what Step Functions passes around is only its location). */
export interface ArchivePlan {
  version: 1;
  location: PlanLocation;
  dest: S3Dest;
  mode: "copy" | "compress";
  /** Copy mode: the destination multipart upload, created by the planner. */
  uploadId?: string;
  /** The upload computes CRC-32 checksums (the server echoed the algorithm at create). */
  checksums: boolean;
  /** The archive's FULL_OBJECT CRC-32 is verified by S3 at Complete. */
  fullObject: boolean;
  members: number;
  /** Worker segments, indexes 0..segments-1 (copy mode also has a final segment, run by the finalizer). */
  segments: number;
  method: "store" | "deflate";
  level?: number;
  /** Members are AES-256 encrypted: every worker needs the password (never written to S3). */
  encrypted: boolean;
  zip64: Zip64Mode;
  /** Copy mode: the archive's exact size and part count. */
  size?: number;
  parts?: number;
  /** Copy mode: member bytes S3 copies, and bytes uploaded by the workers and the finalizer. */
  bytesCopied?: number;
  bytesUploaded?: number;
  partSize: number;
  maxCopyPartSize?: number;
  /** The planner's bucket-owner condition, applied by every worker and the finalizer (see {@link ExpectedBucketOwner}). */
  expectedBucketOwner?: ExpectedBucketOwner;
  createdAt: string;
}

/** What one segment did, as stored at `K.d/res/<i>.json`. */
export interface SegmentResult {
  version: 1;
  index: number;
  uploadId?: string;
  /** Copy mode: `[partNumber, etag, size, crc32 | null]` of each part the segment wrote. */
  parts: [number, string, number, number | null][];
  /** Each member's CRC-32, in order. */
  crcs: number[];
  /** Each member's CRC source. */
  crcSource: CrcSource[];
  /** Compress mode: each member's stored size (after compression, before encryption). */
  compressedSizes?: number[];
  /** Compress mode: the temporary object and how many of its first bytes are the members' records. */
  data?: { key: string; etag: string; size: number; recordsLength: number };
  bytesRead: number;
  bytesUploaded: number;
  bytesCopied: number;
}

/** What {@link finalizeArchive} wrote: `zipS3Keys`'s fields for the object, and whether S3 verified its CRC-32. */
export interface ArchiveResult extends Pick<ZipS3Result, "bucket" | "key" | "size" | "entries" | "parts" | "etag" | "versionId" | "checksumCRC32"> {
  /** S3 verified `checksumCRC32` at Complete. */
  checksumVerified: boolean;
}

/** A plan given as the manifest, its location, or `s3://bucket/key`. */
export type PlanRef = ArchivePlan | PlanLocation | string;

/** Options shared by the workers and the finalizer. */
export interface ArchiveRunOptions {
  client: S3Client;
  plan: PlanRef;
  /** Parts (or GETs, in compress mode) at once. Default 4. Memory: partSize × (concurrency + 1). */
  concurrency?: number;
  /** Extra attempts of a failed part request on top of the SDK's retries. Default 2. */
  partRetries?: number;
  /** The AES password, for a plan whose members are encrypted (it is never stored in S3). */
  password?: string;
  prefetch?: PrefetchOptions;
  /** The bucket-owner condition; default: the plan's (the planner's `expectedBucketOwner`). Also applied to reading the plan. */
  expectedBucketOwner?: ExpectedBucketOwner;
  signal?: AbortSignal;
}

const pad = (i: number) => String(i).padStart(6, "0");
export const planFiles = {
  prefix: (l: PlanLocation) => `${l.key}.d/`,
  segment: (l: PlanLocation, i: number | "final") => `${l.key}.d/seg/${i === "final" ? "final" : pad(i)}.json`,
  result: (l: PlanLocation, i: number) => `${l.key}.d/res/${pad(i)}.json`,
  data: (l: PlanLocation, i: number) => `${l.key}.d/data/${pad(i)}.zip`,
};

// ---------------------------------------------------------------------------------------------
// JSON objects in S3

async function putJson(client: S3Client, bucket: string, key: string, value: unknown, signal?: AbortSignal): Promise<number> {
  const body = Buffer.from(JSON.stringify(value));
  try {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length, ContentType: "application/json" }), { abortSignal: signal });
  } catch (err) {
    throw mapS3Error(err, "ERR_S3_UPLOAD", { bucket, key, action: "writing the plan file" });
  }
  return body.length;
}

const notFound = (err: unknown) => s3Code(err) === "NoSuchKey" || httpStatus(err) === 404;

async function getJson<T>(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<T | undefined> {
  let text: string;
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
    text = await out.Body!.transformToString();
  } catch (err) {
    if (notFound(err)) return undefined;
    throw mapS3Error(err, "ERR_S3_READ", { bucket, key, action: "reading the plan file" });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new S3ZipError("ERR_S3_PLAN", `s3://${bucket}/${key} is not a plan file (invalid JSON)`, { cause: err, bucket, key });
  }
}

/** Runs `fn` over `items` with `n` at once, in order of start; the results in the items' order. */
async function eachLimit<T, R>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  await pool(items, async (item, i) => (out[i] = await fn(item, i)), { concurrency: n });
  return out;
}

function parseRef(ref: PlanRef): PlanLocation | ArchivePlan {
  if (typeof ref === "string") {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(ref);
    if (!m) throw new TypeError(`plan must be s3://bucket/key; got ${JSON.stringify(ref)}`);
    return { bucket: m[1]!, key: m[2]! };
  }
  if (ref === null || typeof ref !== "object" || (!("location" in ref) && (typeof ref.bucket !== "string" || typeof ref.key !== "string"))) {
    throw new TypeError("plan must be an ArchivePlan, { bucket, key } or s3://bucket/key");
  }
  return ref;
}

/** The manifest, read from S3 unless given. */
export async function loadPlan(client: S3Client, ref: PlanRef, signal?: AbortSignal): Promise<ArchivePlan> {
  const r = parseRef(ref);
  if ("location" in r) return r;
  const plan = await getJson<ArchivePlan>(client, r.bucket, r.key, signal);
  if (plan === undefined) throw new S3ZipError("ERR_S3_PLAN", `no archive plan at s3://${r.bucket}/${r.key} (never written, or removed by finalize or abort)`, { bucket: r.bucket, key: r.key });
  if (plan.version !== 1 || (plan.mode !== "copy" && plan.mode !== "compress")) {
    throw new S3ZipError("ERR_S3_PLAN", `s3://${r.bucket}/${r.key} is not a version 1 archive plan`, { bucket: r.bucket, key: r.key });
  }
  return plan;
}

/**
 * The plan of a worker, finalizer or abort, and the client that carries the plan's bucket-owner
 * condition (the caller's own option wins, and also guards reading the plan).
 */
async function openPlan<T extends { client: S3Client; plan: PlanRef; signal?: AbortSignal; expectedBucketOwner?: ExpectedBucketOwner }>(
  o: T,
): Promise<T & { plan: ArchivePlan }> {
  if (!o?.client) throw new TypeError("client is required");
  validateExpectedBucketOwner(o.expectedBucketOwner);
  const plan = await loadPlan(withExpectedBucketOwner(o.client, o.expectedBucketOwner), o.plan, o.signal);
  return { ...o, plan, client: withExpectedBucketOwner(o.client, o.expectedBucketOwner ?? plan.expectedBucketOwner) };
}

async function loadSegment(client: S3Client, plan: ArchivePlan, i: number | "final", signal?: AbortSignal): Promise<SegmentDoc> {
  const key = planFiles.segment(plan.location, i);
  const doc = await getJson<SegmentDoc>(client, plan.location.bucket, key, signal);
  if (doc === undefined) throw new S3ZipError("ERR_S3_PLAN", `segment ${i} of the plan is missing (s3://${plan.location.bucket}/${key})`, { bucket: plan.location.bucket, key });
  return doc;
}

/** Removes every file of the plan (manifest last). Returns how many objects were deleted. */
async function removePlanFiles(client: S3Client, l: PlanLocation): Promise<number> {
  let removed = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: l.bucket, Prefix: planFiles.prefix(l), ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) {
      const out = await client.send(new DeleteObjectsCommand({ Bucket: l.bucket, Delete: { Objects: keys, Quiet: true } }));
      if (out.Errors?.length) throw new S3ZipError("ERR_S3_UPLOAD", `could not remove ${out.Errors.length} plan files under s3://${l.bucket}/${planFiles.prefix(l)}`, { bucket: l.bucket });
      removed += keys.length;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  await client.send(new DeleteObjectsCommand({ Bucket: l.bucket, Delete: { Objects: [{ Key: l.key }], Quiet: true } }));
  return removed + 1;
}

// ---------------------------------------------------------------------------------------------
// Plan

function checkLimits(s: Partial<SegmentLimits> | undefined): SegmentLimits {
  if (s !== undefined && (s === null || typeof s !== "object")) throw new TypeError("segment must be an object { bytes, parts, members }");
  const out = { ...DEFAULT_SEGMENT_LIMITS, ...s };
  for (const k of ["bytes", "parts", "members"] as const) {
    intOption(`segment.${k}`, out[k], 1);
  }
  return out;
}

/** Segments of a compress-mode plan: members grouped by input bytes and count. */
function groupMembers(sizes: readonly number[], limits: SegmentLimits): SegmentRange[] {
  const out: SegmentRange[] = [];
  let start = 0;
  let bytes = 0;
  sizes.forEach((size, m) => {
    if (m > start && (bytes + size > limits.bytes || m - start >= limits.members)) {
      out.push({ firstPart: 0, endPart: 0, firstMember: start, endMember: m, bytes });
      start = m;
      bytes = 0;
    }
    bytes += size;
  });
  if (sizes.length > start || out.length === 0) out.push({ firstPart: 0, endPart: 0, firstMember: start, endMember: sizes.length, bytes });
  return out;
}

/** The documents of a plan, before anything is written (pure; exported for the sizing tests). */
export interface PlanDocs {
  plan: Omit<ArchivePlan, "location" | "dest" | "uploadId" | "checksums" | "fullObject" | "createdAt">;
  segments: SegmentDoc[];
  final?: SegmentDoc;
  copyPlan?: CopyPlan;
  layout: ZipLayout;
}

/** Lays out and segments an archive of resolved objects. Pure. */
export function buildPlanDocs(
  objects: readonly ResolvedObject[],
  o: Pick<ArchivePlanOptions, "method" | "level" | "password" | "zip64" | "duplicates" | "copyMinSize" | "partSize" | "maxCopyPartSize" | "segment">,
  mtime: Date,
  serverChecksums = false,
): PlanDocs {
  const limits = checkLimits(o.segment);
  const method = o.method ?? "store";
  const mode: ArchivePlan["mode"] = method === "store" && o.password === undefined ? "copy" : "compress";
  const zip64 = o.zip64 ?? "auto";
  const entries: ZipEntry[] = objects.map((x) => ({ name: x.name, size: x.size, mtime: x.lastModified ?? mtime }));
  // The names (after the duplicates policy) and every "never"-Zip64 limit are decided here, once.
  const layout = layoutForPlan({ entries, zip64, duplicates: o.duplicates, defaultMtime: mtime });
  const names = layout.entries.map((e) => e.name);
  const mtimes = entries.map((e) => e.mtime!);
  const partSize = o.partSize ?? DEFAULT_PART_SIZE;
  const base = { version: 1 as const, mode, members: objects.length, method, level: o.level, encrypted: o.password !== undefined, zip64, partSize, maxCopyPartSize: o.maxCopyPartSize };
  const doc = (index: number, r: SegmentRange, parts?: readonly PlannedPart[]): SegmentDoc => ({
    version: 1,
    index,
    firstMember: r.firstMember,
    ...encodeMembers(objects, names, mtimes, r.firstMember, r.endMember),
    ...(parts ? { parts: encodeParts(parts.slice(r.firstPart, r.endPart), r.firstMember) } : {}),
  });
  if (mode === "compress") {
    const ranges = groupMembers(objects.map((x) => x.size), limits);
    return { plan: { ...base, segments: ranges.length }, segments: ranges.map((r, i) => doc(i, r)), layout };
  }
  const copyPlan = planFor(layout, { copyMinSize: o.copyMinSize ?? defaultCopyMinSize(serverChecksums), partSize, maxCopyPartSize: o.maxCopyPartSize });
  const cut = segmentPlan(copyPlan.parts, objects.length, limits);
  return {
    plan: { ...base, segments: cut.segments.length, size: copyPlan.size, parts: copyPlan.parts.length, bytesCopied: copyPlan.bytesCopied, bytesUploaded: copyPlan.bytesUploaded, partSize: copyPlan.partSize },
    segments: cut.segments.map((r, i) => doc(i, r, copyPlan.parts)),
    final: doc(-1, cut.final, copyPlan.parts),
    copyPlan,
    layout,
  };
}

/**
 * Plans a distributed archive: resolves the sources, lays out every member, cuts the work into
 * segments, creates the destination multipart upload (copy mode), and writes the plan to S3
 * (segment files first, the manifest last: a manifest exists only for a complete plan).
 *
 * Nothing is left behind on failure: the upload is aborted and the files written are removed.
 * Memory: about 0.5 KB per member (the layout and the encoded segments), once.
 */
export async function planArchive(options: ArchivePlanOptions): Promise<ArchivePlan> {
  validate(options);
  validateDest(options.dest);
  if (options.equalParts) throw new S3ZipError("ERR_S3_COPY_UNSUPPORTED", "equalParts cannot be combined with a distributed archive (parts have the segments' sizes); nothing was written");
  const { dest, signal } = options;
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  const location = options.plan ?? { bucket: dest.bucket, key: `${dest.key}.plan.json` };
  if (typeof location?.bucket !== "string" || typeof location.key !== "string" || location.bucket === "" || location.key === "") throw new TypeError("plan must be { bucket, key }");
  const { objects } = await resolveSources(options.src, resolveOptions({ ...options, client }, signal));
  if (objects.length === 0 && !options.allowEmpty) throw new S3ZipError("ERR_S3_EMPTY_SOURCE", "no source objects to zip");
  // The segment documents carry no keys, so a worker could not read (or copy) an SSE-C source.
  if (objects.some((x) => x.sseCustomerKey !== undefined)) {
    throw new S3ZipError("ERR_S3_COPY_UNSUPPORTED", "a source is encrypted with a customer key (SSE-C), which a distributed archive cannot pass to its workers; nothing was written", { bucket: dest.bucket, key: dest.key });
  }
  const mtime = new Date();
  const tooLarge = (err: unknown) => (err instanceof RangeError ? new S3ZipError("ERR_S3_TOO_LARGE", err.message, { cause: err, bucket: dest.bucket, key: dest.key }) : err);
  const build = (serverChecksums: boolean): PlanDocs => {
    try {
      return buildPlanDocs(objects, options, mtime, serverChecksums);
    } catch (err) {
      throw tooLarge(err);
    }
  };
  // Names, duplicates and Zip64 limits fail here, before anything is written, and so does an
  // archive S3's part limits cannot hold: planned for a server with checksums, whose smaller
  // default copy threshold gives the most parts (and is what AWS S3 uses, so usually final).
  let docs = build(true);
  await checkDestFree(client, dest, signal);
  const job = new JobState(dest, signal);
  let created: { uploadId?: string; checksums: boolean; fullObject: boolean } = { checksums: false, fullObject: false };
  try {
    if (docs.plan.mode === "copy") {
      created = await create(client, dest, true, job);
      job.detach();
      // The default copy threshold depends on whether the server computes CRCs while copying.
      if (!created.checksums && options.copyMinSize === undefined) docs = build(false);
    }
    const plan: ArchivePlan = {
      ...docs.plan,
      location,
      dest,
      uploadId: created.uploadId,
      checksums: created.checksums,
      fullObject: created.fullObject,
      ...(options.expectedBucketOwner !== undefined ? { expectedBucketOwner: options.expectedBucketOwner } : {}),
      createdAt: new Date().toISOString(),
    };
    const files: [string, unknown][] = docs.segments.map((d, i) => [planFiles.segment(location, i), d]);
    if (docs.final) files.push([planFiles.segment(location, "final"), docs.final]);
    await eachLimit(files, 16, ([key, d]) => putJson(client, location.bucket, key, d, signal));
    await putJson(client, location.bucket, location.key, plan, signal);
    return plan;
  } catch (err) {
    // Nothing may be left: the upload and every file written.
    const left: string[] = [];
    if (created.uploadId !== undefined) {
      if ((await abort(client, dest, created.uploadId)) !== undefined) left.push(`the multipart upload ${created.uploadId}`);
    }
    await removePlanFiles(client, location).catch(() => left.push(`plan files under s3://${location.bucket}/${planFiles.prefix(location)}`));
    const e = err instanceof S3ZipError ? err : mapS3Error(err, "ERR_S3_UPLOAD", { bucket: location.bucket, key: location.key, action: "planning" });
    if (left.length === 0) throw e;
    throw new S3ZipError(e.code as never, `${e.message}; left behind: ${left.join("; ")}`, { cause: e, bucket: dest.bucket, key: dest.key });
  } finally {
    job.detach();
  }
}

// ---------------------------------------------------------------------------------------------
// Segments

const opt = (o: ArchiveRunOptions) => {
  const concurrency = intOption("concurrency", o.concurrency, 1, MAX_CONCURRENCY) ?? 4;
  const partRetries = intOption("partRetries", o.partRetries, 0) ?? 2;
  return { concurrency, partRetries, readsPerPart: Math.max(1, Math.floor((o.prefetch?.objects ?? DEFAULT_PREFETCH_OBJECTS) / concurrency)), resumes: o.prefetch?.resumes ?? 5 };
};

/** A failure of a segment or the finalizer: the upload is kept for a rerun, and the message says so. */
function keptForRerun(plan: ArchivePlan, what: string, err: unknown): S3ZipError {
  // A failed source keeps its own code (ERR_S3_SOURCE_CHANGED, ERR_S3_READ...), which tells the
  // state machine whether a retry can help; only an SDK error is mapped here.
  const failure = s3SourceFailure(err);
  const e: ZipError & { bucket?: string; key?: string } = failure instanceof ZipError ? failure : mapS3Error(failure, "ERR_S3_UPLOAD", { bucket: plan.dest.bucket, key: plan.dest.key, action: what });
  const kept = plan.uploadId ? `the multipart upload ${plan.uploadId} on s3://${plan.dest.bucket}/${plan.dest.key} and ` : "";
  return new S3ZipError(e.code as never, `${what} failed: ${e.message}; kept for a rerun: ${kept}the plan s3://${plan.location.bucket}/${plan.location.key} (rerun it, resumeArchive, or abortArchive to remove everything)`, {
    cause: e,
    entry: e.entry,
    bucket: e.bucket,
    key: e.key,
  });
}

/** The local layout of a segment's members: their local headers do not depend on their offsets. */
function segmentLayout(plan: ArchivePlan, objects: readonly ResolvedObject[], mtimes: readonly Date[]): ZipLayout {
  return layoutForPlan({ entries: objects.map((x, i) => ({ name: x.name, size: x.size, mtime: mtimes[i] })), zip64: plan.zip64, duplicates: "allow", defaultMtime: new Date(0) });
}

interface CopyRun {
  parts: PartResult[];
  crcs: number[];
  crcSource: CrcSource[];
  stats: { bytesRead: number; bytesUploaded: number; bytesCopied: number };
}

/** Runs one copy-mode segment's parts into the plan's upload (the same tasks as `zipS3Keys`'s copy assembly). */
async function runCopyParts(o: ArchiveRunOptions, plan: ArchivePlan, doc: SegmentDoc, directory?: (crcs: number[]) => Uint8Array): Promise<CopyRun> {
  const { client } = o;
  const { concurrency, partRetries, readsPerPart, resumes } = opt(o);
  const { objects, mtimes } = decodeMembers(doc);
  const layout = segmentLayout(plan, objects, mtimes);
  const parts = decodeParts(doc.parts ?? [], (m) => layout.entries[m]!.localHeader.length);
  const copied = objects.map(() => false);
  for (const p of parts) if (p.kind === "copy") copied[p.member] = true;
  const readAheadBytes = o.prefetch?.bytes ?? DEFAULT_PREFETCH_BYTES;
  const tasks = assemblyTasks({ client, objects, entries: layout.entries, planOf: () => ({ parts, copied }), directory, concurrency, readsPerPart, readAheadBytes, resumes });
  const job = new JobState(plan.dest, o.signal);
  try {
    const written = await runParts({ client, dest: plan.dest, concurrency, partRetries, job, next: tasks.next }, job, plan.uploadId!, plan.checksums);
    return { parts: written, crcs: await tasks.crcs(), crcSource: tasks.crcSource, stats: tasks.stats };
  } catch {
    throw job.finalError();
  } finally {
    await tasks.settle();
    job.detach();
  }
}

/**
 * Runs segment `segment` of a plan and writes its result next to the plan. Idempotent: a rerun
 * (after a crash, a timeout, a retry) sends the same part numbers with the same bytes, and
 * replaces the result. A failure keeps the upload and the plan for a rerun (the error says so).
 *
 * Memory: partSize × (concurrency + 1) plus about 0.85 KB per member of the segment; in compress
 * mode partSize × (concurrency + 1) for the temporary object plus the prefetch budget.
 */
export async function runSegment(options: ArchiveRunOptions & { segment: number }): Promise<SegmentResult> {
  const o = await openPlan(options);
  const { plan } = o;
  intOption("segment", o.segment ?? NaN, 0, plan.segments - 1);
  if (plan.encrypted && o.password === undefined) throw new TypeError("password is required: the plan's members are encrypted");
  const doc = await loadSegment(o.client, plan, o.segment, o.signal);
  let result: SegmentResult;
  try {
    result = plan.mode === "copy" ? await copySegment(o, plan, doc) : await compressSegment(o, plan, doc);
  } catch (err) {
    throw keptForRerun(plan, `segment ${o.segment}`, err);
  }
  await putJson(o.client, plan.location.bucket, planFiles.result(plan.location, o.segment), result, o.signal);
  return result;
}

async function copySegment(o: ArchiveRunOptions, plan: ArchivePlan, doc: SegmentDoc): Promise<SegmentResult> {
  const run = await runCopyParts(o, plan, doc);
  return {
    version: 1,
    index: doc.index,
    uploadId: plan.uploadId,
    parts: run.parts.map((p) => [p.partNumber, p.etag, p.size, p.crc32 ?? null]),
    crcs: run.crcs,
    crcSource: run.crcSource,
    ...run.stats,
  };
}

/** A member's stored size as `layoutZip` takes it: compressed, before AES's salt, verifier and MAC. */
const compressedOf = (info: ZipEntryInfo) => info.compressedSize - (info.encrypted ? AES_OVERHEAD : 0);

/** Compress mode: the segment's members through the encoder into a temporary object. */
async function compressSegment(o: ArchiveRunOptions, plan: ArchivePlan, doc: SegmentDoc): Promise<SegmentResult> {
  const { client } = o;
  const { concurrency, partRetries } = opt(o);
  const { objects, mtimes } = decodeMembers(doc);
  const job = new AbortController();
  const onAbort = () => job.abort(o.signal?.reason);
  o.signal?.addEventListener("abort", onAbort, { once: true });
  // The members read as any S3 member of an archive is (pinned, size-checked, resumed).
  const members = s3ZipEntries(objects, { client, prefetch: o.prefetch, signal: job.signal });
  const infos: ZipEntryInfo[] = [];
  async function* lazy(): AsyncGenerator<ZipEntry> {
    for (const e of members.entries) yield e;
  }
  const zip = zipStream(lazy(), { method: plan.method, level: plan.level, zip64: plan.zip64, duplicates: "allow", password: o.password, signal: job.signal, onEntry: (e) => infos.push(e) });
  const key = planFiles.data(plan.location, doc.index);
  try {
    const up = await uploadStream({ client, dest: { bucket: plan.location.bucket, key, contentType: "application/octet-stream" }, body: zip, concurrency, partRetries, signal: job.signal });
    const crcs = infos.map((e) => e.crc32);
    const compressedSizes = infos.map(compressedOf);
    // The same layout function the finalizer uses must reproduce what the encoder wrote, byte
    // count for byte count; else the central directory would not match the records.
    const own = compressLayout(plan, objects, mtimes, crcs, compressedSizes);
    if (own.size !== up.size) {
      throw new S3ZipError("ERR_S3_PLAN", `segment ${doc.index}: the encoder wrote ${up.size} bytes, the layout says ${own.size} (a member just below 4 GiB whose Zip64 choice depends on its compressed size?)`);
    }
    return {
      version: 1,
      index: doc.index,
      parts: [],
      crcs,
      crcSource: crcs.map(() => "read"),
      compressedSizes,
      data: { key, etag: up.etag, size: up.size, recordsLength: own.centralDirectoryOffset },
      bytesRead: members.bytesFetched,
      bytesUploaded: up.size,
      bytesCopied: 0,
    };
  } finally {
    members.close();
    if (!zip.destroyed) zip.destroy();
    o.signal?.removeEventListener("abort", onAbort);
  }
}

function compressLayout(plan: ArchivePlan, objects: readonly ResolvedObject[], mtimes: readonly Date[], crcs: readonly number[], compressed: readonly number[]): ZipLayout {
  return layoutZip(
    objects.map((x, i) => ({ name: x.name, size: x.size, mtime: mtimes[i], crc32: crcs[i], compressedSize: plan.method === "deflate" ? compressed[i] : undefined })),
    // The password's value does not change any header (AE-2 stores CRC 0); only that there is one.
    { method: plan.method, level: plan.level, zip64: plan.zip64, duplicates: "allow", defaultMtime: new Date(0), password: plan.encrypted ? "-" : undefined },
  );
}

// ---------------------------------------------------------------------------------------------
// Finalize, abort, resume

async function loadResults(client: S3Client, plan: ArchivePlan, signal?: AbortSignal): Promise<(SegmentResult | undefined)[]> {
  const idx = Array.from({ length: plan.segments }, (_, i) => i);
  return eachLimit(idx, 16, (i) => getJson<SegmentResult>(client, plan.location.bucket, planFiles.result(plan.location, i), signal));
}

/** Every member of the plan with its archive name and mtime (the finalizer builds the directory from them). */
async function loadMembers(client: S3Client, plan: ArchivePlan, signal?: AbortSignal) {
  const idx: (number | "final")[] = Array.from({ length: plan.segments }, (_, i) => i);
  if (plan.mode === "copy") idx.push("final");
  const docs = await eachLimit(idx, 16, (i) => loadSegment(client, plan, i, signal));
  return docs.map((d) => ({ doc: d, ...decodeMembers(d) }));
}

/**
 * Completes a planned archive: gathers every segment's result, builds the central directory and
 * end records from them, uploads the last part, checks the size against the plan, and completes
 * (sending the archive's CRC-32 where the server verifies it). Removes the plan's files
 * afterwards unless `keepPlan`.
 *
 * Fails with ERR_S3_PLAN_INCOMPLETE, naming the segments, when some have no result yet; any
 * failure keeps the upload and the plan for a rerun, and the error says so.
 * Memory: about 0.4 KB per member of the whole archive (names, the directory) plus its last part.
 */
export async function finalizeArchive(options: ArchiveRunOptions & { keepPlan?: boolean }): Promise<ArchiveResult> {
  const o = await openPlan(options);
  const { client, plan } = o;
  const results = await loadResults(client, plan, o.signal);
  const missing = results.flatMap((r, i) => (r === undefined ? [i] : []));
  if (missing.length > 0) {
    throw new S3ZipError("ERR_S3_PLAN_INCOMPLETE", `segments ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ", ..." : ""} of ${plan.segments} have no result: run them first; the upload and the plan are kept`, {
      bucket: plan.location.bucket,
      key: plan.location.key,
    });
  }
  for (const r of results) {
    if (r!.uploadId !== plan.uploadId) throw new S3ZipError("ERR_S3_PLAN", `segment ${r!.index}'s result belongs to another upload (${r!.uploadId})`, { bucket: plan.location.bucket, key: plan.location.key });
  }
  const members = await loadMembers(client, plan, o.signal);
  let out: ArchiveResult;
  try {
    out = plan.mode === "copy" ? await finalizeCopy(o, plan, results as SegmentResult[], members) : await finalizeCompress(o, plan, results as SegmentResult[], members);
  } catch (err) {
    throw keptForRerun(plan, "finalize", err);
  }
  if (!o.keepPlan) await removePlanFiles(client, plan.location).catch(() => undefined);
  return out;
}

type Members = Awaited<ReturnType<typeof loadMembers>>;

async function finalizeCopy(o: ArchiveRunOptions, plan: ArchivePlan, results: SegmentResult[], members: Members): Promise<ArchiveResult> {
  const { client } = o;
  const last = members.at(-1)!;
  const crcsBefore = results.flatMap((r) => r.crcs);
  const all = members.flatMap((m) => m.objects.map((x, i) => ({ name: x.name, size: x.size, mtime: m.mtimes[i]! })));
  const directory = (finalCrcs: number[]) => {
    const archive = layoutForPlan({ entries: all, zip64: plan.zip64, duplicates: "allow", defaultMtime: new Date(0) }, [...crcsBefore, ...finalCrcs]);
    if (archive.size !== plan.size) throw new S3ZipError("ERR_S3_PLAN", `the archive laid out from the segments is ${archive.size} bytes, the plan says ${plan.size}`);
    return archive.centralDirectory;
  };
  const run = await runCopyParts(o, plan, last.doc, directory);
  const parts: PartResult[] = results.flatMap((r) => r.parts.map(([partNumber, etag, size, crc]) => ({ partNumber, etag, size, crc32: crc ?? undefined })));
  parts.push(...run.parts);
  parts.sort((a, b) => a.partNumber - b.partNumber);
  const size = parts.reduce((n, p) => n + p.size, 0);
  if (parts.length !== plan.parts || parts.some((p, i) => p.partNumber !== i + 1) || size !== plan.size) {
    throw new S3ZipError("ERR_S3_PLAN", `the segments wrote ${parts.length} parts of ${size} bytes; the plan has ${plan.parts} parts of ${plan.size} bytes`);
  }
  const job = new JobState(plan.dest, o.signal);
  try {
    if (plan.dest.overwrite === false) await checkDestFree(client, plan.dest, job.inner.signal);
    const done = await finish(client, plan.dest, await complete(client, plan.dest, plan.uploadId!, parts, { checksums: plan.checksums, fullObject: plan.fullObject }, job));
    await checkSize(client, plan.dest, done.versionId, plan.size!);
    return { bucket: plan.dest.bucket, key: plan.dest.key, size, entries: plan.members, parts: parts.length, etag: done.etag, versionId: done.versionId, checksumCRC32: done.checksumCRC32, checksumVerified: done.checksumVerified };
  } finally {
    job.detach();
  }
}

/** The object written is the size the plan promised (a last check after Complete). */
async function checkSize(client: S3Client, dest: S3Dest, versionId: string | undefined, size: number): Promise<void> {
  const head = await client.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: dest.key, VersionId: versionId }));
  if (head.ContentLength !== size) throw new S3ZipError("ERR_S3_UPLOAD", `s3://${dest.bucket}/${dest.key} is ${head.ContentLength} bytes after Complete; the plan says ${size}`, { bucket: dest.bucket, key: dest.key });
}

/**
 * Compress mode: the archive is the segments' records in order, then the central directory.
 * The same part planner as copy assembly cuts it: a segment's records of at least 5 MiB (plus
 * what lifts the part before it to 5 MiB) are copied by S3 from the temporary object; smaller
 * ones ("small tails") are read and merged into uploaded parts with their neighbours.
 */
async function finalizeCompress(o: ArchiveRunOptions, plan: ArchivePlan, results: SegmentResult[], members: Members): Promise<ArchiveResult> {
  const { client } = o;
  const { concurrency, partRetries, resumes } = opt(o);
  const crcs = results.flatMap((r) => r.crcs);
  const compressed = results.flatMap((r) => r.compressedSizes ?? []);
  const objects = members.flatMap((m) => m.objects);
  const mtimes = members.flatMap((m) => m.mtimes);
  const archive = compressLayout(plan, objects, mtimes, crcs, compressed);
  // Each segment's records must sit exactly where the archive's layout puts its members.
  let offset = 0;
  for (const [i, r] of results.entries()) {
    const first = members[i]!.doc.firstMember;
    const at = first < archive.entries.length ? archive.entries[first]!.offset : archive.centralDirectoryOffset;
    if (at !== offset) throw new S3ZipError("ERR_S3_PLAN", `segment ${i}'s records start at ${offset}, the layout puts them at ${at}`);
    offset += r.data!.recordsLength;
  }
  if (offset !== archive.centralDirectoryOffset) throw new S3ZipError("ERR_S3_PLAN", `the segments' records are ${offset} bytes, the layout says ${archive.centralDirectoryOffset}`);
  const temps: ResolvedObject[] = results.map((r) => ({ bucket: plan.location.bucket, key: r.data!.key, name: r.data!.key, size: r.data!.size, etag: r.data!.etag }));
  let pos = 0;
  const stitch = planCopyParts(
    results.map((r) => {
      const m = { offset: pos, headerLength: 0, dataLength: r.data!.recordsLength };
      pos += r.data!.recordsLength;
      return m;
    }),
    archive.centralDirectory.length,
    { copyMinSize: MIN_PART_SIZE, partSize: plan.partSize, maxCopyPartSize: plan.maxCopyPartSize },
  );
  if (stitch.parts.length > MAX_PARTS) throw new S3ZipError("ERR_S3_TOO_LARGE", `stitching needs ${stitch.parts.length} parts`);
  let i = 0;
  const next = async (): Promise<PartTask | null> => {
    const p = stitch.parts[i++];
    if (p === undefined) return null;
    if (p.kind === "copy") {
      const t = temps[p.member]!;
      return async (ctx) => void (await ctx.copy(p.partNumber, { bucket: t.bucket, key: t.key, etag: t.etag }, p.start, p.end));
    }
    return async (ctx) => {
      const body = Buffer.allocUnsafe(p.length);
      let at = 0;
      for (const piece of p.pieces) {
        if (piece.kind === "data") {
          await readRange(client, temps[piece.member]!, piece.start, piece.end, { signal: ctx.signal, resumes, onChunk: (c) => void (at += c.copy(body, at)) });
        } else if (piece.kind === "directory") {
          at += Buffer.from(archive.centralDirectory.buffer, archive.centralDirectory.byteOffset, archive.centralDirectory.length).copy(body, at);
        }
      }
      await ctx.upload(p.partNumber, body, zlib.crc32(body));
    };
  };
  if (plan.dest.overwrite === false) await checkDestFree(client, plan.dest, o.signal);
  const job = new JobState(plan.dest, o.signal);
  const up = await runMultipart({ client, dest: plan.dest, job, concurrency, partRetries, checksums: true, next });
  await checkSize(client, plan.dest, up.versionId, archive.size);
  return { bucket: plan.dest.bucket, key: plan.dest.key, size: up.size, entries: plan.members, parts: up.parts, etag: up.etag, versionId: up.versionId, checksumCRC32: up.checksumCRC32, checksumVerified: up.checksumVerified };
}

/** What {@link abortArchive} did. */
export interface AbortArchiveResult {
  /** False when there was no plan any more (an earlier abort or finalize removed it): nothing was done. */
  found: boolean;
  /** The multipart upload was aborted by this call. */
  uploadAborted: boolean;
  /** Plan files removed. */
  filesRemoved: number;
}

/**
 * Abandons a planned archive: aborts the destination multipart upload (once: a second abort finds
 * no plan and does nothing) and removes the plan's files, temporary objects included, unless
 * `keepPlan`. Run it after every worker stopped: a part uploaded after the abort fails with
 * NoSuchUpload, and a result written after it would be left behind.
 */
export async function abortArchive(options: {
  client: S3Client;
  plan: PlanRef;
  keepPlan?: boolean;
  /** The bucket-owner condition; default: the plan's. */
  expectedBucketOwner?: ExpectedBucketOwner;
}): Promise<AbortArchiveResult> {
  let o;
  try {
    o = await openPlan(options);
  } catch (err) {
    if (err instanceof S3ZipError && err.code === "ERR_S3_PLAN" && /no archive plan/.test(err.message)) return { found: false, uploadAborted: false, filesRemoved: 0 };
    throw err;
  }
  const { client, plan } = o;
  let uploadAborted = false;
  if (plan.uploadId !== undefined) {
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: plan.dest.bucket, Key: plan.dest.key, UploadId: plan.uploadId }));
      uploadAborted = true;
    } catch (err) {
      if (s3Code(err) !== "NoSuchUpload" && httpStatus(err) !== 404) {
        throw new S3ZipError("ERR_S3_UPLOAD", `aborting the multipart upload ${plan.uploadId} on s3://${plan.dest.bucket}/${plan.dest.key} failed; it and the plan remain (run abortArchive again)`, {
          cause: err,
          bucket: plan.dest.bucket,
          key: plan.dest.key,
          leftBehind: { upload: { bucket: plan.dest.bucket, key: plan.dest.key, uploadId: plan.uploadId } },
        });
      }
    }
  }
  const filesRemoved = o.keepPlan ? 0 : await removePlanFiles(client, plan.location);
  return { found: true, uploadAborted, filesRemoved };
}

/** The part numbers the upload holds, with their ETags (ListParts, paged). */
async function listedParts(client: S3Client, plan: ArchivePlan): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  let marker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(new ListPartsCommand({ Bucket: plan.dest.bucket, Key: plan.dest.key, UploadId: plan.uploadId, PartNumberMarker: marker }));
    } catch (err) {
      throw mapS3Error(err, "ERR_S3_UPLOAD", { bucket: plan.dest.bucket, key: plan.dest.key, action: "ListParts of" });
    }
    for (const p of page.Parts ?? []) out.set(p.PartNumber!, p.ETag ?? "");
    if (!page.IsTruncated || !page.NextPartNumberMarker) return out;
    marker = page.NextPartNumberMarker;
  }
}

/**
 * The segments of a plan still to run: those without a result, and (copy mode) those whose parts
 * `ListParts` does not show with the ETags of their result.
 */
export async function pendingSegments(caller: S3Client, ref: PlanRef, signal?: AbortSignal): Promise<number[]> {
  const plan = await loadPlan(caller, ref, signal);
  const client = withExpectedBucketOwner(caller, plan.expectedBucketOwner);
  const results = await loadResults(client, plan, signal);
  const listed = plan.mode === "copy" ? await listedParts(client, plan) : undefined;
  return results.flatMap((r, i) => {
    if (r === undefined) return [i];
    if (listed && r.parts.some(([n, etag]) => listed.get(n) !== etag)) return [i];
    return [];
  });
}

/**
 * Finishes a plan whose segments ran only in part: runs the segments that have no result, or
 * whose parts `ListParts` does not show with the ETags of that result, `segmentsAtOnce` at a
 * time (default 1), then finalizes. Returns the archive and the segments it ran.
 */
export async function resumeArchive(options: ArchiveRunOptions & { keepPlan?: boolean; segmentsAtOnce?: number }): Promise<ArchiveResult & { segmentsRun: number[] }> {
  const o = await openPlan(options);
  const { plan } = o;
  const todo = await pendingSegments(o.client, plan, o.signal);
  await eachLimit(todo, o.segmentsAtOnce ?? 1, (segment) => runSegment({ ...o, plan, segment }));
  const out = await finalizeArchive({ ...o, plan });
  return { ...out, segmentsRun: todo };
}
