/**
 * Source adapters: every accepted source shape becomes one pull interface, {@link SourceReader}.
 * Nothing is opened before {@link openSource} is called (the writer calls it when the entry's
 * turn comes), and `close()` releases whatever was opened, even while a read is pending.
 */
import { close as fsClose, fstat as fsFstat, open as fsOpen, read as fsRead, type Stats } from "node:fs";
import { Readable } from "node:stream";
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

function toChunk(c: unknown): Uint8Array {
  if (c instanceof Uint8Array) return c;
  if (typeof c === "string") return Buffer.from(c, "utf8");
  if (c instanceof ArrayBuffer) return new Uint8Array(c);
  throw new TypeError(`source produced a chunk of type ${c === null ? "null" : typeof c}; expected Uint8Array`);
}

function isReadableStream(s: unknown): s is ReadableStream<Uint8Array> {
  return typeof s === "object" && s !== null && typeof (s as ReadableStream).getReader === "function";
}

function isNodeReadable(s: unknown): s is Readable {
  return s instanceof Readable || (typeof s === "object" && s !== null && typeof (s as Readable).pipe === "function" && typeof (s as Readable).read === "function");
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
      const c = toChunk(r.value);
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
 * Node Readable: chunks are taken from 'data' events one at a time (pausing after each), so every
 * chunk is passed on as the stream produced it. (The stream's async iterator calls `read()`,
 * which concatenates whatever is buffered: a copy of member data.)
 */
class NodeStreamReader implements SourceReader {
  private readonly queue: Uint8Array[] = [];
  private ended = false;
  private closed = false;
  private error: unknown;
  private waiter: (() => void) | undefined;

  constructor(private readonly stream: Readable) {
    if (stream.readableEnded) this.ended = true;
    else if (stream.destroyed) this.error = stream.errored ?? new Error("source stream was destroyed before it was read");
    const wake = (): void => {
      const w = this.waiter;
      this.waiter = undefined;
      w?.();
    };
    stream.on("data", (c: unknown) => {
      stream.pause();
      try {
        const chunk = toChunk(c);
        if (chunk.length > 0) this.queue.push(chunk);
      } catch (err) {
        this.error ??= err;
      }
      wake();
    });
    stream.once("end", () => {
      this.ended = true;
      wake();
    });
    stream.on("error", (err) => {
      this.error ??= err;
      wake();
    });
    stream.once("close", () => {
      if (!this.ended && !this.closed) this.error ??= new Error("source stream closed before its end");
      wake();
    });
    stream.pause();
  }

  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.queue.length > 0) return this.queue.shift()!;
      if (this.error !== undefined) throw this.error;
      if (this.ended || this.closed) return null;
      const wait = new Promise<void>((resolve) => (this.waiter = resolve));
      this.stream.resume();
      await wait;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    if (!this.stream.destroyed) this.stream.destroy();
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
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
  if (isNodeReadable(s)) return new NodeStreamReader(s);
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
