/**
 * Source adapters: every accepted source shape becomes one pull interface, {@link SourceReader}.
 * Nothing is opened before {@link openSource} is called (the writer calls it when the entry's
 * turn comes), and `close()` releases whatever was opened, even while a read is pending.
 */
import { close as fsClose, fstat as fsFstat, open as fsOpen, read as fsRead, type Stats } from "node:fs";
import { chunksOf, isNodeReadable, toBytes } from "./chunks.js";
import type { ZipSource, ZipSourceFactory } from "./types.js";

/** Default read size for `path` sources: large reads keep syscalls and awaits per byte low. */
export const FILE_CHUNK_SIZE = 1 << 20;

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
 * Reads a file in `chunkSize` reads with one read always in flight: the first read starts when
 * the file is opened and the next one as soon as a chunk is handed out, so the thread pool reads
 * while the writer CRCs and emits (each round trip to the pool is costly on virtualised hosts).
 * The read that should reach the end asks for one byte more than fstat promised: a short answer
 * proves EOF without another round trip, and a file that grew shows its extra byte.
 * Memory: at most two chunks (the one handed out and the one being read).
 */
class FileReader implements SourceReader {
  private closed = false;
  private position = 0;
  private eof = false;
  private pending: Promise<Uint8Array | null> | undefined;
  /** The read in flight, settled or not: the descriptor is closed only after it (see close()). */
  private inFlight: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly chunkSize: number,
  ) {
    this.pending = this.fetch();
  }
  private fetch(): Promise<Uint8Array | null> {
    const p = this.readOnce();
    // Handled when awaited by read(); a reader closed before that must not leave an unhandled rejection.
    this.inFlight = p.catch(() => undefined);
    return p;
  }
  private readOnce(): Promise<Uint8Array | null> {
    const left = this.size - this.position;
    // Past the expected size the file grew: keep reading in modest steps until EOF.
    const len = left >= this.chunkSize ? this.chunkSize : left >= 0 ? left + 1 : 64 * 1024;
    const buf = Buffer.allocUnsafe(len);
    return new Promise((resolve, reject) => {
      fsRead(this.fd, buf, 0, len, this.position, (err, bytesRead) => {
        if (err) return reject(err);
        if (bytesRead === 0) {
          this.eof = true;
          return resolve(null);
        }
        this.position += bytesRead;
        if (len === left + 1 && bytesRead === left) this.eof = true;
        resolve(bytesRead === len ? buf : buf.subarray(0, bytesRead));
      });
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
 * Opens a source: calls a factory, or opens a file (one descriptor, read in `chunkSize` reads).
 * Called only when the entry's turn comes. A file whose size the entry declares is not fstat'ed
 * (one round trip to the thread pool fewer per file): reading proves the size either way, and a
 * directory or pipe fails on its first read instead.
 */
export async function openSource(
  source: ZipSource | ZipSourceFactory | undefined,
  path: string | undefined,
  declaredSize?: number,
  chunkSize = FILE_CHUNK_SIZE,
): Promise<SourceReader> {
  if (path !== undefined) {
    const fd = await openFd(path);
    if (declaredSize !== undefined) return new FileReader(fd, declaredSize, chunkSize);
    try {
      const st = await fstatFd(fd);
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      return new FileReader(fd, st.size, chunkSize);
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
