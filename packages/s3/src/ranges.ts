import type { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { chunksOf } from "./chunks.js";
import { S3ZipError, httpStatus, isAbortError, mapS3Error } from "./errors.js";
import { delay } from "./retry.js";
import { sseCustomerHeaders, type ResolvedObject } from "./sources.js";

/** The total of `Content-Range: bytes a-b/total` (RFC 9110 14.4); undefined when absent or `*`. */
export function contentRangeTotal(header: string | undefined): number | undefined {
  const m = /\/(\d+)\s*$/.exec(header ?? "");
  return m ? Number(m[1]) : undefined;
}

/** Options of {@link readRange}. */
export interface ReadRangeOptions {
  /** Cancels the GET; the promise rejects with ERR_ABORTED. */
  signal: AbortSignal;
  /** Resumes of a body cut mid-way, each a ranged GET from the next byte. */
  resumes: number;
  /**
   * Receives each chunk as it arrives, in order (called before the promise resolves). A returned
   * promise is awaited before the next chunk (backpressure); a failure of the consumer is rethrown
   * as it is, never taken for a cut body.
   */
  onChunk: (chunk: Buffer) => void | Promise<void>;
  /** Called when a cut body is resumed. */
  onResume?: () => void;
}

/**
 * Reads bytes `[start, end)` of an object with GETs pinned to its ETag (`If-Match`, so the bytes
 * never mix two versions: a 412 is ERR_S3_SOURCE_CHANGED), resuming a body that is cut mid-way
 * from the next byte. The whole object (`start` 0, `end` its size) is fetched without a Range
 * header, so a 0-byte object works. An object listed without an ETag is pinned to the first ETag
 * the server sends (written back to `o.etag`).
 *
 * The object's real size (Content-Range's total on a ranged GET, Content-Length on a whole one)
 * must be `o.size`, else ERR_SIZE_MISMATCH: a declared `size` is trusted for planning, and reading
 * only its bytes of a larger object would write a valid-looking, truncated member. The server's
 * byte count is checked against the request: a different Content-Length, or more bytes than
 * asked, is ERR_S3_SOURCE_CHANGED. An SSE-C object is read with its key (`o.sseCustomerKey`).
 * A status below 500 is final (missing, denied, changed); network failures and 5xx are retried up
 * to `resumes` times.
 */
export async function readRange(client: S3Client, o: ResolvedObject, start: number, end: number, opts: ReadRangeOptions): Promise<void> {
  const len = end - start;
  const whole = start === 0 && end === o.size;
  let filled = 0;
  let attempt = 0;
  const where = { bucket: o.bucket, key: o.key, action: "GetObject" };
  const cancelled = (cause: unknown) => new S3ZipError("ERR_ABORTED", "reading sources was cancelled", { cause, bucket: o.bucket, key: o.key });
  for (;;) {
    if (opts.signal.aborted) throw cancelled(opts.signal.reason);
    const range = whole && filled === 0 ? undefined : `bytes=${start + filled}-${end - 1}`;
    if (attempt > 0) opts.onResume?.();
    let body: Readable;
    try {
      const out = await client.send(
        new GetObjectCommand({
          Bucket: o.bucket,
          Key: o.key,
          VersionId: o.versionId,
          Range: range,
          IfMatch: o.etag === "" ? undefined : o.etag,
          ...sseCustomerHeaders(o),
        }),
        { abortSignal: opts.signal },
      );
      const total = range === undefined ? out.ContentLength : contentRangeTotal(out.ContentRange);
      if (total !== undefined && total !== o.size) {
        (out.Body as Readable | undefined)?.destroy?.();
        throw new S3ZipError("ERR_SIZE_MISMATCH", `s3://${o.bucket}/${o.key} is ${total} bytes, not the ${o.size} bytes declared or listed for it`, {
          bucket: o.bucket,
          key: o.key,
          entry: o.name,
        });
      }
      if (out.ContentLength !== undefined && out.ContentLength !== len - filled) {
        (out.Body as Readable | undefined)?.destroy?.();
        throw new S3ZipError("ERR_S3_SOURCE_CHANGED", `s3://${o.bucket}/${o.key}: expected ${len - filled} bytes, the server sent ${out.ContentLength}`, {
          bucket: o.bucket,
          key: o.key,
        });
      }
      if (o.etag === "" && out.ETag) o.etag = out.ETag;
      body = out.Body as Readable;
    } catch (err) {
      if (err instanceof S3ZipError) throw err;
      if (opts.signal.aborted || isAbortError(err)) throw cancelled(err);
      // The server answered with a status: it decided (missing, denied, changed). Do not retry.
      if (httpStatus(err) !== undefined && httpStatus(err)! < 500) throw mapS3Error(err, "ERR_S3_READ", where);
      if (attempt++ >= opts.resumes) throw mapS3Error(err, "ERR_S3_READ", where);
      await delay(100 * 2 ** attempt, opts.signal);
      continue;
    }
    let consuming = false;
    try {
      for await (const chunk of chunksOf(body)) {
        if (filled + chunk.length > len) {
          throw new S3ZipError("ERR_S3_SOURCE_CHANGED", `s3://${o.bucket}/${o.key}: more bytes than its listed size ${o.size}`, { bucket: o.bucket, key: o.key });
        }
        if (chunk.length === 0) continue;
        filled += chunk.length;
        consuming = true;
        const pending = opts.onChunk(chunk);
        if (pending !== undefined) await pending;
        consuming = false;
      }
      if (filled === len) return;
      throw new Error(`body ended after ${filled} of ${len} bytes`);
    } catch (err) {
      if (consuming || err instanceof S3ZipError) throw err;
      if (opts.signal.aborted || isAbortError(err)) throw cancelled(err);
      // A body cut mid-way: resume from the next byte, still pinned by If-Match.
      if (attempt++ >= opts.resumes) throw mapS3Error(err, "ERR_S3_READ", where);
      await delay(50 * 2 ** attempt, opts.signal);
    }
  }
}
