import { setMaxListeners } from "node:events";
import type { Readable } from "node:stream";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { chunksOf } from "./chunks.js";
import { S3ZipError, httpStatus, isAbortError, mapS3Error } from "./errors.js";
import type { ResolvedObject } from "./sources.js";

/** Prefetch budget. */
export interface PrefetchOptions {
  /**
   * Objects requested ahead, counting the one streaming now. Default 16: for 16 KiB objects on a
   * local Ceph RGW, 1 gave ~16 objects/s, 8 gave 37-53, 32 gave 36-74 (a loaded 2-core host); small
   * objects cost little memory, and `bytes` bounds the rest.
   */
  objects?: number;
  /**
   * Bytes held by GETs ahead (buffered bodies), counting the member streaming now. Default 64 MiB.
   * One range is always allowed even when it alone exceeds the budget, so progress never stops.
   */
  bytes?: number;
  /** Objects larger than this are read as parallel ranged GETs of this size. Default 8 MiB. */
  rangeSize?: number;
  /** Resumes of one body that fails mid-way (each a ranged GET from the next byte). Default 5. */
  resumes?: number;
}

export const DEFAULT_PREFETCH_OBJECTS = 16;
export const DEFAULT_PREFETCH_BYTES = 64 * 1024 * 1024;
export const DEFAULT_RANGE_SIZE = 8 * 1024 * 1024;

interface Segment {
  /** Index of the object. */
  obj: number;
  start: number;
  end: number;
  /** The whole object in one GET (no Range header, so 0-byte objects work). */
  whole: boolean;
  started: boolean;
  /** The body's chunks as the socket delivered them (kept, not copied into one buffer). */
  promise?: Promise<Buffer[]>;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Reads objects in order for the encoder while issuing the next GETs ahead, within an object and
 * a byte budget. Every GET is pinned with `If-Match` to the ETag seen at listing/HEAD time, so a
 * member is never a mix of two versions: a 412 fails with ERR_S3_SOURCE_CHANGED.
 *
 * Memory: at most about `bytes` (plus one range) of buffered bodies.
 */
export class Prefetcher {
  private readonly segs: Segment[][];
  private readonly controller = new AbortController();
  /** Next segment to issue: object index and segment index. */
  private nextObj = 0;
  private nextSeg = 0;
  /** Object being consumed. */
  private current = 0;
  private reserved = 0;
  private readonly maxObjects: number;
  private readonly maxBytes: number;
  private readonly resumes: number;
  private closed = false;
  /** Body bytes received from S3 (including resumed ranges). */
  bytesFetched = 0;
  /** Ranged GETs issued to resume a failed body. */
  resumed = 0;

  constructor(
    private readonly client: S3Client,
    private readonly objects: ResolvedObject[],
    options: PrefetchOptions = {},
    signal?: AbortSignal,
  ) {
    // Every GET in flight listens on this signal; many at once is expected, not a leak.
    setMaxListeners(0, this.controller.signal);
    this.maxObjects = options.objects ?? DEFAULT_PREFETCH_OBJECTS;
    this.maxBytes = options.bytes ?? DEFAULT_PREFETCH_BYTES;
    this.resumes = options.resumes ?? 5;
    const range = options.rangeSize ?? DEFAULT_RANGE_SIZE;
    this.segs = objects.map((o, i) => {
      if (o.size <= range) return [{ obj: i, start: 0, end: o.size, whole: true, started: false }];
      const out: Segment[] = [];
      for (let s = 0; s < o.size; s += range) out.push({ obj: i, start: s, end: Math.min(o.size, s + range), whole: false, started: false });
      return out;
    });
    if (signal) {
      if (signal.aborted) this.close(signal.reason);
      else signal.addEventListener("abort", () => this.close(signal.reason), { once: true });
    }
  }

  /** Starts the GETs that fit the budget. */
  pump(): void {
    while (!this.closed && this.nextObj < this.segs.length) {
      if (this.nextObj - this.current >= this.maxObjects) return;
      const seg = this.segs[this.nextObj]![this.nextSeg]!;
      const len = seg.end - seg.start;
      if (this.reserved > 0 && this.reserved + len > this.maxBytes) return;
      this.start(seg);
      if (++this.nextSeg >= this.segs[this.nextObj]!.length) {
        this.nextObj++;
        this.nextSeg = 0;
      }
    }
  }

  private start(seg: Segment): void {
    if (seg.started) return;
    seg.started = true;
    this.reserved += seg.end - seg.start;
    seg.promise = this.fetch(seg);
    // Errors surface when the consumer reaches the segment; this only silences early rejections.
    seg.promise.catch(() => {});
  }

  /**
   * The bytes of object `index`, in order. Called by the encoder when the member's turn comes.
   */
  async *open(index: number): AsyncGenerator<Buffer> {
    this.current = index;
    this.pump();
    for (const seg of this.segs[index]!) {
      if (!seg.started) {
        // Outside the budget window (a single range larger than the budget): fetch it anyway.
        this.start(seg);
      }
      const chunks = await seg.promise!;
      try {
        for (const c of chunks) yield c;
      } finally {
        this.reserved -= seg.end - seg.start;
        seg.promise = undefined;
        this.pump();
      }
    }
  }

  /** Cancels every GET in flight. */
  close(reason?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort(reason);
  }

  /**
   * One segment's bytes. Chunks are kept as received: copying them into one buffer cost about
   * 0.8 CPU s per GiB and an 8 MiB allocation per range (garbage collection), for nothing, since
   * the encoder passes chunks through.
   */
  private async fetch(seg: Segment): Promise<Buffer[]> {
    const o = this.objects[seg.obj]!;
    const len = seg.end - seg.start;
    const chunks: Buffer[] = [];
    let filled = 0;
    let attempt = 0;
    const where = { bucket: o.bucket, key: o.key, action: "GetObject" };
    for (;;) {
      if (this.closed) throw new S3ZipError("ERR_ABORTED", "reading sources was cancelled", { cause: this.controller.signal.reason, bucket: o.bucket, key: o.key });
      const range = seg.whole && filled === 0 ? undefined : `bytes=${seg.start + filled}-${seg.end - 1}`;
      if (attempt > 0) this.resumed++;
      let body: Readable;
      try {
        const out = await this.client.send(
          new GetObjectCommand({
            Bucket: o.bucket,
            Key: o.key,
            VersionId: o.versionId,
            Range: range,
            IfMatch: o.etag === "" ? undefined : o.etag,
          }),
          { abortSignal: this.controller.signal },
        );
        if (out.ContentLength !== undefined && out.ContentLength !== len - filled) {
          (out.Body as Readable | undefined)?.destroy?.();
          throw new S3ZipError(
            "ERR_S3_SOURCE_CHANGED",
            `s3://${o.bucket}/${o.key}: expected ${len - filled} bytes, the server sent ${out.ContentLength}`,
            { bucket: o.bucket, key: o.key },
          );
        }
        // A store that listed no ETag: pin every later request to the first one seen.
        if (o.etag === "" && out.ETag) o.etag = out.ETag;
        body = out.Body as Readable;
      } catch (err) {
        if (err instanceof S3ZipError) throw err;
        if (this.closed || isAbortError(err)) throw new S3ZipError("ERR_ABORTED", "reading sources was cancelled", { cause: err, bucket: o.bucket, key: o.key });
        // The server answered with a status: it decided (missing, denied, changed). Do not retry.
        if (httpStatus(err) !== undefined && httpStatus(err)! < 500) throw mapS3Error(err, "ERR_S3_READ", where);
        if (attempt++ >= this.resumes) throw mapS3Error(err, "ERR_S3_READ", where);
        await delay(100 * 2 ** attempt);
        continue;
      }
      try {
        for await (const chunk of chunksOf(body)) {
          if (filled + chunk.length > len) {
            throw new S3ZipError("ERR_S3_SOURCE_CHANGED", `s3://${o.bucket}/${o.key}: more bytes than its listed size ${o.size}`, {
              bucket: o.bucket,
              key: o.key,
            });
          }
          if (chunk.length === 0) continue;
          chunks.push(chunk);
          filled += chunk.length;
          this.bytesFetched += chunk.length;
        }
        if (filled === len) return chunks;
        throw new Error(`body ended after ${filled} of ${len} bytes`);
      } catch (err) {
        if (err instanceof S3ZipError) throw err;
        if (this.closed || isAbortError(err)) throw new S3ZipError("ERR_ABORTED", "reading sources was cancelled", { cause: err, bucket: o.bucket, key: o.key });
        // A body cut mid-way: resume from the next byte, still pinned by If-Match.
        if (attempt++ >= this.resumes) throw mapS3Error(err, "ERR_S3_READ", where);
        await delay(50 * 2 ** attempt);
      }
    }
  }
}
