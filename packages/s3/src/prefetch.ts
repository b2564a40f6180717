import { setMaxListeners } from "node:events";
import type { S3Client } from "@aws-sdk/client-s3";
import { intOption } from "@zipstream/core";
import { MIN_PREFETCH_BYTES, MIN_PREFETCH_OBJECTS } from "./limits.js";
import { readRange } from "./ranges.js";
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
export { MIN_PREFETCH_BYTES, MIN_PREFETCH_OBJECTS } from "./limits.js";

interface Segment {
  /** Index of the object. */
  obj: number;
  start: number;
  end: number;
  started: boolean;
  /** The body's chunks as the socket delivered them (kept, not copied into one buffer). */
  promise?: Promise<Buffer[]>;
}

/**
 * Reads objects in order for the encoder while issuing the next GETs ahead, within an object and
 * a byte budget. Every GET is pinned with `If-Match` to the ETag seen at listing/HEAD time, so a
 * member is never a mix of two versions: a 412 fails with ERR_S3_SOURCE_CHANGED.
 *
 * Memory: at most about `bytes` (plus one range) of buffered bodies.
 */
export class Prefetcher {
  /**
   * Segments issued and not yet consumed, by object then segment index. Made only when issued:
   * building every object's segment list up front cost one record per 8 MiB of every source
   * (a 5 TiB object alone is 655,360 of them) before the first byte was read.
   */
  private readonly live = new Map<number, Map<number, Segment>>();
  private readonly range: number;
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
    this.range = options.rangeSize ?? DEFAULT_RANGE_SIZE;
    if (signal) {
      if (signal.aborted) this.close(signal.reason);
      else signal.addEventListener("abort", () => this.close(signal.reason), { once: true });
    }
  }

  /** Number of segments of object `obj`: one whole GET up to `rangeSize`, else ranges of `rangeSize`. */
  private segmentCount(obj: number): number {
    const size = this.objects[obj]!.size;
    return size <= this.range ? 1 : Math.ceil(size / this.range);
  }

  /** Segment `index` of object `obj`, made on first use and kept until it is consumed. */
  private segment(obj: number, index: number): Segment {
    let segs = this.live.get(obj);
    if (segs === undefined) this.live.set(obj, (segs = new Map()));
    let seg = segs.get(index);
    if (seg === undefined) {
      const size = this.objects[obj]!.size;
      const start = index * this.range;
      seg = { obj, start, end: size <= this.range ? size : Math.min(size, start + this.range), started: false };
      segs.set(index, seg);
    }
    return seg;
  }

  /** Segment records held now (issued and not yet consumed): bounded by the budget, not by the sources' sizes. */
  get segmentsHeld(): number {
    let n = 0;
    for (const m of this.live.values()) n += m.size;
    return n;
  }

  /** Starts the GETs that fit the budget. */
  pump(): void {
    while (!this.closed && this.nextObj < this.objects.length) {
      if (this.nextObj - this.current >= this.maxObjects) return;
      const len = Math.min(this.range, this.objects[this.nextObj]!.size - this.nextSeg * this.range);
      if (this.reserved > 0 && this.reserved + Math.max(0, len) > this.maxBytes) return;
      this.start(this.segment(this.nextObj, this.nextSeg));
      if (++this.nextSeg >= this.segmentCount(this.nextObj)) {
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
    const count = this.segmentCount(index);
    try {
      for (let i = 0; i < count; i++) {
        const seg = this.segment(index, i);
        if (!seg.started) {
          // Outside the budget window (a single range larger than the budget): fetch it anyway,
          // and move the issue cursor past it so that pump() never makes and fetches it again.
          this.start(seg);
          if (this.nextObj < index || (this.nextObj === index && this.nextSeg <= i)) {
            this.nextObj = i + 1 >= count ? index + 1 : index;
            this.nextSeg = i + 1 >= count ? 0 : i + 1;
          }
        }
        const chunks = await seg.promise!;
        try {
          for (const c of chunks) yield c;
        } finally {
          this.reserved -= seg.end - seg.start;
          seg.promise = undefined;
          this.live.get(index)?.delete(i);
          this.pump();
        }
      }
    } finally {
      this.live.delete(index);
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
    const chunks: Buffer[] = [];
    await readRange(this.client, o, seg.start, seg.end, {
      signal: this.controller.signal,
      resumes: this.resumes,
      onChunk: (c) => {
        chunks.push(c);
        this.bytesFetched += c.length;
      },
      onResume: () => this.resumed++,
    });
    return chunks;
  }
}

/** Validates a `prefetch` option (shared by `zipS3Keys` and `s3ZipEntries`). */
export function validatePrefetch(p: PrefetchOptions | undefined): void {
  if (p === undefined) return;
  if (typeof p !== "object" || p === null) throw new TypeError("prefetch must be an object { objects, bytes }");
  intOption("prefetch.objects", p.objects, MIN_PREFETCH_OBJECTS);
  intOption("prefetch.bytes", p.bytes, MIN_PREFETCH_BYTES);
  intOption("prefetch.rangeSize", p.rangeSize, 1);
  intOption("prefetch.resumes", p.resumes, 0);
}
