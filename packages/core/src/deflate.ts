/**
 * Block-parallel raw deflate (pigz style) on the libuv thread pool.
 *
 * Input is cut into {@link DEFLATE_BLOCK_SIZE} blocks. Each block is compressed independently by
 * zlib's async API, primed with the previous 32 KiB of input as a preset dictionary (so matches
 * across the cut are still found) and ended with Z_SYNC_FLUSH, which byte-aligns the output with
 * an empty stored block and leaves the deflate stream open; the last block ends with Z_FINISH.
 * The concatenated outputs form one standard deflate stream (RFC 1951), which every reader
 * inflates as usual. Up to `maxInFlight` blocks are compressed at once; output stays in order.
 *
 * Memory bound: about maxInFlight x (block + its compressed output) + one block being filled.
 */
import { availableParallelism } from "node:os";
import zlib from "node:zlib";

export const DEFLATE_BLOCK_SIZE = 1 << 20;
const WINDOW = 32 * 1024;

/** Default blocks in flight: twice the cores (the thread pool has 4 threads by default). */
export const DEFAULT_IN_FLIGHT = Math.max(2, 2 * availableParallelism());

function deflateBlock(input: Uint8Array, level: number, dictionary: Uint8Array | undefined, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const opts: zlib.ZlibOptions = {
      level,
      finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      // One output buffer large enough for the whole block: a single thread-pool round trip
      // per block instead of one per 16 KiB of output (the default chunk size).
      chunkSize: Math.max(64 * 1024, input.length + (input.length >> 8) + 1024),
    };
    if (dictionary !== undefined && dictionary.length > 0) opts.dictionary = dictionary;
    zlib.deflateRaw(input, opts, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

interface Job {
  promise: Promise<Buffer>;
  settled: boolean;
}

export class BlockDeflater {
  private readonly queue: Job[] = [];
  private pending: Uint8Array[] = [];
  private pendingLength = 0;
  private dictionary: Uint8Array | undefined;
  private ended = false;

  constructor(
    private readonly level: number,
    private readonly maxInFlight = DEFAULT_IN_FLIGHT,
    private readonly blockSize = DEFLATE_BLOCK_SIZE,
  ) {}

  /**
   * Adds input; full blocks are submitted at once (views of `chunk`, not copies, when possible).
   * Stops when `maxInFlight` blocks are queued and returns the part of `chunk` not taken (empty
   * when all was taken): the caller takes output, then writes the rest.
   */
  write(chunk: Uint8Array): Uint8Array {
    let c = chunk;
    while (c.length > 0) {
      if (this.full) return c;
      if (this.pendingLength === 0 && c.length >= this.blockSize) {
        this.submit(c.subarray(0, this.blockSize), false);
        c = c.subarray(this.blockSize);
        continue;
      }
      const take = Math.min(this.blockSize - this.pendingLength, c.length);
      this.pending.push(c.subarray(0, take));
      this.pendingLength += take;
      c = c.subarray(take);
      if (this.pendingLength === this.blockSize) this.flushPending(false);
    }
    return c;
  }

  /** Submits the remainder (possibly empty) as the final block. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.flushPending(true);
  }

  /** True when the caller should wait for output before writing more (the in-flight bound). */
  get full(): boolean {
    return this.queue.length >= this.maxInFlight;
  }

  /** True when the oldest block is compressed (its output can be taken without waiting). */
  get ready(): boolean {
    return this.queue.length > 0 && this.queue[0].settled;
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /** The next block's output, in order. */
  async take(): Promise<Buffer> {
    const job = this.queue.shift();
    if (job === undefined) throw new Error("no block in flight");
    return job.promise;
  }

  /** Drops queued work (outputs are discarded; running zlib jobs finish on their own). */
  discard(): void {
    this.queue.length = 0;
    this.pending = [];
    this.pendingLength = 0;
  }

  private flushPending(last: boolean): void {
    const block = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLength);
    this.pending = [];
    this.pendingLength = 0;
    this.submit(block ?? new Uint8Array(0), last);
  }

  private submit(block: Uint8Array, last: boolean): void {
    const promise = deflateBlock(block, this.level, this.dictionary, last);
    const job: Job = { promise, settled: false };
    // Mark settled either way; a rejection is observed by whoever takes the job, and a
    // discarded job's rejection must not become an unhandled rejection.
    promise.then(
      () => (job.settled = true),
      () => (job.settled = true),
    );
    this.queue.push(job);
    this.dictionary = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : block.length > 0 ? this.joinWindow(block) : this.dictionary;
  }

  /** Last 32 KiB of input when a block is shorter than the window (only the final, short block). */
  private joinWindow(block: Uint8Array): Uint8Array {
    const prev = this.dictionary ?? new Uint8Array(0);
    const joined = Buffer.concat([prev, block]);
    return joined.subarray(Math.max(0, joined.length - WINDOW));
  }
}
