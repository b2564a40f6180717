/**
 * The streaming writer: `zipStream(entries, options)` returns a Node Readable whose `_read`
 * pulls one chunk at a time from an async generator that produces the archive. Two stages:
 *
 *   entries -> readAhead (read-ahead.ts: pulls, validates, opens and starts entries, some ahead)
 *           -> #archive / #entry (this file: headers, data, descriptors, central directory)
 *           -> the Readable's buffer (highWaterMark) -> the consumer
 *
 * The writer has one path per entry; nothing runs before the consumer asks.
 */
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { ZipError, isZipError } from "./errors.js";
import { ByteStore, quoteName } from "./names.js";
import {
  CENTRAL_NAME_OFFSET,
  NameRegistry,
  assertFitsWithoutZip64,
  buildCentralHeader,
  buildDescriptor,
  buildEndRecords,
  buildLocalHeader,
  endNeedsZip64,
  layoutEntry,
  offsetNeedsZip64,
  resolveOptions,
  zip64Required,
  type EntryLayout,
  type ResolvedOptions,
} from "./plan.js";
import { EntryFailure, readAhead, type PreparedEntry } from "./read-ahead.js";
import { MAX_UINT32 } from "./records.js";
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
  /**
   * Aborted when the stream is destroyed (by the user's signal, `destroy()` or a failure): the
   * read-ahead stage then closes every source it opened and returns the entries iterator.
   */
  readonly #stop = new AbortController();
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
    // Closes the current source and everything read ahead (read-ahead.ts), in the background.
    this.#stop.abort();
    // A running generator queues return(); it takes effect at its next step (which checks #stopped).
    void this.#gen?.return(undefined).catch(() => undefined);
    // Report the error now; cleanup continues in the background (a closing source may be slow).
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
    const stats = this.#stats;
    const prepared = readAhead(this.#entries, opts, { signal: this.#stop.signal, onInput: (len) => (stats.bytesIn += len) });
    let offset = 0;
    let count = 0;
    for await (const p of prepared) {
      this.#checkAlive();
      const resolved = names.resolve(p.n.name, p.n.type);
      this.#currentName = resolved.name;
      const result = yield* this.#entry(p, resolved.bytes, offset, count + 1);
      const record = buildCentralHeader(result.layout, result.crc, result.dataSize, result.size, offset, mode);
      const pos = central.append(record);
      names.commit(resolved.hash, resolved.bytes, pos + CENTRAL_NAME_OFFSET);
      if (result.layout.zip64 || offsetNeedsZip64(mode, offset)) stats.zip64 = true;
      offset += result.written;
      count++;
      stats.entries = count;
      this.#currentName = undefined;
      opts.onEntry?.({
        name: resolved.name,
        type: p.n.type,
        method: p.n.method,
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
    // Build the end records before the directory is emitted, so no error can follow it (under
    // "never", this is where a directory past 4 GiB fails: ERR_ZIP64_REQUIRED).
    const end = buildEndRecords(mode, count, cdSize, cdOffset, opts.comment);
    if (endNeedsZip64(mode, count, cdSize, cdOffset)) stats.zip64 = true;
    // Every source is released before the archive is declared complete.
    await Promise.all(this.#closing);
    for (const chunk of central.chunks()) yield chunk;
    yield end;
  }

  /**
   * Writes one entry (the `number`th, at `offset`): local header, data, descriptor. One path for
   * every entry: whatever was started ahead is inside `p` (see read-ahead.ts). Returns what the
   * central record needs.
   */
  async *#entry(
    p: PreparedEntry,
    nameBytes: Uint8Array,
    offset: number,
    number: number,
  ): AsyncGenerator<Uint8Array, { layout: EntryLayout; crc: number; size: number; dataSize: number; written: number }, undefined> {
    const { n, data } = p;
    const mode = this.#opts.zip64;
    const entryName = this.#currentName!;
    const fail = (code: string, message: string, cause?: unknown): ZipError =>
      new ZipError(code, `entry ${quoteName(entryName)}: ${message}`, cause === undefined ? { entry: entryName } : { entry: entryName, cause });
    let knownCrc = n.crc32;
    // Store-mode in-memory data: CRC up front, so no data descriptor is needed.
    if (n.buffered !== undefined && n.method === "store" && n.password === undefined) {
      const c = zlib.crc32(n.buffered);
      if (knownCrc !== undefined && knownCrc !== c) {
        throw fail("ERR_CRC_MISMATCH", `declared crc32 ${knownCrc.toString(16)} but the data has ${c.toString(16)}`);
      }
      knownCrc = c;
    }
    let closed = false;
    try {
      if (data !== undefined) await data.open();
      const size = data?.size ?? n.size;
      const l = layoutEntry(n, nameBytes, mode, size, knownCrc);
      if (mode === "never") assertFitsWithoutZip64(number, offset, size ?? 0, l.dataSize ?? 0, entryName);
      const header = buildLocalHeader(l);
      yield header;
      let dataSize = 0;
      // Limit for 32-bit fields: a non-Zip64 entry must fail before a value reaches 0xFFFFFFFF
      // (sizes learned while streaming; known sizes were checked above).
      const limit = (value: number, what: string): void => {
        if (!l.zip64 && value >= MAX_UINT32) {
          throw mode === "never" ? zip64Required(`the entry's ${what} (4 GiB or more)`, entryName) : fail("ERR_ZIP64_REQUIRED", `${what} grew past 4 GiB`);
        }
      };
      const out = (chunk: Uint8Array): Uint8Array => {
        limit(dataSize + chunk.length, "data");
        dataSize += chunk.length;
        return chunk;
      };
      const enc = p.encryptor === undefined ? undefined : await p.encryptor;
      if (enc !== undefined) yield out(enc.header);
      if (data !== undefined) {
        for await (const chunk of data.output((len) => limit(data.bytesIn + len, "size"))) {
          yield out(enc === undefined ? chunk : enc.update(chunk));
        }
        // Closing is a round trip to the thread pool: let it run while the next entry starts.
        const closing = data.close();
        closed = true;
        this.#closing.add(closing);
        void closing.finally(() => this.#closing.delete(closing));
        if (size !== undefined && data.bytesIn !== size) {
          throw fail("ERR_SIZE_MISMATCH", `declared size ${size} but the source has ${data.bytesIn} bytes`);
        }
        if (n.crc32 !== undefined && data.crc !== n.crc32) {
          throw fail("ERR_CRC_MISMATCH", `declared crc32 ${n.crc32.toString(16)} but the data has ${data.crc.toString(16)}`);
        }
      }
      if (enc !== undefined) yield out(enc.final());
      if (l.dataSize !== undefined && l.dataSize !== dataSize) {
        throw fail("ERR_INTERNAL", `planned ${l.dataSize} data bytes but wrote ${dataSize}`);
      }
      const crc = data?.crc ?? 0;
      const bytesIn = data?.bytesIn ?? 0;
      let written = header.length + dataSize;
      if (l.descriptor) {
        const d = buildDescriptor(l, crc, dataSize, bytesIn);
        yield d;
        written += d.length;
      }
      return { layout: l, crc: l.encrypted ? 0 : crc, size: bytesIn, dataSize, written };
    } catch (err) {
      if (err instanceof EntryFailure) throw fail(err.code, err.message, err.cause);
      throw err;
    } finally {
      // On a failure: release the source before the error is raised (not awaited otherwise: the
      // close above runs in the background).
      if (!closed) await data?.close();
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
 *   (files are read in 1 MiB reads with the next in flight, or one 256 KiB chunk at a time with
 *   `fileIo: "sync"`, which also opens no file ahead; a Node stream source queues up to its
 *   own highWaterMark), the files opened ahead (above), the
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
