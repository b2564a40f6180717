import { setMaxListeners } from "node:events";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  intOption,
  predictZipSize,
  zipStream,
  type DuplicatePolicy,
  type Zip64Mode,
  type ZipEntry,
  type ZipEntryInfo,
} from "@zipstream/core";
import type { CrcSource } from "./checksums.js";
import { COPY_MIN_SIZE_WITHOUT_CHECKSUMS, COPY_MIN_SIZE_WITH_CHECKSUMS, assembleByCopy, defaultCopyMinSize, layoutForPlan, planFor } from "./copy-assembly.js";
import { S3ZipError, s3SourceFailure } from "./errors.js";
import { JobState, checkClient, checkDestFree } from "./multipart.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
import { MAX_CONCURRENCY, MAX_HEAD_CONCURRENCY } from "./limits.js";
import { DEFAULT_PART_SIZE, MAX_PART_SIZE, MIN_PART_SIZE } from "./parts.js";
import { DEFAULT_PREFETCH_BYTES, DEFAULT_PREFETCH_OBJECTS, Prefetcher, validatePrefetch, type PrefetchOptions } from "./prefetch.js";
import { resolveSources, validateSourceOptions, type NameFn, type ResolveOptions, type ResolvedObject, type S3Source, type SourceSse } from "./sources.js";
import { uploadStream, validateDest, type S3Dest, type UploadOptions } from "./upload.js";
import { verifyS3Zip, type VerifyReport } from "./verify.js";

/** Progress of {@link zipS3Keys}. */
export interface ZipS3Progress {
  /** Entries fully written. */
  entries: number;
  /** Entries in the archive, once the sources are resolved. */
  entriesTotal?: number;
  /** Source bytes read into the archive. */
  bytesIn: number;
  /** Archive bytes produced. */
  bytesOut: number;
  partsUploaded: number;
  bytesUploaded: number;
}

/** One written entry and the object it came from (for manifests). */
export interface ZipS3EntryInfo extends ZipEntryInfo {
  bucket: string;
  key: string;
  versionId?: string;
  /** Where the entry's CRC-32 came from: S3's checksums ("s3-object", "s3-parts", "s3-copy") or bytes read here ("read"). */
  crcSource: CrcSource;
}

/** How the archive is built; see {@link ZipS3Options.assembly}. */
export type Assembly = "auto" | "stream" | "copy";

/** Options of {@link zipS3Keys}. */
export interface ZipS3Options {
  /**
   * An `@aws-sdk/client-s3` v3 client. For Ceph RGW 16 (and other S3 servers without flexible
   * checksums) create it with `forcePathStyle: true`, `requestChecksumCalculation: "WHEN_REQUIRED"`
   * and `responseChecksumValidation: "WHEN_REQUIRED"`. Uploaded bodies are Buffers with a
   * ContentLength, never aws-chunked streams (which Ceph rejects with 411).
   */
  client: S3Client;
  /** Objects to zip: `{ bucket, prefix }`, `{ bucket, keys }`, (async) iterables of `{ bucket, key }`, or an array of those. Buckets may differ. */
  src: S3Source | S3Source[];
  dest: S3Dest;
  /**
   * Default "store": objects in S3 are usually already compressed (images, video, archives,
   * parquet), deflate would spend CPU for little gain, and with store every size is known, so the
   * archive's exact size is predicted and the part size planned from it.
   */
  method?: "store" | "deflate";
  /** Deflate level 0-9. Default 6. */
  level?: number;
  /** Part size in bytes (5 MiB - 5 GiB). Default: planned from the predicted size (>= 8 MiB), else 8 MiB growing. */
  partSize?: number;
  /** Equal-size parts (Cloudflare R2). Default false. */
  equalParts?: boolean;
  /** Parts uploaded at once. Default 4. Memory: about partSize x (concurrency + 1). */
  concurrency?: number;
  /** Read-ahead budget: default 16 objects / 64 MiB, large objects in 8 MiB ranges. */
  prefetch?: PrefetchOptions;
  /** Key to entry name. Default: the key relative to the prefix; for explicit keys the key. */
  name?: NameFn;
  /** A missing source object: "error" (default) fails with ERR_S3_NO_SUCH_KEY before any upload; "skip" lists it in `result.skipped`. */
  onMissing?: "error" | "skip";
  /** No objects at all: false (default) fails with ERR_S3_EMPTY_SOURCE; true uploads an empty archive. */
  allowEmpty?: boolean;
  duplicates?: DuplicatePolicy;
  zip64?: Zip64Mode;
  /** AES-256 (AE-2) password for every entry. */
  password?: string;
  /**
   * Cancels the job: source reads and part uploads stop, the multipart upload is aborted, and the
   * promise rejects with `ERR_ABORTED` with nothing left at `dest`. An abort while the archive is
   * being completed lets CompleteMultipartUpload (or the single PutObject) finish, then deletes
   * the object it wrote (only that version on a versioned bucket) and rejects with `ERR_ABORTED`
   * saying so; see {@link UploadOptions.signal}. An abort after completion has no effect.
   * One listener is added to this signal per job, removed when the job settles.
   */
  signal?: AbortSignal;
  onProgress?: (p: ZipS3Progress) => void;
  onEntry?: (e: ZipS3EntryInfo) => void;
  /** HeadObject requests at once when sizes of explicit keys are looked up. Default 16. */
  headConcurrency?: number;
  /**
   * The account that must own the buckets: sent as `ExpectedBucketOwner` on every request the job
   * makes (listing, HEAD, GET, the upload, Complete, clean-up) and as `ExpectedSourceBucketOwner`
   * on copies, so that S3 refuses with 403 (ERR_S3_ACCESS_DENIED, whose message names the
   * condition) instead of reading from or writing to a bucket another account owns. A string for
   * every bucket, or `{ [bucket]: accountId }`. Default: no condition. See {@link ExpectedBucketOwner}.
   */
  expectedBucketOwner?: ExpectedBucketOwner;
  /**
   * How the archive is built. Default "auto".
   * - "stream": every member is read through this process and the archive is uploaded.
   * - "copy": S3 copies large stored members into the archive itself (UploadPartCopy); only
   *   local headers, small members, up to 5 MiB of head bytes per copied member (the part-size
   *   rule) and the central directory are uploaded from here. Byte-identical to "stream". Each
   *   member's CRC-32 comes from S3's checksums where the server has them, else from one read
   *   pass (bytes read, never re-uploaded). Rejects with ERR_S3_COPY_UNSUPPORTED, naming the
   *   reason, before anything is written, when the job cannot be copied: deflate, a password,
   *   `equalParts`, or no member of at least `copyMinSize` (5 MiB by default).
   * - "auto": "copy" when it applies and a member reaches `copyMinSize` (16 MiB by default, a size
   *   copying pays for on any server), else "stream".
   */
  assembly?: Assembly;
  /**
   * Copy assembly: smallest member S3 copies; smaller ones are read and uploaded (at least
   * 5 MiB, S3's part minimum). Default, decided when the upload is created: 5 MiB where the
   * server computes CRC-32s while copying (AWS S3, Ceph 20), 16 MiB where it does not (Ceph 16),
   * since each copied member must then also be read once for its CRC. Both measured in
   * BENCHMARKS.md. A copied member costs a copy request, a confirming HEAD, and up to 5 MiB of
   * uploaded head bytes when the bytes before it fall short of a 5 MiB part.
   */
  copyMinSize?: number;
  /** Copy assembly: largest copy part, default 5 GiB (S3's limit); at least 10 MiB. For tests and tuning. */
  maxCopyPartSize?: number;
  /**
   * After the upload, run `verifyS3Zip`'s structural check on the written object (a few ranged
   * GETs: end records, central directory, local headers) and return its report as
   * `result.verify`. A failed check does not delete the archive. Default false.
   */
  verify?: boolean;
  /**
   * A source in an archive storage class (GLACIER, DEEP_ARCHIVE, or an Intelligent-Tiering archive
   * tier) that is not restored: "error" (default) fails with ERR_S3_ARCHIVED before any upload;
   * "skip" lists it in `result.skipped`. Listed objects of those classes are HEADed to read their
   * restore status; a reference with `size` and `etag` is not HEADed, so an archived one fails at
   * its GET (ERR_S3_ARCHIVED, upload aborted).
   */
  onArchived?: "error" | "skip";
  /** SSE-C key for every source that does not give its own `sse` (HEAD and GET send it). Default: none. */
  sse?: SourceSse;
  /**
   * Most source objects in one job; the listing stops with ERR_S3_TOO_MANY_ENTRIES, before any
   * upload, when there are more. Default: no limit. Memory: about 0.5 KB per object plus its key
   * and name, held until the archive is complete.
   */
  maxEntries?: number;
  /**
   * Most bytes of per-object bookkeeping: 512 bytes per object plus twice its key's and name's
   * length; more fails with ERR_S3_TOO_MANY_ENTRIES while listing. Default: no limit.
   */
  maxEntryMemory?: number;
}

/** What {@link zipS3Keys} wrote. */
export interface ZipS3Result {
  bucket: string;
  key: string;
  /** Archive size in bytes. */
  size: number;
  entries: number;
  parts: number;
  etag: string;
  versionId?: string;
  zip64: boolean;
  /** `s3://bucket/key` of the objects skipped: missing under onMissing "skip", archived under onArchived "skip". */
  skipped: string[];
  /** The size predicted before the upload, when the archive's size was predictable (store). */
  predictedSize?: number;
  /** How the archive was built: "copy" (S3 copied the large members) or "stream". */
  assembly: "stream" | "copy";
  /** Why "auto" streamed, when copy assembly did not apply. */
  assemblyReason?: string;
  /** Member bytes S3 copied server-side (0 when streamed). */
  bytesCopied: number;
  /** Request-body bytes this process uploaded. */
  bytesUploaded: number;
  /** Source bytes this process fetched (GET bodies, resumes included). */
  bytesRead: number;
  /** Entries per source of their CRC-32. */
  crcSources: Record<CrcSource, number>;
  /**
   * The archive's CRC-32 in S3's base64 form, when the server computes checksums: sent at
   * Complete as the FULL_OBJECT checksum and verified by S3 over the whole archive.
   */
  checksumCRC32?: string;
  /** The structural check of the written archive, with `verify: true`. */
  verify?: VerifyReport;
}

/**
 * Validates every {@link ZipS3Options} option once, up front, before any request (a TypeError
 * names the option); shared with the archive plan. `dest` is checked by `validateDest`.
 */
export function validate(o: ZipS3Options): void {
  if (o === null || typeof o !== "object") throw new TypeError("options must be an object");
  checkClient(o.client);
  if (o.src === undefined || o.src === null) throw new TypeError("src is required");
  if (o.method !== undefined && o.method !== "store" && o.method !== "deflate") throw new TypeError(`method must be "store" or "deflate"`);
  intOption("level", o.level, 0, 9);
  intOption("concurrency", o.concurrency, 1, MAX_CONCURRENCY);
  intOption("headConcurrency", o.headConcurrency, 1, MAX_HEAD_CONCURRENCY);
  validatePrefetch(o.prefetch);
  intOption("partSize", o.partSize, MIN_PART_SIZE, MAX_PART_SIZE);
  bool("equalParts", o.equalParts);
  if (o.assembly !== undefined && o.assembly !== "auto" && o.assembly !== "stream" && o.assembly !== "copy") throw new TypeError(`assembly must be "auto", "stream" or "copy"`);
  intOption("copyMinSize", o.copyMinSize, MIN_PART_SIZE);
  intOption("maxCopyPartSize", o.maxCopyPartSize, 2 * MIN_PART_SIZE, MAX_PART_SIZE);
  if (o.onMissing !== undefined && o.onMissing !== "error" && o.onMissing !== "skip") throw new TypeError(`onMissing must be "error" or "skip"`);
  bool("allowEmpty", o.allowEmpty);
  if (o.duplicates !== undefined && o.duplicates !== "error" && o.duplicates !== "rename" && o.duplicates !== "allow") throw new TypeError(`duplicates must be "error", "rename" or "allow"`);
  if (o.password !== undefined && (typeof o.password !== "string" || o.password === "")) throw new TypeError("password must be a non-empty string");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
  for (const k of ["name", "onProgress", "onEntry"] as const) {
    if (o[k] !== undefined && typeof o[k] !== "function") throw new TypeError(`${k} must be a function`);
  }
  bool("verify", o.verify);
  validateSourceOptions(o);
  validateExpectedBucketOwner(o.expectedBucketOwner);
}

function bool(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "boolean") throw new TypeError(`${name} must be a boolean`);
}

/**
 * Zips S3 objects into one S3 object, streaming.
 *
 * Sources are resolved first (listing, HEADs), so missing keys and missing buckets fail before
 * any upload starts. Members are then read in order with bounded prefetch and fed to
 * `zipStream`, whose output is uploaded by {@link uploadStream}.
 *
 * Memory: peak about partSize x (concurrency + 1) + prefetch.bytes when streaming (defaults: 8 MiB x 5 + 64 MiB
 * ≈ 104 MiB), 2 x partSize x concurrency + prefetch.bytes with copy assembly (≈ 128 MiB), plus roughly 0.5 KB per source object for the resolved list and entry records — independent of
 * object sizes and of the archive's size when it is predictable.
 */
export async function zipS3Keys(caller: ZipS3Options): Promise<ZipS3Result> {
  validate(caller);
  validateDest(caller.dest);
  // Every request below goes through this client, so the owner condition is applied in one place.
  const options = { ...caller, client: withExpectedBucketOwner(caller.client, caller.expectedBucketOwner) };
  const { signal } = options;
  const method = options.method ?? "store";
  if (signal?.aborted) throw new S3ZipError("ERR_ABORTED", "zipS3Keys aborted before it started", { cause: signal.reason });

  // One signal of our own for the whole job, linked once to the caller's: every HEAD, GET and
  // upload request in flight (and the encoder, the prefetcher, the uploader) listens on it, often
  // dozens at once, so it has no listener limit. The caller's signal gets exactly one listener,
  // removed when the job settles, so many jobs can share it without a MaxListenersExceededWarning.
  const job = new AbortController();
  setMaxListeners(0, job.signal);
  const onAbort = () => job.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const result = await run(options, method, job.signal);
    if (options.verify) {
      result.verify = await verifyS3Zip({ client: options.client, bucket: result.bucket, key: result.key, versionId: result.versionId, signal: job.signal });
    }
    return result;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** How {@link zipS3Keys} and the archive planner resolve their sources: every source option, with its default. */
export function resolveOptions(o: ZipS3Options, signal: AbortSignal | undefined): ResolveOptions {
  return {
    client: o.client,
    name: o.name,
    onMissing: o.onMissing ?? "error",
    headConcurrency: o.headConcurrency ?? 16,
    onArchived: o.onArchived,
    sse: o.sse,
    maxEntries: o.maxEntries,
    maxEntryMemory: o.maxEntryMemory,
    signal,
  };
}

async function run(options: ZipS3Options, method: "store" | "deflate", signal: AbortSignal): Promise<ZipS3Result> {
  const { dest } = options;
  const { objects, skipped } = await resolveSources(options.src, resolveOptions(options, signal)).catch((err: unknown) => {
    if (signal.aborted) throw new S3ZipError("ERR_ABORTED", "zipS3Keys aborted", { cause: err });
    throw err;
  });
  if (objects.length === 0 && !options.allowEmpty) {
    throw new S3ZipError("ERR_S3_EMPTY_SOURCE", `no source objects to zip${skipped.length ? ` (${skipped.length} missing, skipped)` : ""}`);
  }

  const mtime = new Date();
  const entries: ZipEntry[] = objects.map((o) => ({ name: o.name, size: o.size, mtime: o.lastModified ?? mtime }));
  const assembly = options.assembly ?? "auto";
  const reason = copyUnsupported(options, method, objects, assembly === "copy");
  if (assembly === "copy" && reason !== undefined) {
    throw new S3ZipError("ERR_S3_COPY_UNSUPPORTED", `assembly "copy" cannot build this archive: ${reason}; nothing was written`, { bucket: dest.bucket, key: dest.key });
  }
  if (assembly !== "stream" && reason === undefined) return copyArchive(options, objects, entries, skipped, mtime, signal);
  return streamArchive(options, method, objects, entries, skipped, signal, assembly === "auto" ? reason : undefined);
}

/** What {@link planAssemblyReport} says a job would do. */
export interface AssemblyReport {
  assembly: "stream" | "copy";
  /** Why it streams when copy assembly does not apply. */
  reason?: string;
  /** Parts in total, and how many S3 copies. */
  parts?: number;
  copyParts?: number;
  /** Member bytes S3 copies. */
  bytesCopied: number;
  /** Request-body bytes uploaded from here. */
  bytesUploaded?: number;
  /** Source bytes read here: where the server has checksums, and where it has not (a CRC pass). */
  bytesToRead: { withChecksums: number; withoutChecksums: number };
}

/**
 * How `zipS3Keys` would build an archive of these objects (for `--dry-run`): the assembly it
 * chooses and, for copy assembly, its parts and the bytes copied, uploaded and read. Pure: no
 * request. Throws what `zipS3Keys` would (invalid names, duplicates, Zip64 limits).
 */
export function planAssemblyReport(
  objects: { name: string; size: number; lastModified?: Date }[],
  options: Pick<ZipS3Options, "method" | "password" | "equalParts" | "copyMinSize" | "maxCopyPartSize" | "partSize" | "zip64" | "duplicates" | "assembly">,
  serverChecksums = true,
): AssemblyReport {
  const method = options.method ?? "store";
  const total = objects.reduce((n, o) => n + o.size, 0);
  const reason = copyUnsupported(options, method, objects, options.assembly === "copy");
  if (options.assembly === "stream" || reason !== undefined) {
    return { assembly: "stream", reason: options.assembly === "stream" ? "assembly is \"stream\"" : reason, bytesCopied: 0, bytesToRead: { withChecksums: total, withoutChecksums: total } };
  }
  const layout = layoutForPlan({
    entries: objects.map((o) => ({ name: o.name, size: o.size, mtime: o.lastModified })),
    zip64: options.zip64,
    duplicates: options.duplicates,
    defaultMtime: new Date(),
  });
  const plan = planFor(layout, {
    copyMinSize: options.copyMinSize ?? defaultCopyMinSize(serverChecksums),
    partSize: options.partSize ?? DEFAULT_PART_SIZE,
    maxCopyPartSize: options.maxCopyPartSize,
  });
  return {
    assembly: "copy",
    parts: plan.parts.length,
    copyParts: plan.parts.filter((p) => p.kind === "copy").length,
    bytesCopied: plan.bytesCopied,
    bytesUploaded: plan.bytesUploaded,
    bytesToRead: { withChecksums: total - plan.bytesCopied, withoutChecksums: total },
  };
}

/**
 * Why copy assembly cannot build this job, or undefined when it can. Asked for explicitly
 * (`forced`), a member of S3's 5 MiB part minimum suffices; `"auto"` copies only when a member
 * reaches 16 MiB (the threshold that pays on any server, with or without checksums), so that it
 * never trades a stream for a copy assembly that copies nothing.
 */
function copyUnsupported(o: Pick<ZipS3Options, "password" | "equalParts" | "copyMinSize">, method: "store" | "deflate", objects: { size: number; sseCustomerKey?: string }[], forced: boolean): string | undefined {
  if (method !== "store") return `method is "${method}" (only stored members are the source objects' own bytes)`;
  if (objects.some((x) => x.sseCustomerKey !== undefined)) return "a source is encrypted with a customer key (SSE-C), which copy assembly does not send";
  if (o.password !== undefined) return "a password is set (encrypted members differ from the source bytes)";
  if (o.equalParts) return "equalParts is set (copied parts have the members' sizes)";
  const min = o.copyMinSize ?? (forced ? COPY_MIN_SIZE_WITH_CHECKSUMS : COPY_MIN_SIZE_WITHOUT_CHECKSUMS);
  if (!objects.some((x) => x.size >= min)) return `no member is at least copyMinSize (${min} bytes)`;
  return undefined;
}

const noCrcSources = (): Record<CrcSource, number> => ({ "s3-object": 0, "s3-parts": 0, "s3-copy": 0, read: 0 });

async function copyArchive(
  options: ZipS3Options,
  objects: ResolvedObject[],
  entries: ZipEntry[],
  skipped: string[],
  mtime: Date,
  signal: AbortSignal,
): Promise<ZipS3Result> {
  const { client, dest } = options;
  const concurrency = options.concurrency ?? 4;
  const plan = {
    entries,
    zip64: options.zip64,
    duplicates: options.duplicates,
    defaultMtime: mtime,
    copyMinSize: options.copyMinSize,
    partSize: options.partSize ?? DEFAULT_PART_SIZE,
    maxCopyPartSize: options.maxCopyPartSize,
  };
  // Names, duplicates and Zip64 limits fail here, before anything is uploaded, and so does an
  // archive S3's part limits cannot hold (planned with the smallest threshold: the most parts).
  let planned;
  try {
    const layout = layoutForPlan(plan);
    planFor(layout, { ...plan, copyMinSize: plan.copyMinSize ?? COPY_MIN_SIZE_WITH_CHECKSUMS });
    planned = { layout };
  } catch (err) {
    if (err instanceof RangeError) throw new S3ZipError("ERR_S3_TOO_LARGE", err.message, { cause: err, bucket: dest.bucket, key: dest.key });
    throw err;
  }
  const progress: ZipS3Progress = { entries: 0, entriesTotal: objects.length, bytesIn: 0, bytesOut: 0, partsUploaded: 0, bytesUploaded: 0 };
  await checkDestFree(client, dest, signal);
  const job = new JobState(dest, signal);
  const out = await assembleByCopy({
    ...plan,
    layout: planned.layout,
    client,
    dest,
    objects,
    concurrency,
    partRetries: 2,
    readsPerPart: Math.max(1, Math.floor((options.prefetch?.objects ?? DEFAULT_PREFETCH_OBJECTS) / concurrency)),
    readAheadBytes: options.prefetch?.bytes ?? DEFAULT_PREFETCH_BYTES,
    resumes: options.prefetch?.resumes ?? 5,
    job,
    onProgress: (p) => {
      progress.partsUploaded = p.parts;
      progress.bytesUploaded = p.bytes;
      progress.bytesOut = p.bytes;
      progress.entries = p.entriesDone;
      options.onProgress?.({ ...progress });
    },
  });
  const crcSources = noCrcSources();
  out.layout.entries.forEach((e, i) => {
    const o = objects[i]!;
    crcSources[out.crcSource[i]!]++;
    options.onEntry?.({
      name: e.name,
      type: "file",
      method: "store",
      encrypted: false,
      size: e.size,
      compressedSize: e.dataLength,
      crc32: out.crc32[i]!,
      offset: e.offset,
      zip64: e.zip64,
      bucket: o.bucket,
      key: o.key,
      versionId: o.versionId,
      crcSource: out.crcSource[i]!,
    });
  });
  progress.entries = objects.length;
  progress.bytesIn = out.layout.entries.reduce((n, e) => n + e.size, 0);
  progress.bytesOut = out.size;
  options.onProgress?.({ ...progress });
  return {
    bucket: dest.bucket,
    key: dest.key,
    size: out.size,
    entries: objects.length,
    parts: out.parts,
    etag: out.etag,
    versionId: out.versionId,
    zip64: out.layout.zip64,
    skipped,
    predictedSize: planned.layout.size,
    assembly: "copy",
    bytesCopied: out.bytesCopied,
    bytesUploaded: out.bytesUploaded,
    bytesRead: out.bytesRead,
    crcSources,
    checksumCRC32: out.checksumCRC32,
  };
}

async function streamArchive(
  options: ZipS3Options,
  method: "store" | "deflate",
  objects: ResolvedObject[],
  baseEntries: ZipEntry[],
  skipped: string[],
  signal: AbortSignal,
  assemblyReason: string | undefined,
): Promise<ZipS3Result> {
  const { client, dest } = options;
  const prefetcher = new Prefetcher(client, objects, options.prefetch, signal);
  const entries: ZipEntry[] = baseEntries.map((e, i) => ({ ...e, source: () => prefetcher.open(i) }));
  const zipOptions = {
    method,
    level: options.level,
    zip64: options.zip64,
    duplicates: options.duplicates,
    password: options.password,
  };
  const predictedSize = predictZipSize(entries, zipOptions);

  const progress: ZipS3Progress = {
    entries: 0,
    entriesTotal: objects.length,
    bytesIn: 0,
    bytesOut: 0,
    partsUploaded: 0,
    bytesUploaded: 0,
  };
  const report = () => options.onProgress?.({ ...progress });
  let entryIndex = 0;
  const crcSources = noCrcSources();
  async function* lazyEntries(): AsyncGenerator<ZipEntry> {
    // Handed over one at a time: the encoder pulls the next entry only when it needs it.
    for (const e of entries) yield e;
  }
  const zip = zipStream(lazyEntries(), {
    ...zipOptions,
    signal,
    onProgress: (p) => {
      progress.entries = p.entries;
      progress.bytesIn = p.bytesIn;
      progress.bytesOut = p.bytesOut;
      report();
    },
    onEntry: (info) => {
      const o = objects[entryIndex++];
      crcSources.read++;
      if (options.onEntry && o) options.onEntry({ ...info, bucket: o.bucket, key: o.key, versionId: o.versionId, crcSource: "read" });
    },
  });
  prefetcher.pump();
  try {
    const up = await uploadStream({
      client,
      dest,
      body: zip,
      totalSize: predictedSize,
      partSize: options.partSize,
      equalParts: options.equalParts,
      concurrency: options.concurrency,
      signal,
      onProgress: (p) => {
        progress.partsUploaded = p.partsUploaded;
        progress.bytesUploaded = p.bytesUploaded;
        report();
      },
    });
    const stats = zip.stats;
    progress.entries = stats.entries;
    progress.bytesIn = stats.bytesIn;
    progress.bytesOut = stats.bytesOut;
    report();
    return {
      bucket: up.bucket,
      key: up.key,
      size: up.size,
      entries: stats.entries,
      parts: up.parts,
      etag: up.etag,
      versionId: up.versionId,
      zip64: stats.zip64,
      skipped,
      predictedSize,
      assembly: "stream",
      assemblyReason,
      bytesCopied: 0,
      bytesUploaded: up.size,
      bytesRead: prefetcher.bytesFetched,
      crcSources,
      checksumCRC32: up.checksumCRC32,
    };
  } catch (err) {
    throw s3SourceFailure(err);
  } finally {
    prefetcher.close();
    if (!zip.destroyed) zip.destroy();
  }
}
