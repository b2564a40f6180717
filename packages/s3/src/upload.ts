import { setMaxListeners } from "node:events";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompleteMultipartUploadCommandOutput,
  type CompletedPart,
  type PutObjectCommandOutput,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { ZipError } from "@zipstream/core";
import { chunksOf, isNodeReadable } from "./chunks.js";
import { S3ZipError, httpStatus, isAbortError, mapS3Error } from "./errors.js";
import { MAX_PARTS, planParts, type PartPlan } from "./parts.js";

/** The destination object and the settings it is created with. */
export interface S3Dest {
  bucket: string;
  /** Object key: non-empty, at most 1,024 bytes of UTF-8. */
  key: string;
  /** Default "application/zip". */
  contentType?: string;
  contentDisposition?: string;
  storageClass?: string;
  /** e.g. "AES256" or "aws:kms". */
  serverSideEncryption?: string;
  sseKmsKeyId?: string;
  metadata?: Record<string, string>;
  /** Object tags, sent as the `x-amz-tagging` header. */
  tags?: Record<string, string>;
  cacheControl?: string;
}

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
}

const encoder = new TextEncoder();

/** Checks a destination; throws ERR_S3_INVALID_DEST. */
export function validateDest(dest: S3Dest): void {
  if (dest === null || typeof dest !== "object") throw new TypeError("dest must be an object { bucket, key }");
  if (typeof dest.bucket !== "string" || dest.bucket === "") {
    throw new S3ZipError("ERR_S3_INVALID_DEST", "dest.bucket must be a non-empty string");
  }
  if (typeof dest.key !== "string" || dest.key === "") {
    throw new S3ZipError("ERR_S3_INVALID_DEST", "dest.key must be a non-empty string", { bucket: dest.bucket });
  }
  const bytes = encoder.encode(dest.key).length;
  if (bytes > 1024) {
    throw new S3ZipError("ERR_S3_INVALID_DEST", `dest.key is ${bytes} bytes of UTF-8; S3 keys are at most 1024`, {
      bucket: dest.bucket,
    });
  }
}

function objectParams(dest: S3Dest) {
  return {
    Bucket: dest.bucket,
    Key: dest.key,
    ContentType: dest.contentType ?? "application/zip",
    ContentDisposition: dest.contentDisposition,
    CacheControl: dest.cacheControl,
    StorageClass: dest.storageClass as StorageClass | undefined,
    ServerSideEncryption: dest.serverSideEncryption as ServerSideEncryption | undefined,
    SSEKMSKeyId: dest.sseKmsKeyId,
    Metadata: dest.metadata,
    Tagging: dest.tags === undefined ? undefined : new URLSearchParams(dest.tags).toString(),
  };
}

function checkPositiveInt(name: string, value: unknown, dflt: number, min = 1): number {
  if (value === undefined) return dflt;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new TypeError(`${name} must be an integer >= ${min}; got ${String(value)}`);
  }
  return value;
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

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Request failures worth another attempt with the same bytes: network errors and 5xx/429. */
function retryable(err: unknown): boolean {
  if (isAbortError(err)) return false;
  const status = httpStatus(err);
  if (status === undefined) return true;
  return status >= 500 || status === 429;
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
  const { client, dest, body } = options;
  if (client === null || typeof client !== "object" || typeof (client as { send?: unknown }).send !== "function") {
    throw new TypeError("client must be an @aws-sdk/client-s3 S3Client");
  }
  validateDest(dest);
  const concurrency = checkPositiveInt("concurrency", options.concurrency, 4);
  const partRetries = checkPositiveInt("partRetries", options.partRetries, 2, 0);
  let plan: PartPlan;
  try {
    plan = planParts(options.totalSize, { partSize: options.partSize, equalParts: options.equalParts });
  } catch (err) {
    if (err instanceof RangeError) {
      throw new S3ZipError("ERR_S3_TOO_LARGE", err.message, { cause: err, bucket: dest.bucket, key: dest.key });
    }
    throw err;
  }
  const params = objectParams(dest);
  const where = { bucket: dest.bucket, key: dest.key };

  const destroyBody = (err: unknown) => {
    const r = body as Partial<Readable>;
    if (typeof r.destroy === "function" && !r.destroyed) r.destroy(err instanceof Error ? err : undefined);
  };
  // One controller cancels every request we issue, on the caller's abort or on our own failure.
  const inner = new AbortController();
  setMaxListeners(0, inner.signal); // one listener per request in flight
  let failure: unknown;
  const fail = (err: unknown) => {
    if (failure === undefined) failure = err;
    if (!inner.signal.aborted) inner.abort(err);
    // Stop reading now: a worker waiting on the body wakes up with an error instead of waiting.
    destroyBody(err);
  };
  const userSignal = options.signal;
  const onUserAbort = () =>
    fail(new S3ZipError("ERR_ABORTED", `upload to s3://${dest.bucket}/${dest.key} aborted`, { cause: userSignal?.reason, ...where }));
  if (userSignal?.aborted) onUserAbort();
  else userSignal?.addEventListener("abort", onUserAbort, { once: true });

  // A Readable is read chunk by chunk as pushed (its own iterator would concatenate, a copy).
  const reader = new PartReader(
    isNodeReadable(body) ? chunksOf(body) : (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator](),
    concurrency + 1,
  );
  const bodyError = (err: unknown): unknown => {
    if (failure !== undefined) return failure;
    if (err instanceof ZipError) return err;
    return new S3ZipError("ERR_S3_READ", `reading the body for s3://${dest.bucket}/${dest.key} failed`, { cause: err, ...where });
  };
  let partsUploaded = 0;
  let bytesUploaded = 0;
  const progress = (bytes: number) => {
    partsUploaded++;
    bytesUploaded += bytes;
    options.onProgress?.({ partsUploaded, bytesUploaded });
  };
  /**
   * The job failed (in practice: the signal fired) while the request that makes the object
   * visible (Complete or PutObject) was in flight, and that request succeeded: delete the object
   * it wrote, so a failed run leaves nothing at dest, then reject. The VersionId pins the delete
   * to our version on a versioned bucket (no delete marker; the previous version stays current);
   * unversioned, the key's only object is the one we just wrote.
   */
  const removeWritten = async (versionId: string | undefined): Promise<never> => {
    const prior = failure;
    const abort = prior instanceof S3ZipError && prior.code === "ERR_ABORTED";
    try {
      await client.send(new DeleteObjectCommand({ Bucket: dest.bucket, Key: dest.key, VersionId: versionId }));
    } catch (err) {
      failure = new S3ZipError(
        abort ? "ERR_ABORTED" : "ERR_S3_UPLOAD",
        `upload to s3://${dest.bucket}/${dest.key} ${abort ? "aborted" : "failed"}, but the archive had been completed and removing it failed: it may remain at dest`,
        { cause: err, ...where },
      );
      throw failure;
    }
    if (abort) {
      failure = new S3ZipError(
        "ERR_ABORTED",
        `upload to s3://${dest.bucket}/${dest.key} aborted while it was being completed: the archive was completed and then removed`,
        { cause: prior.cause, ...where },
      );
    }
    throw failure;
  };
  const finalError = (): unknown => {
    const err = failure;
    if (err instanceof ZipError) return err;
    if (isAbortError(err)) return new S3ZipError("ERR_ABORTED", "upload aborted", { cause: err, ...where });
    return mapS3Error(err, "ERR_S3_UPLOAD", { ...where, action: "upload to" });
  };

  try {
    if (failure !== undefined) throw failure;
    let first: Buffer | null;
    let single: boolean;
    try {
      first = await reader.next(plan.sizeOf(1));
      single = first === null || first.length < plan.sizeOf(1) || (await reader.atEnd());
    } catch (err) {
      fail(bodyError(err));
      throw failure;
    }
    if (failure !== undefined) throw failure;

    if (single) {
      const bytes = first ?? Buffer.alloc(0);
      let out: PutObjectCommandOutput;
      try {
        // Not tied to `inner`: see `signal` in UploadOptions (the object may be written before
        // the response arrives; only letting the request finish tells us which version to remove).
        out = await client.send(new PutObjectCommand({ ...params, Body: bytes, ContentLength: bytes.length }));
      } catch (err) {
        fail(err);
        throw failure;
      }
      if (failure !== undefined) await removeWritten(out.VersionId);
      // Written and not aborted meanwhile: a later abort has nothing left to cancel.
      userSignal?.removeEventListener("abort", onUserAbort);
      progress(bytes.length);
      return {
        bucket: dest.bucket,
        key: dest.key,
        size: bytes.length,
        parts: 1,
        singlePut: true,
        etag: out.ETag ?? "",
        versionId: out.VersionId,
        plan,
      };
    }

    let uploadId: string | undefined;
    // Set once the upload is completed or its abort was sent: AbortMultipartUpload goes out at most once.
    let settled = false;
    const abortOnce = async () => {
      if (settled || uploadId === undefined) return;
      settled = true;
      try {
        // Not tied to `inner`: this request must go out even though everything else was cancelled.
        await client.send(new AbortMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId: uploadId }));
      } catch {
        // The lifecycle rule / abortIncompleteUploads cleans up what a failed abort leaves behind.
      }
    };

    try {
      try {
        // Not tied to `inner`: an abort landing after the server created the upload but before
        // its response arrived would leave an upload whose UploadId we never learn (an orphan).
        // Let it finish (bounded by the client's timeouts and retries), then abort it below.
        const created = await client.send(new CreateMultipartUploadCommand(params));
        if (!created.UploadId) throw new Error("CreateMultipartUpload returned no UploadId");
        uploadId = created.UploadId;
      } catch (err) {
        fail(err);
        throw failure;
      }
      // Aborted while Create was in flight: the finally below aborts the upload just created.
      if (failure !== undefined) throw failure;
      const id = uploadId;

      const completed: CompletedPart[] = [];
      let nextNumber = 1;
      let pending: Buffer | null = first;
      let size = 0;
      // Serialises reads: every worker takes the next part from the one reader, in order.
      let readChain: Promise<unknown> = Promise.resolve();
      const takePart = (): Promise<{ n: number; bytes: Buffer } | null> => {
        const p = readChain.then(async () => {
          if (failure !== undefined) return null;
          const n = nextNumber;
          let bytes: Buffer | null;
          if (pending !== null) {
            bytes = pending;
            pending = null;
          } else {
            try {
              bytes = await reader.next(plan.sizeOf(n));
            } catch (err) {
              fail(bodyError(err));
              return null;
            }
          }
          if (bytes === null || failure !== undefined) return null;
          if (n > MAX_PARTS) {
            fail(new S3ZipError("ERR_S3_TOO_LARGE", `the archive needs more than ${MAX_PARTS} parts with this plan (max ${plan.maxBytes} bytes)`, where));
            return null;
          }
          nextNumber++;
          size += bytes.length;
          return { n, bytes };
        });
        readChain = p;
        return p;
      };
      const sendPart = async (n: number, bytes: Buffer) => {
        for (let attempt = 0; ; attempt++) {
          try {
            const out = await client.send(
              new UploadPartCommand({ Bucket: dest.bucket, Key: dest.key, UploadId: id, PartNumber: n, Body: bytes, ContentLength: bytes.length }),
              { abortSignal: inner.signal },
            );
            return out.ETag ?? "";
          } catch (err) {
            if (failure !== undefined || attempt >= partRetries || !retryable(err)) throw err;
            await delay(200 * 2 ** attempt, inner.signal);
          }
        }
      };
      const worker = async () => {
        for (;;) {
          const part = await takePart();
          if (part === null) return;
          try {
            const etag = await sendPart(part.n, part.bytes);
            completed.push({ PartNumber: part.n, ETag: etag });
            progress(part.bytes.length);
            // Acknowledged: the SDK is done with these bytes (a retry would have happened inside sendPart).
            reader.release(part.bytes);
          } catch (err) {
            fail(err);
            return;
          }
        }
      };
      // allSettled semantics: workers never reject, so this waits for every in-flight part.
      await Promise.all(Array.from({ length: concurrency }, worker));
      if (failure !== undefined) throw failure;

      completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
      let out: CompleteMultipartUploadCommandOutput;
      try {
        // Not tied to `inner`: a Complete cannot be cancelled server-side, and a cancelled request
        // would leave us not knowing whether the archive exists. The SDK turns a 200 response
        // carrying an <Error> body into a thrown error; the upload is then aborted as usual.
        out = await client.send(
          new CompleteMultipartUploadCommand({ Bucket: dest.bucket, Key: dest.key, UploadId: id, MultipartUpload: { Parts: completed } }),
        );
      } catch (err) {
        fail(err);
        throw failure;
      }
      settled = true; // completed: nothing to abort any more
      // Aborted while Complete was in flight: the archive exists; take it away again.
      if (failure !== undefined) await removeWritten(out.VersionId);
      userSignal?.removeEventListener("abort", onUserAbort);
      let etag = out.ETag ?? "";
      const versionId = out.VersionId;
      if (etag === "" || etag === '""') {
        // Ceph 16 answers CompleteMultipartUpload with an empty ETag; ask the object itself.
        const head = await client.send(new HeadObjectCommand({ Bucket: dest.bucket, Key: dest.key, VersionId: versionId }));
        etag = head.ETag ?? "";
      }
      return { bucket: dest.bucket, key: dest.key, size, parts: completed.length, singlePut: false, etag, versionId, plan };
    } finally {
      if (failure !== undefined) await abortOnce();
    }
  } catch (err) {
    if (failure === undefined) fail(err);
    destroyBody(failure);
    throw finalError();
  } finally {
    userSignal?.removeEventListener("abort", onUserAbort);
  }
}
