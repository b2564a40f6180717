import type { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { chunksOf } from "./chunks.js";
import { S3ZipError, httpStatus, isAbortError, mapS3Error, s3Code } from "./errors.js";

/**
 * Bytes of an archive by absolute position: what the ZIP checker of `verifyS3Zip` reads through.
 * `read` returns a range whole; `stream` hands it over chunk by chunk (bounded memory).
 */
export interface RangeSource {
  /** Object size in bytes. */
  readonly size: number;
  read(start: number, end: number): Promise<Uint8Array>;
  /** Calls `onChunk(bytes, position)` for [start, end) in order; awaits each call (backpressure). */
  stream(start: number, end: number, onChunk: (chunk: Uint8Array, pos: number) => void | Promise<void>): Promise<void>;
}

/** The object changed between two ranged GETs (If-Match failed): reported, never misread. */
export class ObjectChangedError extends S3ZipError {
  constructor(message: string, options: { cause?: unknown; bucket: string; key: string }) {
    super("ERR_S3_SOURCE_CHANGED", message, options);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Ranged GETs of one S3 object, every one after the first pinned with `If-Match` to the ETag the
 * first response carried (and to `versionId` when given), so an object overwritten during a check
 * fails with {@link ObjectChangedError} instead of yielding a mix of two versions. Counts
 * requests and body bytes. A body cut mid-way is resumed from the next byte (at most `resumes`
 * times per range); the SDK's own retry policy covers failed requests.
 */
export class S3RangeSource implements RangeSource {
  size = -1;
  etag: string | undefined;
  requests = 0;
  bytesRead = 0;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly versionId: string | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly resumes = 5,
  ) {}

  /**
   * The first request: the last `n` bytes (the whole object when it is smaller). Learns the size
   * and the ETag from the response (Content-Range `bytes a-b/size`).
   */
  async suffix(n: number): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    try {
      await this.get(`bytes=-${n}`, undefined, (c) => void chunks.push(Buffer.from(c)));
    } catch (err) {
      // An empty object has no last byte: S3 answers 416 to any suffix range. Ask its size.
      if (s3Code(err) === "InvalidRange" || httpStatus(err) === 416) {
        this.requests++;
        const head = await this.client
          .send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key, VersionId: this.versionId }), { abortSignal: this.signal })
          .catch((e: unknown) => {
            throw this.mapError(e, "HeadObject");
          });
        this.size = head.ContentLength ?? 0;
        this.etag = head.ETag;
        if (this.size !== 0) throw this.mapError(err, "GetObject");
        return new Uint8Array(0);
      }
      throw err;
    }
    return Buffer.concat(chunks);
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    await this.stream(start, end, (c) => void chunks.push(Buffer.from(c)));
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  async stream(start: number, end: number, onChunk: (chunk: Uint8Array, pos: number) => void | Promise<void>): Promise<void> {
    if (end <= start) return;
    await this.get(undefined, { start, end }, onChunk);
  }

  private mapError(err: unknown, action: string): S3ZipError {
    if (err instanceof S3ZipError) return err;
    if (isAbortError(err) || this.signal?.aborted) {
      return new S3ZipError("ERR_ABORTED", "verification was cancelled", { cause: err, bucket: this.bucket, key: this.key });
    }
    const mapped = mapS3Error(err, "ERR_S3_READ", { bucket: this.bucket, key: this.key, action });
    if (mapped.code === "ERR_S3_SOURCE_CHANGED") {
      return new ObjectChangedError(`s3://${this.bucket}/${this.key} changed while it was being verified (ETag ${this.etag} no longer matches)`, {
        cause: err,
        bucket: this.bucket,
        key: this.key,
      });
    }
    return mapped;
  }

  /** One ranged GET (a suffix, or [start, end)), resumed from the next byte when its body is cut. */
  private async get(
    suffix: string | undefined,
    span: { start: number; end: number } | undefined,
    onChunk: (chunk: Uint8Array, pos: number) => void | Promise<void>,
  ): Promise<void> {
    let pos = span?.start ?? 0;
    let end = span?.end ?? -1;
    let attempt = 0;
    let answered = false;
    for (;;) {
      if (this.signal?.aborted) throw this.mapError(this.signal.reason ?? new Error("aborted"), "GetObject");
      const range = suffix !== undefined && !answered ? suffix : `bytes=${pos}-${end - 1}`;
      let body: Readable;
      try {
        this.requests++;
        const out = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: this.key, VersionId: this.versionId, Range: range, IfMatch: this.etag }),
          { abortSignal: this.signal },
        );
        if (this.etag === undefined) this.etag = out.ETag;
        const total = /\/(\d+)\s*$/.exec(out.ContentRange ?? "");
        const size = total ? Number(total[1]) : out.ContentLength;
        if (size !== undefined) {
          if (this.size >= 0 && size !== this.size) {
            (out.Body as Readable | undefined)?.destroy?.();
            throw new ObjectChangedError(`s3://${this.bucket}/${this.key} changed size from ${this.size} to ${size} during verification`, {
              bucket: this.bucket,
              key: this.key,
            });
          }
          this.size = size;
        }
        if (suffix !== undefined && !answered) {
          const first = /bytes (\d+)-/.exec(out.ContentRange ?? "");
          pos = first ? Number(first[1]) : 0;
          end = this.size;
        }
        body = out.Body as Readable;
        answered = true;
      } catch (err) {
        const e = this.mapError(err, "GetObject");
        // A status below 500 is the server's decision (missing, denied, changed): not retried.
        if (e.code !== "ERR_S3_READ" || (httpStatus(err) ?? 500) < 500 || attempt++ >= this.resumes) throw e;
        await delay(100 * 2 ** attempt);
        continue;
      }
      // A failure of the consumer is its own (a bug or a verdict), never a reason to re-read.
      let consumerFailed = false;
      try {
        for await (const chunk of chunksOf(body)) {
          const c = pos + chunk.length > end ? chunk.subarray(0, end - pos) : chunk;
          if (c.length === 0) continue;
          this.bytesRead += c.length;
          const at = pos;
          pos += c.length;
          consumerFailed = true;
          await onChunk(c, at);
          consumerFailed = false;
        }
        if (pos >= end) return;
        throw new Error(`body ended at byte ${pos} of ${end}`);
      } catch (err) {
        if (consumerFailed || err instanceof S3ZipError) throw err;
        if (this.signal?.aborted || isAbortError(err)) throw this.mapError(err, "GetObject");
        if (attempt++ >= this.resumes) throw this.mapError(err, "GetObject");
        await delay(50 * 2 ** attempt);
      }
    }
  }
}
