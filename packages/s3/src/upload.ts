import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import zlib from "node:zlib";
import { ZipError, intOption } from "@zipstream/core";
import { chunksOf, isNodeReadable } from "./chunks.js";
import { S3ZipError } from "./errors.js";
import { JobState, checkClient, checkDestFree, putSingle, runMultipart, validateDest, type PartTask, type S3Dest } from "./multipart.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";
import { MAX_CONCURRENCY } from "./limits.js";
import { MAX_PARTS, planParts, type PartPlan } from "./parts.js";

export { validateDest, type S3Dest };

/** Progress of an upload. */
export interface UploadProgress {
  partsUploaded: number;
  bytesUploaded: number;
}

/** Options of {@link uploadStream}. */
export interface UploadOptions {
  /**
   * An `@aws-sdk/client-s3` v3 client. For Ceph RGW 16 configure it with
   * `forcePathStyle: true`, `requestChecksumCalculation: "WHEN_REQUIRED"` and
   * `responseChecksumValidation: "WHEN_REQUIRED"` (Ceph has no flexible checksums). Bodies are
   * always Buffers with a known ContentLength, so they are never sent aws-chunked (Ceph: 411).
   */
  client: S3Client;
  dest: S3Dest;
  /** The bytes to upload. Read with backpressure: at most one part ahead of the uploads. */
  body: Readable | AsyncIterable<Uint8Array>;
  /** The body's exact length when known: the part size is planned from it. */
  totalSize?: number;
  /** See {@link PlanPartsOptions.partSize}. */
  partSize?: number;
  /** See {@link PlanPartsOptions.equalParts}. */
  equalParts?: boolean;
  /**
   * Parts uploaded at once. Default 4. Peak memory is about partSize x (concurrency + 1): one
   * buffer per part in flight plus the one being filled.
   */
  concurrency?: number;
  /**
   * Extra attempts of a failed UploadPart on top of the SDK's own retry strategy, with the same
   * bytes (the part's buffer is kept until the part succeeds). Default 2.
   */
  partRetries?: number;
  /**
   * Cancels the upload; the promise rejects with `ERR_ABORTED` (its `cause` is the signal's
   * reason) and nothing is left at `dest`: reading stops, in-flight UploadPart requests are
   * cancelled, and the multipart upload is aborted exactly once.
   *
   * Three requests are never cancelled, because cancelling a request on the client cannot undo
   * what the server already did: CreateMultipartUpload (an upload created but never answered would
   * be an orphan the library cannot abort), CompleteMultipartUpload and the single PutObject (the
   * object may already be written). They run to the end, bounded by the client's own timeouts and
   * retries (at most one part's bytes for PutObject). If the signal fired while one was in flight:
   * a created upload is aborted; a failed Complete or PutObject leaves nothing to remove; a
   * successful one is deleted again (DeleteObject with the VersionId it returned, so on a
   * versioned bucket only this run's version goes and the previous one stays current), and the
   * `ERR_ABORTED` message says the archive was completed and then removed.
   *
   * An abort after Complete (or PutObject) has settled successfully has no effect: the promise
   * resolves. The library adds one listener to this signal, removed when the promise settles.
   */
  signal?: AbortSignal;
  /** Called after each part (or the single PutObject) succeeds. */
  onProgress?: (p: UploadProgress) => void;
  /** The account that must own `dest.bucket`, sent on every request; see {@link ExpectedBucketOwner}. Default: none. */
  expectedBucketOwner?: ExpectedBucketOwner;
}

/** What {@link uploadStream} uploaded. */
export interface UploadResult {
  bucket: string;
  key: string;
  /** Bytes uploaded (the object's size). */
  size: number;
  /** Number of parts; 1 for a single PutObject. */
  parts: number;
  /** True when the object was written with one PutObject. */
  singlePut: boolean;
  etag: string;
  versionId?: string;
  /** The plan used. */
  plan: PartPlan;
  /**
   * The archive's CRC-32 (base64, as S3 writes checksums), when the server computes checksums:
   * sent at Complete as the FULL_OBJECT checksum, which S3 verifies end to end.
   */
  checksumCRC32?: string;
}

/**
 * Reads an async iterator of chunks into buffers of exact sizes (one copy per byte). Calls are
 * serialised by the caller; `next(size)` returns the next part's bytes, shorter only at the end,
 * or `null` when the source is exhausted.
 */
class PartReader {
  private carry: Uint8Array | undefined;
  private done = false;
  /**
   * Part buffers whose upload succeeded, reused for later parts: a fresh 8 MiB allocation per
   * part cost page faults on first touch and drove V8's external-memory garbage collections
   * (about 100 full collections per GiB). At most `poolMax` are kept, within the documented bound.
   */
  private readonly pool: Buffer[] = [];
  constructor(
    private readonly it: AsyncIterator<Uint8Array>,
    private readonly poolMax: number,
  ) {}

  /** Gives back a part buffer the server has acknowledged (its bytes are no longer needed). */
  release(buf: Buffer): void {
    if (this.pool.length < this.poolMax && buf.byteOffset === 0 && buf.length === buf.buffer.byteLength) this.pool.push(buf);
  }

  async next(size: number): Promise<Buffer | null> {
    if (this.done && this.carry === undefined) return null;
    let buf = this.pool.pop();
    if (buf === undefined || buf.length !== size) buf = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      let chunk = this.carry;
      this.carry = undefined;
      if (chunk === undefined) {
        if (this.done) break;
        const r = await this.it.next();
        if (r.done) {
          this.done = true;
          break;
        }
        chunk = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      }
      const take = Math.min(size - filled, chunk.length);
      buf.set(take === chunk.length ? chunk : chunk.subarray(0, take), filled);
      filled += take;
      if (take < chunk.length) this.carry = chunk.subarray(take);
    }
    if (filled === 0) return null;
    return filled === size ? buf : buf.subarray(0, filled);
  }

  /** True when no byte is left (pulls one chunk ahead if needed). */
  async atEnd(): Promise<boolean> {
    if (this.carry !== undefined && this.carry.length > 0) return false;
    if (this.done) return true;
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        return true;
      }
      if (r.value.length > 0) {
        this.carry = r.value;
        return false;
      }
    }
  }
}

/**
 * Uploads a stream to S3: a single PutObject when it fits one part, else a multipart upload with
 * `concurrency` workers sharing one part reader.
 *
 * Memory: about partSize x (concurrency + 1) bytes (each part is a Buffer kept until its upload
 * succeeds, so a retried part sends the same bytes).
 *
 * On any failure or abort: reading stops (a Readable body is destroyed), every in-flight request
 * is cancelled (except the three that create state on the server: see {@link UploadOptions.signal})
 * and awaited, the multipart upload is aborted exactly once, and the promise rejects
 * with an {@link S3ZipError} (`ERR_ABORTED`, `ERR_S3_UPLOAD`, `ERR_S3_NO_SUCH_BUCKET`,
 * `ERR_S3_ACCESS_DENIED`, `ERR_S3_READ`) or the body's own `ZipError`, with the original `cause`.
 * Nothing is created at `dest` then.
 */
export async function uploadStream(options: UploadOptions): Promise<UploadResult> {
  const { dest, body } = options;
  checkClient(options.client);
  validateDest(dest);
  validateExpectedBucketOwner(options.expectedBucketOwner);
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  const concurrency = intOption("concurrency", options.concurrency, 1, MAX_CONCURRENCY) ?? 4;
  const partRetries = intOption("partRetries", options.partRetries, 0) ?? 2;
  let plan: PartPlan;
  try {
    plan = planParts(options.totalSize, { partSize: options.partSize, equalParts: options.equalParts });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new S3ZipError("ERR_S3_TOO_LARGE", err.message, { cause: err, bucket: dest.bucket, key: dest.key });
    }
    throw err;
  }
  const where = { bucket: dest.bucket, key: dest.key };
  const destroyBody = (err: unknown) => {
    const r = body as Partial<Readable>;
    if (typeof r.destroy === "function" && !r.destroyed) r.destroy(err instanceof Error ? err : undefined);
  };
  // A Readable is read chunk by chunk as pushed (its own iterator would concatenate, a copy).
  const reader = new PartReader(
    isNodeReadable(body) ? chunksOf(body) : (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator](),
    concurrency + 1,
  );
  const bodyError = (err: unknown): unknown =>
    err instanceof ZipError ? err : new S3ZipError("ERR_S3_READ", `reading the body for s3://${dest.bucket}/${dest.key} failed`, { cause: err, ...where });
  let partsUploaded = 0;
  let bytesUploaded = 0;
  const progress = (bytes: number) => {
    partsUploaded++;
    bytesUploaded += bytes;
    options.onProgress?.({ partsUploaded, bytesUploaded });
  };
  const result = (size: number, parts: number, singlePut: boolean, etag: string, versionId: string | undefined, checksumCRC32?: string): UploadResult => ({
    bucket: dest.bucket,
    key: dest.key,
    size,
    parts,
    singlePut,
    etag,
    versionId,
    plan,
    checksumCRC32,
  });

  // The job's failure state from the start: an abort while the first part is read destroys the body.
  const job = new JobState(dest, options.signal, destroyBody);

  // Step 1: the first part decides between one PutObject and a multipart upload.
  let first: Buffer | null;
  let single: boolean;
  try {
    if (job.failed) throw job.failure;
    await checkDestFree(client, dest, job.inner.signal);
    first = await reader.next(plan.sizeOf(1)).catch((err) => Promise.reject(bodyError(err)));
    single = first === null || first.length < plan.sizeOf(1) || (await reader.atEnd().catch((err) => Promise.reject(bodyError(err))));
    if (job.failed) throw job.failure;
  } catch (err) {
    job.fail(err);
    job.detach();
    throw job.finalError();
  }

  if (single) {
    const bytes = first ?? Buffer.alloc(0);
    try {
      const out = await putSingle(client, dest, bytes, job);
      progress(bytes.length);
      return result(bytes.length, 1, true, out.etag, out.versionId, undefined);
    } finally {
      job.detach();
    }
  }

  // Step 2: the parts, `concurrency` workers over one schedule that reads the body in order.
  let nextNumber = 1;
  let pending: Buffer | null = first;
  const next = async (): Promise<PartTask | null> => {
    const n = nextNumber;
    let bytes: Buffer | null;
    if (pending !== null) {
      bytes = pending;
      pending = null;
    } else {
      try {
        bytes = await reader.next(plan.sizeOf(n));
      } catch (err) {
        throw bodyError(err);
      }
    }
    if (bytes === null) return null;
    if (n > MAX_PARTS) {
      throw new S3ZipError("ERR_S3_TOO_LARGE", `the archive needs more than ${MAX_PARTS} parts with this plan (max ${plan.maxBytes} bytes)`, where);
    }
    nextNumber++;
    const part = bytes;
    return async (ctx) => {
      // The part's CRC-32 is sent as its checksum where the server computes them (cheap next to
      // the SHA-256 the SDK signs the body with), and folds into the archive's CRC-32.
      await ctx.upload(n, part, ctx.checksums ? zlib.crc32(part) : undefined);
      progress(part.length);
      // Acknowledged: the SDK is done with these bytes (a retry would have happened inside upload).
      reader.release(part);
    };
  };
  const up = await runMultipart({ client, dest, job, concurrency, partRetries, checksums: true, next });
  return result(up.size, up.parts, false, up.etag, up.versionId, up.checksumCRC32);
}
