/**
 * Read-ahead: the stage between the entries iterable and the writer. {@link readAhead} pulls
 * entries one at a time, in order, and yields each as a {@link PreparedEntry}: normalized, with its
 * source ({@link EntryData}) and, when encrypted, its keys being derived. Some entries are pulled
 * before their turn, for throughput; the writer cannot tell them apart:
 *
 * - While a stored file streams, the following entries are pulled and, while they are files,
 *   opened with their first read in flight, in a window of {@link AHEAD_FILES} entries and
 *   {@link AHEAD_BYTES} of first reads. Each open and read is a round trip to the thread pool; with
 *   several in flight the writer rarely waits for one (small files otherwise leave the main thread
 *   idle more than half the time). Not with `fileIo: "sync"`: a synchronous open ahead would only
 *   block sooner, and hold its first chunk longer.
 * - When a deflated entry has submitted all its input, the next entry is pulled; a file is opened,
 *   and a deflated entry also submits up to one in-flight window of blocks, so consecutive members
 *   compress concurrently on the thread pool.
 * - An encrypted entry's key derivation (PBKDF2, ~1 ms) starts on the thread pool when it is
 *   pulled; salts are drawn in entry order.
 *
 * A failure met ahead (the iterable, a bad entry, an open, a read) is raised when the entry's turn
 * comes, before any of its bytes: each is a promise (or the {@link EntryData}'s first failure)
 * that the writer awaits at that point.
 */
import zlib from "node:zlib";
import { createAesEncryptorAsync, type AesEncryptor } from "./aes/index.js";
import { BlockDeflater } from "./deflate.js";
import { ZipError } from "./errors.js";
import { normalizeEntry, type NormalizedEntry, type ResolvedOptions } from "./plan.js";
import { FILE_CHUNK_SIZE, openSource, type SourceReader } from "./sources.js";
import type { FileIo, ZipEntry } from "./types.js";

/** Entries pulled ahead while a stored file streams (the window's count bound). */
export const AHEAD_FILES = 8;
/** First reads of the files opened ahead (the window's memory bound). */
export const AHEAD_BYTES = 2 * 1024 * 1024;

/**
 * A failure of an entry's data, typed by the writer once the entry's final name is known
 * (`code` is the {@link ZipError} code it becomes).
 */
export class EntryFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The pieces of the writer's state an {@link EntryData} reports to. */
export interface DataHooks {
  /** Aborted when the archive is destroyed: reads stop and nothing more is opened. */
  signal: AbortSignal;
  /** Called with each input chunk's length (the archive's `bytesIn`). */
  onInput(length: number): void;
  /** Called once a deflated entry has submitted all its input (its last blocks still compress). */
  onInputEnd(): void;
}

/**
 * One entry's data: its source (opened ahead or at its turn), the CRC-32 and byte count of what was
 * read, the declared-size check, and for a deflated entry its block compressor. Reading may start
 * ahead ({@link prime}); {@link output} continues from wherever that stopped. Memory: two source
 * chunks (see FileReader) plus, when deflated, the compressor's blocks in flight.
 */
export class EntryData {
  crc = 0;
  bytesIn = 0;
  #opening: Promise<SourceReader> | undefined;
  #reader: SourceReader | undefined;
  #size: number | undefined;
  #deflater: BlockDeflater | undefined;
  /** Input read ahead but not yet taken by the deflater (it was full). */
  #rest: Uint8Array | undefined;
  #ended = false;
  /** The first failure while reading ahead, raised by {@link output}. */
  #failure: unknown;
  /** Reading ahead in progress: {@link output} continues only once it has stopped (one reader at a time). */
  #priming: Promise<void> | undefined;
  #discarded = false;

  constructor(
    readonly n: NormalizedEntry,
    private readonly hooks: DataHooks,
    private readonly fileIo: FileIo = "async",
  ) {}

  /** Opens the source once (later calls return the same promise); rejects with an ERR_SOURCE failure. */
  open(): Promise<SourceReader> {
    this.#opening ??= (async () => {
      const n = this.n;
      let reader: SourceReader;
      try {
        reader = await openSource(n.buffered ?? n.source, n.buffered === undefined ? n.path : undefined, n.size, this.fileIo);
      } catch (err) {
        throw new EntryFailure("ERR_SOURCE", `cannot open the source: ${errorMessage(err)}`, err);
      }
      this.#reader = reader;
      // A local file's size is known once opened: it is then checked like a declared size.
      this.#size = n.size ?? (n.path !== undefined ? reader.size : undefined);
      if (this.#discarded || this.hooks.signal.aborted) {
        await reader.close();
        throw new EntryFailure("ERR_ABORTED", "zip stream destroyed");
      }
      return reader;
    })();
    return this.#opening;
  }

  /** The size the data must have: declared, or a file's size once opened. */
  get size(): number | undefined {
    return this.#size ?? this.n.size;
  }

  /**
   * Opens the source and submits input until the compressor's in-flight window is full (at most
   * one window of blocks ahead). A failure is kept for {@link output}.
   */
  prime(): Promise<void> {
    this.#priming ??= this.#prime();
    return this.#priming;
  }

  async #prime(): Promise<void> {
    try {
      const reader = await this.open();
      const deflater = (this.#deflater = new BlockDeflater(this.n.level));
      while (!deflater.full) {
        const chunk = await this.#read(reader);
        if (chunk === null) {
          this.#ended = true;
          return;
        }
        const rest = deflater.write(chunk);
        if (rest.length > 0) {
          this.#rest = rest;
          return;
        }
      }
    } catch (err) {
      this.#failure ??= err;
    }
  }

  /**
   * The member's data as it goes into the archive (before encryption): the source's chunks, or
   * their compressed blocks. `check(length)` runs before each input chunk is taken (the writer's
   * 32-bit limits). Throws {@link EntryFailure}s and {@link ZipError}s.
   */
  async *output(check: (length: number) => void): AsyncGenerator<Uint8Array, void, undefined> {
    await this.#priming;
    if (this.#failure !== undefined) throw this.#failure;
    const reader = await this.open();
    const deflater = this.#deflater ?? (this.n.method === "deflate" ? (this.#deflater = new BlockDeflater(this.n.level)) : undefined);
    let rest = this.#rest ?? new Uint8Array(0);
    this.#rest = undefined;
    for (;;) {
      if (deflater !== undefined) {
        while (rest.length > 0) {
          rest = deflater.write(rest);
          while (deflater.full || deflater.ready) yield await this.#take(deflater);
        }
      }
      if (this.#ended) break;
      const chunk = await this.#read(reader, check);
      if (chunk === null) break;
      if (deflater === undefined) yield chunk;
      else rest = chunk;
    }
    if (deflater !== undefined) {
      deflater.end();
      this.hooks.onInputEnd();
      while (deflater.inFlight > 0) yield await this.#take(deflater);
    }
  }

  /** Releases the source (idempotent); a pending open closes what it opens. */
  close(): Promise<void> {
    this.#discarded = true;
    this.#deflater?.discard();
    return this.#reader?.close() ?? Promise.resolve();
  }

  async #read(reader: SourceReader, check?: (length: number) => void): Promise<Uint8Array | null> {
    const { signal } = this.hooks;
    let chunk: Uint8Array | null;
    try {
      chunk = await reader.read();
    } catch (err) {
      if (signal.aborted) throw new EntryFailure("ERR_ABORTED", "zip stream destroyed");
      throw new EntryFailure("ERR_SOURCE", `the source failed: ${errorMessage(err)}`, err);
    }
    if (signal.aborted) throw new EntryFailure("ERR_ABORTED", "zip stream destroyed");
    if (chunk === null) {
      this.#ended = true;
      return null;
    }
    const len = chunk.length;
    const size = this.size;
    if (size !== undefined && this.bytesIn + len > size) {
      throw new EntryFailure("ERR_SIZE_MISMATCH", `declared size ${size} but the source has more bytes`);
    }
    check?.(len);
    this.crc = zlib.crc32(chunk, this.crc);
    this.bytesIn += len;
    this.hooks.onInput(len);
    return chunk;
  }

  async #take(deflater: BlockDeflater): Promise<Uint8Array> {
    try {
      return await deflater.take();
    } catch (err) {
      throw new EntryFailure("ERR_COMPRESSION", `deflate failed: ${errorMessage(err)}`, err);
    }
  }
}

/** An entry ready for the writer. */
export interface PreparedEntry {
  n: NormalizedEntry;
  /** The entry's data (none for a directory). */
  data?: EntryData;
  /** An encrypted entry's keys; rejects if the derivation failed. */
  encryptor?: Promise<AesEncryptor>;
}

/** Why an entry is pulled: at its turn, to fill the file window, or to overlap deflated members. */
type PullReason = "turn" | "files" | "overlap";

interface Slot {
  /** Settles (never rejects) once the entry is pulled: the next pull may then start. */
  pulled: Promise<void>;
  /** The entry, or undefined at the end; rejects with ERR_ENTRIES or the entry's validation error. */
  entry: Promise<PreparedEntry | undefined>;
  /** The entry if it was pulled and valid (read by the window, which extends only over files). */
  value?: PreparedEntry;
  /** Whether no entry can follow this one (the end, or a failure). */
  last: boolean;
  /** Bytes its first read may hold, counted against {@link AHEAD_BYTES}. */
  bytes: number;
}

export interface ReadAheadOptions {
  /** Aborted when the archive is destroyed: everything opened ahead is closed, the iterable returned. */
  signal: AbortSignal;
  /** Called with each input chunk's length. */
  onInput(length: number): void;
}

/**
 * The read-ahead stage: yields the entries of `entries` in order as {@link PreparedEntry}s (see
 * the module comment for what is started ahead). Memory beyond the current entry: at most
 * {@link AHEAD_FILES} files with {@link AHEAD_BYTES} of first reads, or one deflated entry with
 * one window of blocks in flight. On `signal`'s abort, every entry pulled ahead is closed and the
 * iterable's `return()` is called.
 */
export async function* readAhead(
  entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>,
  opts: ResolvedOptions,
  { signal, onInput }: ReadAheadOptions,
): AsyncGenerator<PreparedEntry, void, undefined> {
  const src = entries as AsyncIterable<ZipEntry> & Iterable<ZipEntry>;
  const it: Iterator<ZipEntry> | AsyncIterator<ZipEntry> =
    typeof src[Symbol.asyncIterator] === "function" ? src[Symbol.asyncIterator]() : src[Symbol.iterator]();
  /** Entries pulled ahead, not yet yielded. */
  const queue: Slot[] = [];
  let queuedBytes = 0;
  /** The latest pull: pulls are chained, one at a time, in order. */
  let tail: Slot | undefined;
  /** The entry being written (the writer closes it when done; closing again is a no-op). */
  let current: Slot | undefined;

  /** Closes the current entry and every entry pulled ahead, and returns the iterable. */
  const release = (): void => {
    const slots = current === undefined ? queue.splice(0) : [current, ...queue.splice(0)];
    for (const slot of slots) void slot.entry.then((p) => p?.data?.close(), () => undefined);
    if (typeof it.return === "function") void Promise.resolve().then(() => it.return!()).catch(() => undefined);
  };
  signal.addEventListener("abort", release, { once: true });

  /** While a stored file streams: extends the window over the following files. */
  const fill = (): void => {
    if (opts.fileIo === "sync" || signal.aborted || queue.length >= AHEAD_FILES || queuedBytes >= AHEAD_BYTES) return;
    const prev = queue.at(-1);
    // The window extends only from a pulled file (a pull in flight calls fill() when it settles).
    if (prev !== undefined && prev.value?.n.path === undefined) return;
    queue.push(pull("files"));
  };
  /** A deflated entry submitted all its input: the next entry starts, unless one is queued. */
  const overlap = (): void => {
    if (!signal.aborted && queue.length === 0) queue.push(pull("overlap"));
  };

  const pull = (reason: PullReason): Slot => {
    const prev = tail;
    let pulled!: () => void;
    const slot: Slot = { pulled: new Promise<void>((resolve) => (pulled = resolve)), entry: Promise.resolve(undefined), last: false, bytes: 0 };
    tail = slot;
    slot.entry = (async (): Promise<PreparedEntry | undefined> => {
      let n: NormalizedEntry;
      try {
        if (prev !== undefined) {
          await prev.pulled;
          if (prev.last) {
            slot.last = true;
            return undefined;
          }
        }
        let r: IteratorResult<ZipEntry>;
        try {
          r = await it.next();
        } catch (err) {
          slot.last = true;
          throw new ZipError("ERR_ENTRIES", `the entries iterable failed: ${errorMessage(err)}`, { cause: err });
        }
        if (r.done || signal.aborted) {
          slot.last = true;
          return undefined;
        }
        try {
          n = normalizeEntry(r.value, opts);
        } catch (err) {
          slot.last = true;
          throw err;
        }
      } finally {
        pulled();
      }
      const p: PreparedEntry = { n };
      slot.value = p;
      if (n.password !== undefined) {
        p.encryptor = createAesEncryptorAsync(n.password, opts.randomBytes);
        p.encryptor.catch(() => undefined);
      }
      if (n.type === "directory") return p;
      const data = (p.data = new EntryData(n, { signal, onInput, onInputEnd: overlap }, opts.fileIo));
      if (reason === "turn" || n.buffered !== undefined) return p;
      // Files gain from opening early (open and first read), deflated members from starting early;
      // other sources are opened at their turn, and the file window opens only files.
      if (n.path !== undefined) {
        if (reason === "files") {
          slot.bytes = Math.min(n.size ?? FILE_CHUNK_SIZE, FILE_CHUNK_SIZE);
          queuedBytes += slot.bytes;
          data.open().then(fill, () => undefined);
          return p;
        }
        if (n.method !== "deflate") {
          data.open().catch(() => undefined);
          return p;
        }
      }
      if (reason === "overlap" && n.method === "deflate") void data.prime();
      return p;
    })();
    slot.entry.catch(() => undefined);
    return slot;
  };

  let finished = false;
  try {
    for (;;) {
      const slot = (current = queue.shift() ?? pull("turn"));
      let p: PreparedEntry | undefined;
      try {
        p = await slot.entry;
      } finally {
        // Only now: a slot taken while its pull was in flight counts its bytes when the pull returns.
        queuedBytes -= slot.bytes;
      }
      if (p === undefined) {
        finished = true;
        return;
      }
      // A stored file streams next: open the following files meanwhile.
      if (p.n.path !== undefined && p.n.method === "store") fill();
      yield p;
    }
  } finally {
    signal.removeEventListener("abort", release);
    // The writer stopped early (a failure, or the archive destroyed).
    if (!finished) release();
  }
}
