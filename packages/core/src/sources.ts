/**
 * Source adapters: every accepted source shape becomes one pull interface, {@link SourceReader}.
 * Nothing is opened before {@link openSource} is called (the writer calls it when the entry's
 * turn comes), and `close()` releases whatever was opened, even while a read is pending.
 */
import { close as fsClose, closeSync, fstat as fsFstat, fstatSync, open as fsOpen, openSync, read as fsRead, readSync, type Stats } from "node:fs";
import { chunksOf, isNodeReadable, toBytes } from "./chunks.js";
import type { FileIo, ZipSource, ZipSourceFactory } from "./types.js";

/** Read size for `path` sources read on the thread pool: large reads keep round trips per byte low. */
export const FILE_CHUNK_SIZE = 1 << 20;
/**
 * Read size for `path` sources read synchronously (`fileIo: "sync"`). No round trip to amortise,
 * and every chunk is fresh memory (it is handed on, so it cannot be reused): on the benchmark
 * corpus, reads of at most 256 KiB into fresh buffers cost the main thread 0.46 s against 0.60 s
 * for 1 MiB reads (BENCHMARKS.md, issue 15: malloc recycles the smaller blocks, and the kernel's
 * copy is still in cache when the CRC reads it); inside zipStream 128-384 KiB measured the same,
 * 512 KiB worse.
 */
export const SYNC_FILE_CHUNK_SIZE = 256 * 1024;

export interface SourceReader {
  /** The next non-empty chunk, or `null` at the end. */
  read(): Promise<Uint8Array | null>;
  /** Releases the source (destroys a stream, cancels a web stream, closes a file). Idempotent. */
  close(): Promise<void>;
  /** Size known after opening (a file's size from fstat), if any. */
  readonly size?: number;
}

function isReadableStream(s: unknown): s is ReadableStream<Uint8Array> {
  return typeof s === "object" && s !== null && typeof (s as ReadableStream).getReader === "function";
}

class BytesReader implements SourceReader {
  private done = false;
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(): Promise<Uint8Array | null> {
    if (this.done || this.bytes.length === 0) return null;
    this.done = true;
    return this.bytes;
  }
  async close(): Promise<void> {
    this.done = true;
  }
}

/**
 * Sources pulled one result at a time (sync/async iterators, web stream readers): one loop that
 * skips empty chunks and stops once closed; `cancel` releases the underlying source.
 */
class PullReader implements SourceReader {
  private closed = false;
  constructor(
    private readonly next: () => Promise<IteratorResult<unknown>> | IteratorResult<unknown> | Promise<ReadableStreamReadResult<Uint8Array>>,
    private readonly cancel: () => unknown,
  ) {}
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.closed) return null;
      const r = await this.next();
      if (r.done || this.closed) return null;
      const c = toBytes(r.value);
      if (c.length > 0) return c;
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.cancel();
    } catch {
      // The source is being discarded (an errored web stream rejects cancel); nothing changes.
    }
  }
}

function iteratorReader(it: Iterator<unknown> | AsyncIterator<unknown>): SourceReader {
  return new PullReader(() => it.next(), () => it.return?.());
}

function webStreamReader(stream: ReadableStream<Uint8Array>): SourceReader {
  const reader = stream.getReader();
  return new PullReader(() => reader.read(), () => reader.cancel());
}

/**
 * The bookkeeping both file readers share: how much to read next, and what a read returned. The
 * read that should reach the end asks for one byte more than the size promised: a short answer
 * proves EOF without another read, and a file that grew shows its extra byte.
 */
abstract class FileChunks {
  protected position = 0;
  protected eof = false;
  constructor(
    readonly size: number,
    private readonly chunkSize: number,
  ) {}
  protected nextLength(): number {
    const left = this.size - this.position;
    // Past the expected size the file grew: keep reading in modest steps until EOF.
    return left >= this.chunkSize ? this.chunkSize : left >= 0 ? left + 1 : 64 * 1024;
  }
  /** Accounts for a read of `len` bytes into `buf` that returned `bytesRead`; the chunk or null at EOF. */
  protected accept(buf: Buffer, len: number, bytesRead: number): Uint8Array | null {
    if (bytesRead === 0) {
      this.eof = true;
      return null;
    }
    const left = this.size - this.position;
    this.position += bytesRead;
    if (len === left + 1 && bytesRead === left) this.eof = true;
    return bytesRead === len ? buf : buf.subarray(0, bytesRead);
  }
}

/**
 * Reads a file on the thread pool in `chunkSize` reads with one read always in flight: the first
 * read starts when the file is opened and the next one as soon as a chunk is handed out, so the
 * thread pool reads while the writer CRCs and emits (each round trip to the pool is costly on
 * virtualised hosts). Memory: at most two chunks (the one handed out and the one being read).
 */
class FileReader extends FileChunks implements SourceReader {
  private closed = false;
  private pending: Promise<Uint8Array | null> | undefined;
  /** The read in flight, settled or not: the descriptor is closed only after it (see close()). */
  private inFlight: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  constructor(
    private readonly fd: number,
    size: number,
    chunkSize: number,
  ) {
    super(size, chunkSize);
    this.pending = this.fetch();
  }
  private fetch(): Promise<Uint8Array | null> {
    const p = this.readOnce();
    // Handled when awaited by read(); a reader closed before that must not leave an unhandled rejection.
    this.inFlight = p.catch(() => undefined);
    return p;
  }
  private readOnce(): Promise<Uint8Array | null> {
    const len = this.nextLength();
    const buf = Buffer.allocUnsafe(len);
    return new Promise((resolve, reject) => {
      fsRead(this.fd, buf, 0, len, this.position, (err, bytesRead) => (err ? reject(err) : resolve(this.accept(buf, len, bytesRead))));
    });
  }
  async read(): Promise<Uint8Array | null> {
    const p = this.pending;
    if (this.closed || p === undefined) return null;
    const chunk = await p;
    if (this.closed || chunk === null) {
      this.pending = undefined;
      return null;
    }
    this.pending = this.eof ? undefined : this.fetch();
    return chunk;
  }
  close(): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    // A raw descriptor must outlive the read using it: closed at once, its number could be
    // reused by another open and the read would land in the wrong file.
    this.closing ??= this.inFlight.then(() => closeFd(this.fd));
    return this.closing;
  }
}

/**
 * The event loop gets a turn after this many bytes read synchronously, or {@link SYNC_TURN_READS}
 * reads, whichever comes first (all `fileIo: "sync"` readers together). Without it, a consumer
 * that never pushes back (one that hashes or counts chunks in memory) would take the whole
 * archive in one macrotask: no timer, signal or abort would run until it ends. One
 * `setImmediate` per 8 MiB costs nothing measurable.
 */
export const SYNC_TURN_BYTES = 8 * 1024 * 1024;
/** See {@link SYNC_TURN_BYTES}: many small files block as long as a few large ones. */
export const SYNC_TURN_READS = 128;
let syncBytes = 0;
let syncReads = 0;

/**
 * Reads a file with synchronous reads on the calling thread (`fileIo: "sync"`): each `read()`
 * blocks the event loop for one `chunkSize` read, and the event loop gets a turn every
 * {@link SYNC_TURN_BYTES}; nothing is in flight between calls, so closing is immediate. Memory:
 * the chunk handed out.
 */
class SyncFileReader extends FileChunks implements SourceReader {
  private fd: number | undefined;
  constructor(fd: number, size: number, chunkSize: number) {
    super(size, chunkSize);
    this.fd = fd;
  }
  read(): Promise<Uint8Array | null> {
    if (this.fd === undefined || this.eof) return Promise.resolve(null);
    const len = this.nextLength();
    const buf = Buffer.allocUnsafe(len);
    let chunk: Uint8Array | null;
    try {
      chunk = this.accept(buf, len, readSync(this.fd, buf, 0, len, this.position));
    } catch (err) {
      return Promise.reject(err);
    }
    syncBytes += len;
    if (++syncReads < SYNC_TURN_READS && syncBytes < SYNC_TURN_BYTES) return Promise.resolve(chunk);
    syncBytes = syncReads = 0;
    return new Promise((resolve) => setImmediate(resolve, chunk));
  }
  close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // Nothing was written through this descriptor: a failed close loses nothing.
      }
    }
    return Promise.resolve();
  }
}

// Raw descriptors and callback calls: a FileHandle's promise machinery costs the main thread
// more per call (about 9 % of store throughput on the benchmark corpus, measured). Closing stays
// asynchronous: close(2) can block on network and FUSE filesystems.
function closeFd(fd: number): Promise<void> {
  return new Promise((resolve) => fsClose(fd, () => resolve()));
}

function openFd(path: string): Promise<number> {
  return new Promise((resolve, reject) => fsOpen(path, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
}

function fstatFd(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) => fsFstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
}

function regularFileSize(st: Stats, path: string): number {
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  return st.size;
}

/** Adapts an already-produced source value. */
export function readerFor(s: ZipSource): SourceReader {
  if (s instanceof Uint8Array) return new BytesReader(s);
  if (typeof s === "string") return new BytesReader(Buffer.from(s, "utf8"));
  // Chunks exactly as the stream pushed them (its own iterator would concatenate: a copy).
  if (isNodeReadable(s)) return iteratorReader(chunksOf(s));
  if (isReadableStream(s)) return webStreamReader(s);
  if (typeof s === "object" && s !== null) {
    const ai = (s as AsyncIterable<Uint8Array>)[Symbol.asyncIterator];
    if (typeof ai === "function") return iteratorReader(ai.call(s));
    const si = (s as Iterable<Uint8Array>)[Symbol.iterator];
    if (typeof si === "function") return iteratorReader(si.call(s));
  }
  throw new TypeError(`unsupported source type ${s === null ? "null" : typeof s}`);
}

/**
 * Opens a source: calls a factory, or opens a file (one descriptor, read in chunks on the thread
 * pool, or synchronously when `fileIo` is "sync"). Called only when the entry's turn comes. A
 * file whose size the entry declares is not fstat'ed (one round trip to the thread pool fewer per
 * file): reading proves the size either way, and a directory or pipe fails on its first read
 * instead.
 */
export async function openSource(
  source: ZipSource | ZipSourceFactory | undefined,
  path: string | undefined,
  declaredSize?: number,
  fileIo: FileIo = "async",
): Promise<SourceReader> {
  if (path !== undefined && fileIo === "sync") {
    const fd = openSync(path, "r");
    try {
      const size = declaredSize ?? regularFileSize(fstatSync(fd), path);
      return new SyncFileReader(fd, size, SYNC_FILE_CHUNK_SIZE);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
  if (path !== undefined) {
    const fd = await openFd(path);
    try {
      const size = declaredSize ?? regularFileSize(await fstatFd(fd), path);
      return new FileReader(fd, size, FILE_CHUNK_SIZE);
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
  }
  if (typeof source === "function") {
    const produced = await (source as ZipSourceFactory)();
    return readerFor(produced);
  }
  if (source === undefined) throw new TypeError("entry has no source");
  return readerFor(source);
}
