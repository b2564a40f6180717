import { setMaxListeners } from "node:events";
import type { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { chunksOf } from "./chunks.js";
import { S3ZipError, httpStatus, isAbortError, mapS3Error, s3Code } from "./errors.js";
import { contentRangeTotal, readRange } from "./ranges.js";
import { withRetries } from "./retry.js";

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

/**
 * Ranged GETs of one S3 object for `verifyS3Zip`. The first is a suffix GET that learns the
 * object's size and ETag; every later one goes through the package's one ranged GET
 * (`readRange`: resumes a cut body from the next byte), pinned with `If-Match` to that ETag (and
 * to `versionId` when given), so an object overwritten during a check fails with
 * {@link ObjectChangedError} instead of yielding a mix of two versions. Counts requests and
 * body bytes.
 */
export class S3RangeSource implements RangeSource {
  size = -1;
  etag: string | undefined;
  requests = 0;
  bytesRead = 0;
  private readonly controller = new AbortController();

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly versionId: string | undefined,
    signal: AbortSignal | undefined,
    private readonly resumes = 5,
  ) {
    // Every GET listens on this signal (one per range in flight).
    setMaxListeners(0, this.controller.signal);
    if (signal?.aborted) this.controller.abort(signal.reason);
    else signal?.addEventListener("abort", () => this.controller.abort(signal.reason), { once: true });
  }

  private get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * The first request: the last `n` bytes (the whole object when it is smaller), retried by the
   * package's retry policy. Learns the size (Content-Range `bytes a-b/size`) and the ETag.
   */
  async suffix(n: number): Promise<Uint8Array> {
    try {
      return await withRetries(() => this.suffixOnce(n), this.resumes, this.signal, 100);
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
      throw this.mapError(err, "GetObject");
    }
  }

  private async suffixOnce(n: number): Promise<Uint8Array> {
    this.requests++;
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key, VersionId: this.versionId, Range: `bytes=-${n}` }), {
      abortSignal: this.signal,
    });
    this.size = contentRangeTotal(out.ContentRange) ?? out.ContentLength ?? 0;
    this.etag = out.ETag;
    const chunks: Buffer[] = [];
    for await (const c of chunksOf(out.Body as Readable)) chunks.push(c);
    const body = Buffer.concat(chunks);
    this.bytesRead += body.length;
    if (body.length !== Math.min(n, this.size)) throw new Error(`suffix body of ${body.length} bytes, expected ${Math.min(n, this.size)}`);
    return body;
  }

  async read(start: number, end: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    await this.stream(start, end, (c) => void chunks.push(c));
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  async stream(start: number, end: number, onChunk: (chunk: Uint8Array, pos: number) => void | Promise<void>): Promise<void> {
    if (end <= start) return;
    const o = { bucket: this.bucket, key: this.key, versionId: this.versionId, name: this.key, size: this.size, etag: this.etag ?? "" };
    let pos = start;
    this.requests++;
    try {
      await readRange(this.client, o, start, end, {
        signal: this.signal,
        resumes: this.resumes,
        onResume: () => void this.requests++,
        onChunk: (c) => {
          this.bytesRead += c.length;
          const at = pos;
          pos += c.length;
          return onChunk(c, at);
        },
      });
    } catch (err) {
      throw this.mapError(err, "GetObject");
    }
  }

  private mapError(err: unknown, action: string): S3ZipError {
    const mapped = err instanceof S3ZipError ? err : mapS3Error(err, "ERR_S3_READ", { bucket: this.bucket, key: this.key, action });
    if (this.signal.aborted || isAbortError(err) || mapped.code === "ERR_ABORTED") {
      return new S3ZipError("ERR_ABORTED", "verification was cancelled", { cause: err, bucket: this.bucket, key: this.key });
    }
    if (mapped.code === "ERR_S3_SOURCE_CHANGED") {
      return new ObjectChangedError(`s3://${this.bucket}/${this.key} changed while it was being verified (ETag ${this.etag} no longer matches)`, {
        cause: err,
        bucket: this.bucket,
        key: this.key,
      });
    }
    return mapped;
  }
}
