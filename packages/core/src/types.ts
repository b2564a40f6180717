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
/** How entry names are compared for {@link ZipOptions.duplicates}; see {@link ZipOptions.collisions}. */
export type CollisionMode = "portable" | "exact";
export type EntryType = "file" | "directory" | "symlink";
/** How `path` entries are read; see {@link ZipOptions.fileIo}. */
export type FileIo = "async" | "sync";

/** One member of the archive. */
export interface ZipEntry {
  /** Path inside the archive, `/`-separated, UTF-8. A directory's trailing `/` is added if missing. */
  name: string;
  /**
   * The member's bytes (or, for a symlink, its target: a string or Uint8Array, checked up front,
   * see {@link ZipOptions.allowUnsafeSymlinks}). Exactly one of `source` or `path` for files.
   */
  source?: ZipSource | ZipSourceFactory;
  /**
   * A local file. Opened when the entry's turn comes, or early (at most 8 files and 2 MiB of first
   * reads) while a stored file before it streams (not with {@link ZipOptions.fileIo} "sync"). With
   * `size` declared it is not fstat'ed.
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
  /**
   * Unix mode: permission bits, optionally with the file type bits of the entry's `type`
   * (`S_IFREG` 0o100000 for a file, `S_IFDIR` 0o040000 for a directory, `S_IFLNK` 0o120000 for a
   * symlink), which are added when absent. Other type bits fail with ERR_INVALID_ENTRY: a file
   * with `S_IFLNK` would be extracted as a link, and devices, FIFOs and sockets are not archive
   * members. Default 0o644 files, 0o755 directories, 0o777 symlinks.
   */
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
  /**
   * What to do when two entries share a name (compared as `collisions` says, after empty and
   * `.` segments are collapsed: `a//b`, `./a/b` and `a/./b` are all written as `a/b`). Default
   * "error" (ERR_DUPLICATE_NAME); "rename" writes `a (1).txt`, `a (2).txt`...; "allow" writes
   * the names as given. Memory under "error" and "rename": 16-32 bytes per entry (a hash table of
   * 32-bit hashes and positions; the names are read back from the central directory).
   */
  duplicates?: DuplicatePolicy;
  /**
   * Which names count as the same for `duplicates`. Default "portable": names that are equal
   * after lower-casing and Unicode NFC normalisation (`A.txt` and `a.txt`; `é` precomposed and
   * decomposed), because they land on the same file on macOS (APFS, HFS+) and Windows (NTFS),
   * where extracting the second silently replaces the first. "exact": byte-for-byte UTF-8
   * comparison only (Linux file systems tell such names apart). Names are always written as
   * given. Memory: none extra per entry (the normalised name is hashed in place of the name,
   * and a hash match is confirmed by normalising the stored name again); CPU: one lower-casing
   * per name, plus one NFC normalisation per non-ASCII name.
   */
  collisions?: CollisionMode;
  /**
   * Accept symlink entries whose target is absolute (`/etc/passwd`, `C:/x`, `\\server`) or climbs
   * out of the archive with `..` (`a/link` -> `../../x`), whose target is not a string or
   * Uint8Array (it cannot be checked up front), and entries placed beneath an earlier symlink
   * entry (`link/x`, which an extractor following `link` would write elsewhere). Default false:
   * such entries fail with ERR_INVALID_ENTRY before anything is written, because extracting them
   * lets the archive write or point outside the directory it is extracted into. Only
   * `type: "symlink"` entries are ever written as links (a file entry with symlink mode bits is
   * refused whatever this option says). Memory when false: the names of symlink entries are kept
   * (in a JS Set, about 50 bytes plus the name per symlink).
   */
  allowUnsafeSymlinks?: boolean;
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
  /**
   * How `path` entries are read. Default "async": opens, reads and closes run on libuv's thread
   * pool, 1 MiB reads with the next one in flight, and up to 8 files (2 MiB of first reads) opened
   * ahead while a stored file streams; the event loop never waits for the disk.
   *
   * "sync": `openSync`, `readSync` (256 KiB reads) and `closeSync` on the calling thread, with no
   * window of files opened ahead (after a deflated entry the next one is still opened, and if
   * deflated started, while the last blocks compress); the event loop gets a turn after every
   * 8 MiB or 128 reads, even when the consumer never pushes back. This **blocks the event loop**
   * for every open, read and close, for as long as the file system takes: microseconds from the
   * page cache, unbounded on a slow disk, a network or FUSE file system, or a stuck NFS server.
   * Timers, sockets and every other request of the process wait meanwhile. Use it only in a
   * process that does one job, such as a command-line tool writing a local archive, never in a
   * server. In exchange it avoids a thread pool round trip per read, open and close and the
   * cross-core CRC: store runs about 1.4-1.5x faster on the benchmark corpus, 0.55-0.63x the
   * machine's read + CRC-32 limit against 0.36-0.41x (BENCHMARKS.md, issue 15). Memory: one
   * 256 KiB chunk per file being read instead of two 1 MiB chunks plus the open-ahead window.
   * Only `path` entries are affected; archives are byte-for-byte the same in both modes, and
   * failures carry the same error codes.
   */
  fileIo?: FileIo;
}
