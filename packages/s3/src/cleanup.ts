import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from "@aws-sdk/client-s3";
import { mapS3Error } from "./errors.js";
import { type ExpectedBucketOwner, validateExpectedBucketOwner, withExpectedBucketOwner } from "./owners.js";

/** An incomplete multipart upload. */
export interface IncompleteUpload {
  bucket: string;
  key: string;
  uploadId: string;
  initiated?: Date;
}

/** Options of {@link listIncompleteUploads}. */
export interface IncompleteUploadsOptions {
  client: S3Client;
  bucket: string;
  /** Only keys starting with this prefix. Default: every key. */
  prefix?: string;
  /**
   * Only uploads started before this: an age in milliseconds (older than now - olderThan) or a
   * Date. Default: every upload, whatever its age.
   */
  olderThan?: number | Date;
  signal?: AbortSignal;
  /** The account that must own `bucket`, sent on every request; see {@link ExpectedBucketOwner}. Default: none. */
  expectedBucketOwner?: ExpectedBucketOwner;
}

function cutoff(olderThan: number | Date | undefined): number | undefined {
  if (olderThan === undefined) return undefined;
  if (olderThan instanceof Date) {
    if (Number.isNaN(olderThan.getTime())) throw new TypeError("olderThan must be a valid Date");
    return olderThan.getTime();
  }
  if (typeof olderThan !== "number" || !Number.isFinite(olderThan) || olderThan < 0) {
    throw new TypeError(`olderThan must be a Date or a non-negative number of milliseconds; got ${String(olderThan)}`);
  }
  return Date.now() - olderThan;
}

/**
 * Lists the incomplete multipart uploads of a bucket (ListMultipartUploads, paginated), optionally
 * under a prefix and older than an age.
 */
export async function listIncompleteUploads(options: IncompleteUploadsOptions): Promise<IncompleteUpload[]> {
  const { bucket, prefix, signal } = options;
  if (typeof bucket !== "string" || bucket === "") throw new TypeError("bucket must be a non-empty string");
  validateExpectedBucketOwner(options.expectedBucketOwner);
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  const before = cutoff(options.olderThan);
  const out: IncompleteUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await client.send(
        new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw mapS3Error(err, "ERR_S3_READ", { bucket, key: prefix, action: "ListMultipartUploads" });
    }
    for (const u of page.Uploads ?? []) {
      if (!u.Key || !u.UploadId) continue;
      if (before !== undefined && (u.Initiated === undefined || u.Initiated.getTime() >= before)) continue;
      out.push({ bucket, key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
    }
    if (!page.IsTruncated) break;
    if (page.NextKeyMarker === keyMarker && page.NextUploadIdMarker === uploadIdMarker) break;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
  return out;
}

/**
 * Aborts the incomplete uploads {@link listIncompleteUploads} finds and returns them (with
 * `dryRun`, only returns them). An upload that vanished meanwhile (NoSuchUpload) counts as done.
 */
export async function abortIncompleteUploads(options: IncompleteUploadsOptions & { dryRun?: boolean }): Promise<IncompleteUpload[]> {
  const uploads = await listIncompleteUploads(options);
  if (options.dryRun) return uploads;
  const client = withExpectedBucketOwner(options.client, options.expectedBucketOwner);
  for (const u of uploads) {
    try {
      await client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: u.uploadId }), {
        abortSignal: options.signal,
      });
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchUpload") continue;
      throw mapS3Error(err, "ERR_S3_UPLOAD", { bucket: u.bucket, key: u.key, action: "AbortMultipartUpload" });
    }
  }
  return uploads;
}
