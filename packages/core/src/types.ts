import type { Readable } from "node:stream";

/** Bytes of one member, in any of the shapes zipstream accepts. A string is encoded as UTF-8. */
export type ZipSource =
  | Uint8Array
  | string
  | Readable
  | ReadableStream<Uint8Array>
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

/** A lazy source: called only when the entry's turn comes, never earlier. */
export type ZipSourceFactory = () => ZipSource | Promise<ZipSource>;

export type ZipMethod = "store" | "deflate";
export type Zip64Mode = "auto" | "always" | "never";
export type DuplicatePolicy = "error" | "rename" | "allow";
export type EntryType = "file" | "directory" | "symlink";

/** One member of the archive. */
export interface ZipEntry {
  /** Path inside the archive, `/`-separated, UTF-8. A directory's trailing `/` is added if missing. */
  name: string;
  /** The member's bytes (or, for a symlink, its target). Exactly one of `source` or `path` for files. */
  source?: ZipSource | ZipSourceFactory;
  /**
   * A local file. Opened when the entry's turn comes, or early (at most 8 files and 2 MiB of first
   * reads) while a stored file before it streams. With `size` declared it is not fstat'ed.
   */
  path?: string;
  /** Default "file". Directories have no data. */
  type?: EntryType;
  /** Overrides the archive's `method` for this entry. */
  method?: ZipMethod;
  /** Deflate level 0-9 for this entry; overrides the archive's `level`. */
  level?: number;
  /** Uncompressed size, when known up front. Checked: a mismatch fails with ERR_SIZE_MISMATCH. */
  size?: number;
  /**
   * Compressed size, when known up front (e.g. the entry is re-emitted from a deflate cache).
   * Only used by {@link predictZipSize} for deflated entries.
   */
  compressedSize?: number;
  /** CRC-32 of the uncompressed bytes, when known. Checked: a mismatch fails with ERR_CRC_MISMATCH. */
  crc32?: number;
  /** Modification time; default: the time the archive started. */
  mtime?: Date;
  /** Unix mode (permission bits, optionally with file type bits); default 0o644 files, 0o755 directories, 0o777 symlinks. */
  mode?: number;
  /** Per-entry comment (UTF-8, at most 65,535 bytes). */
  comment?: string;
  /** Per-entry AES-256 password; overrides the archive's. `null` stores this entry unencrypted. */
  password?: string | null;
}

/** Progress reported while the archive streams. */
export interface ZipProgress {
  /** Entries fully written so far. */
  entries: number;
  /** Uncompressed bytes read from sources so far. */
  bytesIn: number;
  /** Archive bytes emitted so far. */
  bytesOut: number;
  /** Name of the entry being written, if any. */
  entry?: string;
}

/** What was written for one entry; reported through `onEntry` once the entry is complete. */
export interface ZipEntryInfo {
  name: string;
  type: EntryType;
  method: ZipMethod;
  encrypted: boolean;
  /** Uncompressed size. */
  size: number;
  /** Size of the stored data (after compression and encryption). */
  compressedSize: number;
  crc32: number;
  /** Offset of the local header in the archive. */
  offset: number;
  zip64: boolean;
}

export interface ZipOptions {
  /** Default compression method. Default "deflate". */
  method?: ZipMethod;
  /** Default deflate level 0-9. Default 6. */
  level?: number;
  /**
   * "auto" (default): Zip64 records exactly where a limit requires them.
   * "always": every entry and the end of central directory use Zip64.
   * "never": fail with ERR_ZIP64_REQUIRED instead of crossing a limit.
   */
  zip64?: Zip64Mode;
  /** Archive comment (UTF-8, at most 65,535 bytes). */
  comment?: string;
  /** Aborts the stream: the output is destroyed with ERR_ABORTED and open sources are closed. */
  signal?: AbortSignal;
  /** What to do when two entries share a name. Default "error". */
  duplicates?: DuplicatePolicy;
  /** Called as bytes flow (throttled by the writer). */
  onProgress?: (progress: ZipProgress) => void;
  /** Called once per entry after its data (and descriptor) are written. */
  onEntry?: (info: ZipEntryInfo) => void;
  /** Archive-wide AES-256 (WinZip AE-2) password. Default: no encryption. */
  password?: string;
  /**
   * Source of random bytes for AES salts. For deterministic tests only; default
   * `crypto.randomFillSync`. Never set this in production.
   */
  randomBytes?: (size: number) => Uint8Array;
  /**
   * Time used for entries without `mtime`. Default: when `zipStream` was called.
   */
  defaultMtime?: Date;
  /** Readable highWaterMark of the output in bytes. Default 1 MiB. Bounds buffered output. */
  highWaterMark?: number;
}
