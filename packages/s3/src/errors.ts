import { ZipError, type ZipErrorCode } from "@zipstream/core";
import { EXPECTED_OWNER } from "./owners.js";

/**
 * Stable codes raised by `@zipstream/s3` (core codes such as `ERR_ABORTED`,
 * `ERR_INVALID_NAME` or `ERR_DUPLICATE_NAME` pass through unchanged).
 */
export type S3ZipErrorCode =
  /** A source object does not exist (or the given version does not). */
  | "ERR_S3_NO_SUCH_KEY"
  /** A source or destination bucket does not exist. */
  | "ERR_S3_NO_SUCH_BUCKET"
  /** The credentials may not read a source or write the destination (HTTP 403). */
  | "ERR_S3_ACCESS_DENIED"
  /** The destination key is empty or longer than 1,024 bytes of UTF-8. */
  | "ERR_S3_INVALID_DEST"
  /** A source object changed while it was being read (`If-Match` failed with 412), or its size differs from the listing. */
  | "ERR_S3_SOURCE_CHANGED"
  /** No object to zip and `allowEmpty` is false. */
  | "ERR_S3_EMPTY_SOURCE"
  /** The archive is larger than the part plan can carry (10,000 parts). */
  | "ERR_S3_TOO_LARGE"
  /** A multipart upload, PutObject or CompleteMultipartUpload request failed. */
  | "ERR_S3_UPLOAD"
  /** Reading a source (GET, HEAD, LIST) failed after retries and resumes. */
  | "ERR_S3_READ"
  /** `dest.overwrite` is false and an object exists at `dest` (checked first, and refused by the server at the end). */
  | "ERR_S3_DEST_EXISTS"
  /** `assembly: "copy"` was asked for a job that copy assembly cannot build (the message names why); nothing was written. */
  | "ERR_S3_COPY_UNSUPPORTED"
  /**
   * A source is in an archive storage class (S3 Glacier Flexible Retrieval or Deep Archive, or an
   * Intelligent-Tiering archive tier) and not restored: it cannot be read until it is
   * (`onArchived: "skip"` leaves it out instead).
   */
  | "ERR_S3_ARCHIVED"
  /** More source objects than `maxEntries` allows (each costs memory until the archive is complete). */
  | "ERR_S3_TOO_MANY_ENTRIES"
  /** A source is encrypted with a customer-provided key (SSE-C) and no key, or another key, was given. */
  | "ERR_S3_SSE_C_KEY"
  /** An archive plan is missing, unreadable, of another version, or does not match the upload it names. */
  | "ERR_S3_PLAN"
  /** `finalizeArchive` found segments without a result (their indexes are in the message): run them first. */
  | "ERR_S3_PLAN_INCOMPLETE"
  | ZipErrorCode;

/**
 * What a failed job could not remove from S3. Absent when nothing is left (the normal case: the
 * upload was aborted and no object was written). The error's message says the same in words.
 */
export interface LeftBehind {
  /** An archive that was completed and could not be deleted again. */
  object?: { bucket: string; key: string; versionId?: string };
  /** A multipart upload whose abort failed: remove it with `abortIncompleteUploads` or a lifecycle rule. */
  upload?: { bucket: string; key: string; uploadId: string };
}

/** Error raised by `@zipstream/s3`: a {@link ZipError} whose code starts with `ERR_S3_` (or a core code). */
export class S3ZipError extends ZipError {
  /** Bucket the error concerns, when there is one. */
  readonly bucket?: string;
  /** Key the error concerns, when there is one. */
  readonly key?: string;
  /** What the failed job left in S3, when it could not remove it; see {@link LeftBehind}. */
  readonly leftBehind?: LeftBehind;

  constructor(
    code: S3ZipErrorCode,
    message: string,
    options: { cause?: unknown; entry?: string; bucket?: string; key?: string; leftBehind?: LeftBehind } = {},
  ) {
    super(code, message, { cause: options.cause, entry: options.entry });
    this.name = "S3ZipError";
    if (options.bucket !== undefined) this.bucket = options.bucket;
    if (options.key !== undefined) this.key = options.key;
    if (options.leftBehind !== undefined) this.leftBehind = options.leftBehind;
  }
}

interface SdkErrorLike {
  name?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** HTTP status of an SDK error, when it has one. */
export function httpStatus(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

/** The S3 error code of an SDK error ("NoSuchKey", "AccessDenied", ...). */
export function s3Code(err: unknown): string | undefined {
  const e = err as SdkErrorLike | undefined;
  return e?.Code ?? e?.name;
}

/** True when the error is an abort of the request (our AbortSignal fired). */
export function isAbortError(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name;
  return name === "AbortError";
}

/**
 * Maps an SDK error to an S3ZipError with a stable code. `fallback` is used for anything that is
 * not a missing bucket/key, a denial or a precondition failure.
 */
export function mapS3Error(
  err: unknown,
  fallback: "ERR_S3_UPLOAD" | "ERR_S3_READ",
  where: { bucket: string; key?: string; action: string },
): S3ZipError {
  if (err instanceof S3ZipError) return err;
  const code = s3Code(err);
  const status = httpStatus(err);
  const at = where.key === undefined ? `s3://${where.bucket}` : `s3://${where.bucket}/${where.key}`;
  const opts = { cause: err, bucket: where.bucket, key: where.key };
  if (code === "NoSuchBucket") {
    return new S3ZipError("ERR_S3_NO_SUCH_BUCKET", `${where.action} ${at}: bucket "${where.bucket}" does not exist`, opts);
  }
  if (code === "NoSuchKey" || code === "NoSuchVersion" || (status === 404 && fallback === "ERR_S3_READ")) {
    return new S3ZipError("ERR_S3_NO_SUCH_KEY", `${where.action} ${at}: no such key`, opts);
  }
  // S3 answers 403 InvalidObjectState to a GET of an archived object that is not restored (the
  // GetObject API reference); listing and HEAD normally catch it first (sources.ts).
  if (code === "InvalidObjectState") {
    return new S3ZipError(
      "ERR_S3_ARCHIVED",
      `${where.action} ${at}: the object is archived (Glacier Flexible Retrieval or Deep Archive) and not restored`,
      opts,
    );
  }
  if (code === "AccessDenied" || status === 403) {
    // S3 answers a bucket-owner condition that does not hold with a plain 403: say it may be that.
    const required = (err as { [EXPECTED_OWNER]?: string } | undefined)?.[EXPECTED_OWNER];
    const why = required === undefined ? "" : ` (the request required ${required}: either it does not, or the credentials lack permission)`;
    return new S3ZipError("ERR_S3_ACCESS_DENIED", `${where.action} ${at}: access denied${why}`, opts);
  }
  if (code === "PreconditionFailed" || status === 412) {
    return new S3ZipError("ERR_S3_SOURCE_CHANGED", `${where.action} ${at}: the object changed while it was being read`, opts);
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new S3ZipError(fallback, `${where.action} ${at} failed: ${detail}`, opts);
}

/**
 * The S3ZipError behind a core ERR_SOURCE (the encoder wraps the failure of a source as
 * ERR_SOURCE with the original as `cause`), so a caller sees ERR_S3_SOURCE_CHANGED, ERR_S3_READ...
 * rather than a generic source failure; any other error is returned as it is.
 */
export function s3SourceFailure(err: unknown): unknown {
  return err instanceof ZipError && err.code === "ERR_SOURCE" && err.cause instanceof S3ZipError ? err.cause : err;
}
