/**
 * The streaming writer: `zipStream(entries, options)` returns a Node Readable whose `_read`
 * pulls one chunk at a time from an async generator that produces the archive. Nothing is
 * opened or read before the consumer asks, and at most one source is open at a time.
 */
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { createAesEncryptorAsync, type AesEncryptor } from "./aes/index.js";
import { BlockDeflater } from "./deflate.js";
import { ZipError, isZipError } from "./errors.js";
import { ByteStore, quoteName } from "./names.js";
import {
  CENTRAL_NAME_OFFSET,
  NameRegistry,
  buildCentralHeader,
  buildDescriptor,
  buildEndRecords,
  buildLocalHeader,
  endNeedsZip64,
  layoutEntry,
  normalizeEntry,
  offsetNeedsZip64,
  resolveOptions,
  zip64Required,
  type EntryLayout,
  type NormalizedEntry,
  type ResolvedOptions,
} from "./plan.js";
import { MAX_UINT16, MAX_UINT32 } from "./records.js";
import { FILE_CHUNK_SIZE, openSource, type SourceReader } from "./sources.js";
import type { ZipEntry, ZipOptions } from "./types.js";

/** Live counters of a {@link ZipReadable}. */
export interface ZipStats {
  /** Entries completely written. */
  entries: number;
  /** Uncompressed bytes read from sources. */
  bytesIn: number;
  /** Archive bytes produced. */
  bytesOut: number;
  /** Whether any Zip64 record has been written so far. */
  zip64: boolean;
}

const PROGRESS_INTERVAL_MS = 100;

/**
 * An entry pulled before its turn, in two cases. While a stored file streams, the following
 * files are opened ahead in a small window (see {@link AHEAD_FILES}). While a deflated entry's
 * last blocks compress, the next entry is pulled and, when it is deflated too, its source is
 * opened and up to one in-flight window of blocks is submitted, so consecutive members compress
 * concurrently on the thread pool. Failures are kept and raised when the entry's turn comes,
 * before any of its bytes.
 */
interface Ahead {
  task: Promise<void>;
  /** Settles once this entry has been pulled from the iterable (the next one may then be pulled). */
  pulled: Promise<void>;
  /** Bytes this entry's first read may hold, counted against {@link AHEAD_BYTES}. */
  bytes: number;
  result?: IteratorResult<ZipEntry>;
  /** An encrypted entry's keys, derived on the thread pool while earlier entries stream. */
  encryptor?: Promise<AesEncryptor>;
  entriesError?: unknown;
  entry?: NormalizedEntry;
  entryError?: unknown;
  reader?: SourceReader;
  openError?: unknown;
  deflater?: BlockDeflater;
  crc: number;
  bytesIn: number;
  ended: boolean;
  /** Input read ahead but not yet taken by the deflater (it was full). */
  rest?: Uint8Array;
  readError?: unknown;
  sizeExceeded: boolean;
}

/**
 * The window of files opened ahead while a stored file streams: up to this many entries and
 * {@link AHEAD_BYTES} of first reads. Each open, fstat and read is a round trip to the thread
 * pool; with several files in flight the writer rarely waits for one (small files otherwise
 * leave the main thread idle more than half the time).
 */
const AHEAD_FILES = 8;
const AHEAD_BYTES = 2 * 1024 * 1024;

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A Node `Readable` producing a ZIP archive. Destroyed with a {@link ZipError} on any failure;
 * after a failure no end records are written, so a truncated archive never looks valid.
 */
export class ZipReadable extends Readable {
  readonly #opts: ResolvedOptions;
  readonly #entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>;
  #gen: AsyncGenerator<Uint8Array, void, undefined> | undefined;
  #entryIterator: Iterator<ZipEntry> | AsyncIterator<ZipEntry> | undefined;
  #reader: SourceReader | undefined;
  #deflater: BlockDeflater | undefined;
  readonly #ahead: Ahead[] = [];
  #aheadBytes = 0;
  #pumping = false;
  /** Sources finished with and closing in the background; awaited before the end records. */
  readonly #closing = new Set<Promise<void>>();
  #stopped = false;
  #abortListener: (() => void) | undefined;
  #lastProgress = 0;
  #currentName: string | undefined;
  readonly #stats: ZipStats = { entries: 0, bytesIn: 0, bytesOut: 0, zip64: false };

  constructor(entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>, options?: ZipOptions) {
    const opts = resolveOptions(options);
    super({ highWaterMark: opts.highWaterMark });
    if (
      entries === null ||
      typeof entries !== "object" ||
      (typeof (entries as AsyncIterable<ZipEntry>)[Symbol.asyncIterator] !== "function" &&
        typeof (entries as Iterable<ZipEntry>)[Symbol.iterator] !== "function")
    ) {
      throw new TypeError("zipstream: entries must be an Iterable or AsyncIterable of ZipEntry");
    }
    this.#opts = opts;
    this.#entries = entries;
    const signal = opts.signal;
    if (signal !== undefined) {
      const onAbort = (): void => {
        this.destroy(new ZipError("ERR_ABORTED", "zip stream aborted", { cause: signal.reason, entry: this.#currentName }));
      };
      if (signal.aborted) {
        // Destroyed before anything is pulled: nothing is consumed or opened.
        this.#stopped = true;
        onAbort();
      } else {
        signal.addEventListener("abort", onAbort, { once: true });
        this.#abortListener = () => signal.removeEventListener("abort", onAbort);
      }
    }
  }

  /** Live counters: entries written, bytes in and out, whether Zip64 was used. */
  get stats(): ZipStats {
    return { ...this.#stats };
  }

  override _read(): void {
    if (this.#pumping || this.#stopped) return;
    this.#pumping = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      this.#gen ??= this.#archive();
      for (;;) {
        const r = await this.#gen.next();
        if (this.#stopped) return;
        if (r.done) {
          this.#progress(true);
          this.#stopped = true;
          this.push(null);
          return;
        }
        this.#stats.bytesOut += r.value.length;
        this.#progress(false);
        if (!this.push(r.value)) return;
      }
    } catch (err) {
      if (!this.#stopped) this.destroy(this.#wrap(err));
    } finally {
      this.#pumping = false;
    }
  }

  #wrap(err: unknown): ZipError {
    if (isZipError(err)) return err;
    return new ZipError("ERR_INTERNAL", `zipstream: ${errorMessage(err)}`, { cause: err, entry: this.#currentName });
  }

  #progress(force: boolean): void {
    const cb = this.#opts.onProgress;
    if (cb === undefined) return;
    const now = Date.now();
    if (!force && now - this.#lastProgress < PROGRESS_INTERVAL_MS) return;
    this.#lastProgress = now;
    const p = { entries: this.#stats.entries, bytesIn: this.#stats.bytesIn, bytesOut: this.#stats.bytesOut, entry: this.#currentName };
    if (p.entry === undefined) delete p.entry;
    cb(p);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#stopped = true;
    this.#abortListener?.();
    this.#deflater?.discard();
    const tasks: Promise<unknown>[] = [];
    if (this.#reader !== undefined) tasks.push(this.#reader.close());
    for (const ahead of this.#ahead.splice(0)) {
      ahead.deflater?.discard();
      if (ahead.reader !== undefined) tasks.push(ahead.reader.close());
      // An open still in progress closes itself when it sees #stopped.
    }
    // A running generator queues return(); it takes effect at its next step (which checks #stopped).
    if (this.#gen !== undefined) tasks.push(this.#gen.return(undefined).catch(() => undefined));
    const it = this.#entryIterator;
    if (it !== undefined && typeof it.return === "function") {
      tasks.push(Promise.resolve().then(() => it.return!()).catch(() => undefined));
    }
    // Report the error now; cleanup continues in the background (a closing source may be slow).
    void Promise.allSettled(tasks);
    callback(err);
  }

  #checkAlive(): void {
    if (this.#stopped) throw new ZipError("ERR_ABORTED", "zip stream destroyed", { entry: this.#currentName });
  }

  async *#archive(): AsyncGenerator<Uint8Array, void, undefined> {
    const opts = this.#opts;
    const mode = opts.zip64;
    const central = new ByteStore();
    const names = new NameRegistry(opts, (pos) => {
      const v = central.view(pos - CENTRAL_NAME_OFFSET + 28, 2);
      return central.view(pos, v[0] | (v[1] << 8));
    });
    const src = this.#entries as AsyncIterable<ZipEntry> & Iterable<ZipEntry>;
    const it: Iterator<ZipEntry> | AsyncIterator<ZipEntry> =
      typeof src[Symbol.asyncIterator] === "function" ? src[Symbol.asyncIterator]() : src[Symbol.iterator]();
    this.#entryIterator = it;
    let offset = 0;
    let count = 0;
    for (;;) {
      let r: IteratorResult<ZipEntry>;
      const ahead = this.#ahead.shift();
      try {
        if (ahead !== undefined) {
          await ahead.task;
          // Only now: its task may still have been pulling when it was taken, and counts its
          // bytes into the window when the pull returns.
          this.#aheadBytes -= ahead.bytes;
          if (ahead.entriesError !== undefined) throw ahead.entriesError;
          r = ahead.result!;
        } else {
          r = await it.next();
        }
      } catch (err) {
        ahead?.deflater?.discard();
        if (ahead?.reader !== undefined) await ahead.reader.close();
        throw new ZipError("ERR_ENTRIES", `the entries iterable failed: ${errorMessage(err)}`, { cause: err });
      }
      if (this.#stopped) {
        if (ahead?.reader !== undefined) await ahead.reader.close();
        this.#checkAlive();
      }
      if (r.done) break;
      if (ahead?.entryError !== undefined) throw ahead.entryError;
      const n = ahead?.entry ?? normalizeEntry(r.value, opts);
      let resolved: ReturnType<NameRegistry["resolve"]>;
      try {
        resolved = names.resolve(n.name, n.type);
        this.#currentName = resolved.name;
        if (mode === "never") {
          if (count + 1 >= MAX_UINT16) throw zip64Required(`entry number ${count + 1} (65,535 or more entries)`, resolved.name);
          if (offset >= MAX_UINT32) throw zip64Required("the entry's offset (past 4 GiB)", resolved.name);
        }
      } catch (err) {
        ahead?.deflater?.discard();
        if (ahead?.reader !== undefined) await ahead.reader.close();
        throw err;
      }
      const result = yield* this.#entry(n, resolved.bytes, offset, ahead?.entry === n ? ahead : undefined);
      const record = buildCentralHeader(result.layout, result.crc, result.dataSize, result.size, offset, mode);
      const pos = central.append(record);
      names.commit(resolved.hash, resolved.bytes, pos + CENTRAL_NAME_OFFSET);
      if (result.layout.zip64 || offsetNeedsZip64(mode, offset)) this.#stats.zip64 = true;
      offset += result.written;
      count++;
      this.#stats.entries = count;
      this.#currentName = undefined;
      opts.onEntry?.({
        name: resolved.name,
        type: n.type,
        method: n.method,
        encrypted: result.layout.encrypted,
        size: result.size,
        compressedSize: result.dataSize,
        crc32: result.crc,
        offset: offset - result.written,
        zip64: result.layout.zip64,
      });
    }
    const cdOffset = offset;
    const cdSize = central.length;
    if (mode === "never" && (cdOffset >= MAX_UINT32 || cdSize >= MAX_UINT32)) throw zip64Required("the central directory (past 4 GiB)");
    // Build the end records before the directory is emitted, so no error can follow it.
    const end = buildEndRecords(mode, count, cdSize, cdOffset, opts.comment);
    if (endNeedsZip64(mode, count, cdSize, cdOffset)) this.#stats.zip64 = true;
    // Every source is released before the archive is declared complete.
    await Promise.all(this.#closing);
    for (const chunk of central.chunks()) yield chunk;
    yield end;
  }

  /** Writes one entry's local header, data and descriptor; returns what the central record needs. */
  async *#entry(
    n: NormalizedEntry,
    nameBytes: Uint8Array,
    offset: number,
    ahead: Ahead | undefined,
  ): AsyncGenerator<Uint8Array, { layout: EntryLayout; crc: number; size: number; dataSize: number; written: number }, undefined> {
    const opts = this.#opts;
    const mode = opts.zip64;
    const entryName = this.#currentName!;
    const fail = (code: string, message: string, cause?: unknown): ZipError =>
      new ZipError(code, `entry ${quoteName(entryName)}: ${message}`, cause === undefined ? { entry: entryName } : { entry: entryName, cause });

    let reader: SourceReader | undefined;
    let size = n.size;
    let knownCrc = n.crc32;
    if (n.type !== "directory") {
      // Store-mode in-memory data: CRC up front, so no data descriptor is needed.
      if (n.buffered !== undefined && n.method === "store" && n.password === undefined) {
        const c = zlib.crc32(n.buffered);
        if (knownCrc !== undefined && knownCrc !== c) {
          throw fail("ERR_CRC_MISMATCH", `declared crc32 ${knownCrc.toString(16)} but the data has ${c.toString(16)}`);
        }
        knownCrc = c;
      }
      if (ahead?.openError !== undefined) {
        throw fail("ERR_SOURCE", `cannot open the source: ${errorMessage(ahead.openError)}`, ahead.openError);
      }
      if (ahead?.reader !== undefined) {
        reader = ahead.reader;
      } else {
        try {
          reader = await openSource(n.buffered ?? n.source, n.buffered === undefined ? n.path : undefined, n.size);
        } catch (err) {
          throw fail("ERR_SOURCE", `cannot open the source: ${errorMessage(err)}`, err);
        }
      }
      this.#reader = reader;
      if (this.#stopped) {
        await reader.close();
        this.#checkAlive();
      }
      // A local file's size is known once opened: it is then checked like a declared size.
      if (size === undefined && n.path !== undefined && reader.size !== undefined) size = reader.size;
    }
    try {
      if (ahead?.sizeExceeded) throw fail("ERR_SIZE_MISMATCH", `declared size ${size} but the source has more bytes`);
      if (ahead?.readError !== undefined) {
        throw fail("ERR_SOURCE", `the source failed: ${errorMessage(ahead.readError)}`, ahead.readError);
      }
      const l = layoutEntry(n, nameBytes, mode, size, knownCrc);
      if (mode === "never" && size !== undefined && (size >= MAX_UINT32 || (l.dataSize ?? 0) >= MAX_UINT32)) {
        throw zip64Required("the entry's size (4 GiB or more)", entryName);
      }
      const header = buildLocalHeader(l);
      yield header;
      let written = header.length;
      let crc = ahead?.crc ?? 0;
      let bytesIn = ahead?.bytesIn ?? 0;
      let dataSize = 0;
      // Limit for 32-bit fields: a non-Zip64 entry must fail before a value reaches 0xFFFFFFFF.
      const checkOut = (len: number): void => {
        if (!l.zip64 && dataSize + len >= MAX_UINT32) {
          throw mode === "never" ? zip64Required("the entry's data (4 GiB or more)", entryName) : fail("ERR_ZIP64_REQUIRED", "stored data grew past 4 GiB");
        }
      };
      // Key derivation (PBKDF2, ~1 ms) runs on the thread pool: started ahead when this entry was
      // pulled early, else now.
      const enc: AesEncryptor | undefined = l.encrypted
        ? await (ahead?.encryptor ?? createAesEncryptorAsync(n.password!, opts.randomBytes))
        : undefined;
      if (enc !== undefined) {
        checkOut(enc.header.length);
        yield enc.header;
        dataSize += enc.header.length;
      }
      if (reader !== undefined) {
        const deflater = ahead?.deflater ?? (n.method === "deflate" ? new BlockDeflater(n.level) : undefined);
        this.#deflater = deflater;
        const emit = (out: Uint8Array): Uint8Array => {
          checkOut(out.length);
          const o = enc === undefined ? out : enc.update(out);
          dataSize += o.length;
          return o;
        };
        if (ahead?.rest !== undefined && deflater !== undefined) {
          let rest = ahead.rest;
          while (rest.length > 0) {
            rest = deflater.write(rest);
            while (deflater.full || deflater.ready) yield emit(await this.#take(deflater, fail));
          }
        }
        // A file read from disk: open the next entry's file (its first read starts at once) while
        // this one streams, so each file's open and first read leave the critical path.
        if (deflater === undefined && n.path !== undefined) this.#startAhead(true);
        for (;;) {
          if (ahead?.ended) break;
          let chunk: Uint8Array | null;
          try {
            chunk = await reader.read();
          } catch (err) {
            this.#checkAlive();
            throw fail("ERR_SOURCE", `the source failed: ${errorMessage(err)}`, err);
          }
          this.#checkAlive();
          if (chunk === null) break;
          const len = chunk.length;
          if (size !== undefined && bytesIn + len > size) {
            throw fail("ERR_SIZE_MISMATCH", `declared size ${size} but the source has more bytes`);
          }
          if (!l.zip64 && bytesIn + len >= MAX_UINT32) {
            throw mode === "never" ? zip64Required("the entry's size (4 GiB or more)", entryName) : fail("ERR_ZIP64_REQUIRED", "size grew past 4 GiB");
          }
          crc = zlib.crc32(chunk, crc);
          bytesIn += len;
          this.#stats.bytesIn += len;
          if (deflater === undefined) {
            yield emit(chunk);
          } else {
            let rest = chunk;
            do {
              rest = deflater.write(rest);
              while (deflater.full || deflater.ready) yield emit(await this.#take(deflater, fail));
            } while (rest.length > 0);
          }
        }
        if (deflater !== undefined) {
          deflater.end();
          // All input is submitted: start on the next entry while these blocks compress.
          this.#startAhead(false);
          while (deflater.inFlight > 0) yield emit(await this.#take(deflater, fail));
          this.#deflater = undefined;
        }
        this.#reader = undefined;
        // Closing is a round trip to the thread pool: let it run while the next entry starts.
        const closing = reader.close();
        this.#closing.add(closing);
        void closing.finally(() => this.#closing.delete(closing));
        if (size !== undefined && bytesIn !== size) {
          throw fail("ERR_SIZE_MISMATCH", `declared size ${size} but the source has ${bytesIn} bytes`);
        }
        if (n.crc32 !== undefined && crc !== n.crc32) {
          throw fail("ERR_CRC_MISMATCH", `declared crc32 ${n.crc32.toString(16)} but the data has ${crc.toString(16)}`);
        }
      }
      if (enc !== undefined) {
        const mac = enc.final();
        checkOut(mac.length);
        yield mac;
        dataSize += mac.length;
      }
      written += dataSize;
      if (l.dataSize !== undefined && l.dataSize !== dataSize) {
        throw fail("ERR_INTERNAL", `planned ${l.dataSize} data bytes but wrote ${dataSize}`);
      }
      if (l.descriptor) {
        const d = buildDescriptor(l, crc, dataSize, bytesIn);
        yield d;
        written += d.length;
      }
      return { layout: l, crc: l.encrypted ? 0 : crc, size: bytesIn, dataSize, written };
    } finally {
      if (reader !== undefined && this.#reader === reader) {
        this.#reader = undefined;
        await reader.close();
      }
    }
  }

  /**
   * Pulls the next entry before its turn. `files`: called while a stored file streams; fills the
   * window of files opened ahead (each settled pull extends it while the entries are files and
   * the window has room). Otherwise (a deflated entry has submitted all its input): pulls one
   * entry if none is queued and, if it is deflated, opens it and starts compressing.
   */
  #startAhead(files: boolean): void {
    const it = this.#entryIterator;
    const queue = this.#ahead;
    if (this.#stopped || it === undefined) return;
    const prev = queue.at(-1);
    if (!files && prev !== undefined) return;
    if (files) {
      if (queue.length >= AHEAD_FILES || this.#aheadBytes >= AHEAD_BYTES) return;
      if (prev !== undefined && (prev.entry === undefined || prev.entry.path === undefined)) return;
    }
    let pulled!: () => void;
    const ahead: Ahead = {
      task: Promise.resolve(),
      pulled: new Promise<void>((resolve) => (pulled = resolve)),
      bytes: 0,
      crc: 0,
      bytesIn: 0,
      ended: false,
      sizeExceeded: false,
    };
    queue.push(ahead);
    ahead.task = (async () => {
      try {
        // One pull at a time, in order; none after the end or a failure.
        if (prev !== undefined) {
          await prev.pulled;
          if (prev.result === undefined || prev.result.done || prev.entry === undefined) {
            ahead.result = { done: true, value: undefined };
            return;
          }
        }
        try {
          ahead.result = await it.next();
        } catch (err) {
          ahead.entriesError = err;
          return;
        }
        if (ahead.result.done || this.#stopped) return;
        try {
          ahead.entry = normalizeEntry(ahead.result.value, this.#opts);
        } catch (err) {
          ahead.entryError = err;
          return;
        }
      } finally {
        pulled();
      }
      const n = ahead.entry;
      if (n.password !== undefined) {
        // Salts are drawn now, in entry order (the current entry drew its own before this pull).
        ahead.encryptor = createAesEncryptorAsync(n.password, this.#opts.randomBytes);
        ahead.encryptor.catch(() => undefined);
      }
      // Files gain from opening early (open and first read), and deflated members from starting
      // early; other sources are opened at their turn, and the file window opens only files.
      if (n.type === "directory" || n.buffered !== undefined) return;
      if (n.path === undefined && (files || n.method !== "deflate")) return;
      if (files) {
        ahead.bytes = Math.min(n.size ?? FILE_CHUNK_SIZE, FILE_CHUNK_SIZE);
        this.#aheadBytes += ahead.bytes;
      }
      let reader: SourceReader;
      try {
        reader = await openSource(n.source, n.path, n.size);
      } catch (err) {
        ahead.openError = err;
        return;
      }
      ahead.reader = reader;
      if (this.#stopped) {
        await reader.close();
        return;
      }
      if (files) {
        this.#startAhead(true);
        return;
      }
      if (n.method !== "deflate") return;
      const deflater = new BlockDeflater(n.level);
      ahead.deflater = deflater;
      const size = n.size ?? (n.path !== undefined ? reader.size : undefined);
      while (!deflater.full) {
        let chunk: Uint8Array | null;
        try {
          chunk = await reader.read();
        } catch (err) {
          ahead.readError = err;
          return;
        }
        if (this.#stopped) return;
        if (chunk === null) {
          ahead.ended = true;
          return;
        }
        if (size !== undefined && ahead.bytesIn + chunk.length > size) {
          ahead.sizeExceeded = true;
          return;
        }
        ahead.crc = zlib.crc32(chunk, ahead.crc);
        ahead.bytesIn += chunk.length;
        this.#stats.bytesIn += chunk.length;
        const rest = deflater.write(chunk);
        if (rest.length > 0) {
          ahead.rest = rest;
          return;
        }
      }
    })().catch((err: unknown) => {
      ahead.readError ??= err;
    });
  }

  async #take(deflater: BlockDeflater, fail: (code: string, message: string, cause?: unknown) => ZipError): Promise<Uint8Array> {
    try {
      return await deflater.take();
    } catch (err) {
      throw fail("ERR_COMPRESSION", `deflate failed: ${errorMessage(err)}`, err);
    }
  }
}

/**
 * Streams a ZIP archive of `entries`.
 *
 * - Lazy: the entries iterable is consumed, and each source opened, only as the consumer reads.
 *   It may be an async generator still producing entries while the archive streams. Two
 *   exceptions, for throughput: when a deflated entry's input has all been submitted to the
 *   compressor, the next entry is pulled and, if deflated, opened and started (at most one
 *   window of blocks) while the current entry's last blocks compress; and while a stored file
 *   streams, the following entries are pulled one at a time and, while they are files, opened
 *   with their first read in flight (at most 8 files and 2 MiB); a non-file source met there
 *   stops the window and is opened at its turn.
 * - Memory: bounded by `highWaterMark` (default 1 MiB) of buffered output, two source chunks
 *   (files are read in 1 MiB reads with the next in flight), the files opened ahead (above), the
 *   deflate blocks in flight (about 2 x cores x 2 MiB), and the central directory kept as bytes
 *   (about 60 bytes + name per entry, plus 16-32 bytes for duplicate detection).
 * - Failure: the stream is destroyed with a {@link ZipError} (`code`, `entry`, `cause`); no end
 *   records follow a failure; the open source is closed.
 *
 * Options are validated immediately (TypeError naming the option).
 */
export function zipStream(entries: Iterable<ZipEntry> | AsyncIterable<ZipEntry>, options?: ZipOptions): ZipReadable {
  return new ZipReadable(entries, options);
}
