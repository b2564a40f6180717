import { setMaxListeners } from "node:events";
import type { S3Client } from "@aws-sdk/client-s3";
import {
  ZipError,
  predictZipSize,
  zipStream,
  type DuplicatePolicy,
  type Zip64Mode,
  type ZipEntry,
  type ZipEntryInfo,
} from "@zipstream/core";
import { S3ZipError } from "./errors.js";
import { Prefetcher, type PrefetchOptions } from "./prefetch.js";
import { resolveSources, type NameFn, type S3Source } from "./sources.js";
import { uploadStream, validateDest, type S3Dest, type UploadOptions } from "./upload.js";

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
}

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
  /** `s3://bucket/key` of the missing objects skipped under onMissing "skip". */
  skipped: string[];
  /** The size predicted before the upload, when the archive's size was predictable (store). */
  predictedSize?: number;
}

function optInt(name: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v !== undefined && (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)) {
    throw new TypeError(`${name} must be an integer from ${min} to ${max}; got ${String(v)}`);
  }
}

function validate(o: ZipS3Options): void {
  if (o === null || typeof o !== "object") throw new TypeError("options must be an object");
  if (!o.client || typeof (o.client as { send?: unknown }).send !== "function") {
    throw new TypeError("client must be an @aws-sdk/client-s3 S3Client");
  }
  if (o.src === undefined || o.src === null) throw new TypeError("src is required");
  if (o.method !== undefined && o.method !== "store" && o.method !== "deflate") throw new TypeError(`method must be "store" or "deflate"`);
  optInt("level", o.level, 0, 9);
  optInt("concurrency", o.concurrency, 1, 10_000);
  optInt("headConcurrency", o.headConcurrency, 1, 1000);
  if (o.prefetch !== undefined) {
    if (typeof o.prefetch !== "object" || o.prefetch === null) throw new TypeError("prefetch must be an object { objects, bytes }");
    optInt("prefetch.objects", o.prefetch.objects, 1);
    optInt("prefetch.bytes", o.prefetch.bytes, 1);
    optInt("prefetch.rangeSize", o.prefetch.rangeSize, 1);
    optInt("prefetch.resumes", o.prefetch.resumes, 0);
  }
  if (o.onMissing !== undefined && o.onMissing !== "error" && o.onMissing !== "skip") throw new TypeError(`onMissing must be "error" or "skip"`);
  if (o.name !== undefined && typeof o.name !== "function") throw new TypeError("name must be a function (key, src) => string");
}

/**
 * Zips S3 objects into one S3 object, streaming.
 *
 * Sources are resolved first (listing, HEADs), so missing keys and missing buckets fail before
 * any upload starts. Members are then read in order with bounded prefetch and fed to
 * `zipStream`, whose output is uploaded by {@link uploadStream}.
 *
 * Memory: peak about partSize x (concurrency + 1) + prefetch.bytes (defaults: 8 MiB x 5 + 64 MiB
 * ≈ 104 MiB), plus roughly 0.5 KB per source object for the resolved list and entry records — independent of
 * object sizes and of the archive's size when it is predictable.
 */
export async function zipS3Keys(options: ZipS3Options): Promise<ZipS3Result> {
  validate(options);
  validateDest(options.dest);
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
    return await run(options, method, job.signal);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

async function run(options: ZipS3Options, method: "store" | "deflate", signal: AbortSignal): Promise<ZipS3Result> {
  const { client, dest } = options;
  const { objects, skipped } = await resolveSources(options.src, {
    client,
    name: options.name,
    onMissing: options.onMissing ?? "error",
    headConcurrency: options.headConcurrency ?? 16,
    signal,
  }).catch((err: unknown) => {
    if (signal.aborted) throw new S3ZipError("ERR_ABORTED", "zipS3Keys aborted", { cause: err });
    throw err;
  });
  if (objects.length === 0 && !options.allowEmpty) {
    throw new S3ZipError("ERR_S3_EMPTY_SOURCE", `no source objects to zip${skipped.length ? ` (${skipped.length} missing, skipped)` : ""}`);
  }

  const prefetcher = new Prefetcher(client, objects, options.prefetch, signal);
  const entries: ZipEntry[] = objects.map((o, i) => ({
    name: o.name,
    size: o.size,
    mtime: o.lastModified,
    source: () => prefetcher.open(i),
  }));
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
      if (options.onEntry && o) options.onEntry({ ...info, bucket: o.bucket, key: o.key, versionId: o.versionId });
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
    };
  } catch (err) {
    // The encoder wraps a failing source as ERR_SOURCE; surface our typed S3 error instead.
    if (err instanceof ZipError && err.code === "ERR_SOURCE" && err.cause instanceof S3ZipError) throw err.cause;
    throw err;
  } finally {
    prefetcher.close();
    if (!zip.destroyed) zip.destroy();
  }
}
