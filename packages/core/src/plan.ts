/**
 * The layout plan: the single source of truth for what the archive looks like.
 *
 * The writer (`zip-stream.ts`) and the predictor ({@link predictZipSize}) both call these
 * functions, so the Zip64 decisions, header sizes and the presence of data descriptors cannot
 * drift apart. Tests assert predictor == writer output length byte for byte.
 */
import zlib from "node:zlib";
import { ZipError } from "./errors.js";
import { intOption } from "./options.js";
import { ByteStore, NameTable, checkName, checkNameLength, hashBytes, portableKey, quoteName, renamed, utf8 } from "./names.js";
import {
  CENTRAL_HEADER_FIXED,
  DATA_DESCRIPTOR_32,
  DATA_DESCRIPTOR_64,
  EOCD_FIXED,
  EXTENDED_TIMESTAMP_LENGTH,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  FLAG_UTF8,
  LOCAL_HEADER_FIXED,
  MAX_UINT16,
  MAX_UINT32,
  METHOD_AES,
  METHOD_DEFLATE,
  METHOD_STORE,
  VERSION_AES,
  VERSION_DEFAULT,
  VERSION_MADE_BY,
  VERSION_ZIP64,
  ZIP64_EOCD_LENGTH,
  ZIP64_LOCATOR_LENGTH,
  centralDirectoryHeader,
  dataDescriptor,
  dosDateTime,
  endOfCentralDirectory,
  extendedTimestampExtra,
  localFileHeader,
  unixTime32,
  zip64EndOfCentralDirectory,
  zip64EndOfCentralDirectoryLocator,
  zip64ExtraCentral,
  zip64ExtraCentralLength,
  zip64ExtraLocal,
} from "./records.js";
import { AES_EXTRA_LENGTH, AES_OVERHEAD, aesExtraField } from "./aes/index.js";
import type { CollisionMode, DuplicatePolicy, EntryType, FileIo, Zip64Mode, ZipEntry, ZipMethod, ZipOptions, ZipSource, ZipSourceFactory } from "./types.js";

export { AES_EXTRA_LENGTH, AES_OVERHEAD };

/** Local header Zip64 extra: header 4 + two 8-byte sizes (APPNOTE 4.5.3). */
export const ZIP64_LOCAL_EXTRA_LENGTH = 20;

// ---------------------------------------------------------------------------------------------
// Options

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  method: ZipMethod;
  level: number;
  zip64: Zip64Mode;
  comment: Uint8Array;
  duplicates: DuplicatePolicy;
  collisions: CollisionMode;
  allowUnsafeSymlinks: boolean;
  password: string | undefined;
  defaultMtime: Date;
  highWaterMark: number;
  signal: AbortSignal | undefined;
  onProgress: ZipOptions["onProgress"];
  onEntry: ZipOptions["onEntry"];
  randomBytes: ZipOptions["randomBytes"];
  fileIo: FileIo;
}

function optionError(name: string, why: string): TypeError {
  return new TypeError(`zipstream: option "${name}" ${why}`);
}

/** Validates options once, up front; a bad option throws a TypeError naming it. */
export function resolveOptions(options: ZipOptions | undefined): ResolvedOptions {
  const o = options ?? {};
  if (typeof o !== "object") throw new TypeError("zipstream: options must be an object");
  const oneOf = <T extends string>(name: string, v: unknown, allowed: readonly T[], dflt: T): T => {
    if (v === undefined) return dflt;
    if (!allowed.includes(v as T)) throw optionError(name, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
    return v as T;
  };
  const fn = (name: string, v: unknown): void => {
    if (v !== undefined && typeof v !== "function") throw optionError(name, "must be a function");
  };
  const method = oneOf("method", o.method, ["store", "deflate"] as const, "deflate");
  const level = intOption('zipstream: option "level"', o.level, 0, 9) ?? 6;
  const zip64 = oneOf("zip64", o.zip64, ["auto", "always", "never"] as const, "auto");
  const duplicates = oneOf("duplicates", o.duplicates, ["error", "rename", "allow"] as const, "error");
  const collisions = oneOf("collisions", o.collisions, ["portable", "exact"] as const, "portable");
  if (o.allowUnsafeSymlinks !== undefined && typeof o.allowUnsafeSymlinks !== "boolean") throw optionError("allowUnsafeSymlinks", "must be a boolean");
  if (o.comment !== undefined && typeof o.comment !== "string") throw optionError("comment", "must be a string");
  const comment = utf8(o.comment ?? "");
  if (comment.length > MAX_UINT16) throw optionError("comment", "is over 65,535 bytes in UTF-8");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw optionError("signal", "must be an AbortSignal");
  fn("onProgress", o.onProgress);
  fn("onEntry", o.onEntry);
  fn("randomBytes", o.randomBytes);
  if (o.password !== undefined && (typeof o.password !== "string" || o.password.length === 0)) {
    throw optionError("password", "must be a non-empty string");
  }
  if (o.defaultMtime !== undefined && !(o.defaultMtime instanceof Date && Number.isFinite(o.defaultMtime.getTime()))) {
    throw optionError("defaultMtime", "must be a valid Date");
  }
  const fileIo = oneOf("fileIo", o.fileIo, ["async", "sync"] as const, "async");
  const hwm = intOption('zipstream: option "highWaterMark"', o.highWaterMark, 1) ?? 1 << 20;
  return {
    method,
    level,
    zip64,
    comment,
    duplicates,
    collisions,
    allowUnsafeSymlinks: o.allowUnsafeSymlinks ?? false,
    password: o.password,
    defaultMtime: o.defaultMtime ?? new Date(),
    highWaterMark: hwm,
    signal: o.signal,
    onProgress: o.onProgress,
    onEntry: o.onEntry,
    randomBytes: o.randomBytes,
    fileIo,
  };
}

// ---------------------------------------------------------------------------------------------
// Entries

/** An entry after validation (before duplicate handling). */
export interface NormalizedEntry {
  name: string;
  type: EntryType;
  method: ZipMethod;
  level: number;
  /** Uncompressed size when known up front (declared, in-memory source, or directory). */
  size: number | undefined;
  crc32: number | undefined;
  /** Declared compressed size (deflate only, before encryption). */
  compressedSize: number | undefined;
  /** The bytes, when the source is in memory (Uint8Array or string): CRC computable up front. */
  buffered: Uint8Array | undefined;
  source: ZipSource | ZipSourceFactory | undefined;
  path: string | undefined;
  mtime: Date;
  /** Full Unix mode including the file type bits. */
  mode: number;
  comment: Uint8Array;
  password: string | undefined;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function entryError(name: string, why: string): ZipError {
  return new ZipError("ERR_INVALID_ENTRY", `entry ${quoteName(name)}: ${why}`, { entry: name });
}

const FILE_TYPE_NAMES: Record<number, string> = {
  0o010000: "FIFO",
  0o020000: "character device",
  0o040000: "directory",
  0o060000: "block device",
  0o100000: "regular file",
  0o120000: "symlink",
  0o140000: "socket",
};

/**
 * Why a symlink target is unsafe, or undefined when it stays inside the archive: absolute
 * (`/x`, `C:`, `\\server`), NUL, or a `..` that climbs above the archive's root from the link's
 * own directory at any point (`a/l` -> `../x` is fine, `a/l` -> `../../x` is not). Backslashes
 * count as separators, as Windows extractors read them.
 */
export function unsafeSymlinkTarget(linkName: string, target: string): string | undefined {
  if (target.length === 0) return "its target is empty";
  if (target.includes("\0")) return "its target contains NUL";
  if (/^[\\/]/.test(target) || /^[A-Za-z]:/.test(target)) return `its target ${quoteName(target)} is absolute`;
  let depth = linkName.split("/").length - 1;
  for (const seg of target.split(/[\\/]/)) {
    if (seg === "..") {
      if (--depth < 0) return `its target ${quoteName(target)} leads out of the archive`;
    } else if (seg !== "" && seg !== ".") {
      depth++;
    }
  }
  return undefined;
}

/**
 * Validates one entry (name rules, field types) and applies defaults. `dataless` accepts a file
 * entry without `source` or `path` (for {@link layoutZip}, which never reads data).
 */
export function normalizeEntry(entry: ZipEntry, opts: ResolvedOptions, dataless = false): NormalizedEntry {
  if (entry === null || typeof entry !== "object") throw new ZipError("ERR_INVALID_ENTRY", "entry must be an object");
  const rawName = entry.name;
  const label = typeof rawName === "string" ? rawName : String(rawName);
  const type = entry.type ?? "file";
  if (type !== "file" && type !== "directory" && type !== "symlink") throw entryError(label, `unknown type ${JSON.stringify(type)}`);
  const name = checkName(rawName, type === "directory");
  const bad = (why: string): never => {
    throw entryError(name, why);
  };
  const method = entry.method ?? opts.method;
  if (method !== "store" && method !== "deflate") bad(`method must be "store" or "deflate"`);
  const level = entry.level ?? opts.level;
  if (!Number.isInteger(level) || level < 0 || level > 9) bad("level must be an integer 0-9");
  const isSize = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  if (entry.size !== undefined && !isSize(entry.size)) bad("size must be a non-negative safe integer");
  if (entry.compressedSize !== undefined && !isSize(entry.compressedSize)) bad("compressedSize must be a non-negative safe integer");
  if (entry.crc32 !== undefined && !(Number.isInteger(entry.crc32) && entry.crc32 >= 0 && entry.crc32 <= MAX_UINT32)) {
    bad("crc32 must be an unsigned 32-bit integer");
  }
  if (entry.mtime !== undefined && !(entry.mtime instanceof Date && Number.isFinite(entry.mtime.getTime()))) bad("mtime must be a valid Date");
  if (entry.mode !== undefined && !(Number.isInteger(entry.mode) && entry.mode >= 0 && entry.mode <= 0xffff)) bad("mode must be an integer 0..0o177777");
  if (entry.comment !== undefined && typeof entry.comment !== "string") bad("comment must be a string");
  const comment = utf8(entry.comment ?? "");
  if (comment.length > MAX_UINT16) bad("comment is over 65,535 bytes in UTF-8");
  if (entry.password !== undefined && entry.password !== null && (typeof entry.password !== "string" || entry.password.length === 0)) {
    bad("password must be a non-empty string or null");
  }
  const password = entry.password === null ? undefined : (entry.password ?? opts.password);

  let source = entry.source;
  let path = entry.path;
  let buffered: Uint8Array | undefined;
  let size = entry.size;
  let fileMethod: ZipMethod = method;
  let typeBits = S_IFREG;
  let defaultPerm = 0o644;
  if (type === "directory") {
    if (source !== undefined || path !== undefined) bad("a directory has no source or path");
    if (size !== undefined && size !== 0) bad("a directory has size 0");
    size = 0;
    fileMethod = "store";
    typeBits = S_IFDIR;
    defaultPerm = 0o755;
    source = undefined;
    path = undefined;
  } else {
    if (source !== undefined && path !== undefined) bad("needs exactly one of source or path");
    if (source === undefined && path === undefined && !dataless) bad("needs exactly one of source or path");
    if (path !== undefined && (typeof path !== "string" || path.length === 0)) bad("path must be a non-empty string");
    if (source !== undefined && source !== null && typeof source === "object" && "then" in (source as object)) {
      bad("source must not be a promise (use a function returning one)");
    }
    if (source === null) bad("source must not be null");
    if (typeof source === "string") buffered = utf8(source);
    else if (source instanceof Uint8Array) buffered = source;
    if (buffered !== undefined) {
      if (size !== undefined && size !== buffered.length) {
        throw new ZipError("ERR_SIZE_MISMATCH", `entry ${quoteName(name)}: declared size ${size} but the source has ${buffered.length} bytes`, { entry: name });
      }
      size = buffered.length;
    }
    if (type === "symlink") {
      if (path !== undefined) bad("a symlink needs `source` (its target), not `path`");
      // Symlink targets are tiny and every reader expects them stored.
      fileMethod = "store";
      typeBits = S_IFLNK;
      defaultPerm = 0o777;
    }
  }
  // Only `type` decides what an entry is: other type bits in `mode` would make extractors create a
  // link (S_IFLNK on a file), a device or a FIFO out of an entry that was checked as something else.
  const givenType = entry.mode === undefined ? 0 : entry.mode & S_IFMT;
  if (givenType !== 0 && givenType !== typeBits) {
    bad(`mode ${entry.mode!.toString(8)} has the file type bits of a ${FILE_TYPE_NAMES[givenType] ?? `type ${givenType.toString(8)}`}, not a ${type} (use type: "symlink" for a link)`);
  }
  // A dataless entry (layoutZip) without its target is checked by the writer, which has it.
  if (type === "symlink" && !opts.allowUnsafeSymlinks && !(dataless && source === undefined)) {
    if (buffered === undefined) bad("a symlink's target must be a string or Uint8Array, so that it can be checked (or set allowUnsafeSymlinks)");
    const target = typeof source === "string" ? source : Buffer.from(buffered!.buffer, buffered!.byteOffset, buffered!.byteLength).toString("utf8");
    const why = unsafeSymlinkTarget(name, target);
    if (why !== undefined) bad(`${why} (set allowUnsafeSymlinks to write it anyway)`);
  }
  const mode = entry.mode === undefined ? typeBits | defaultPerm : typeBits | entry.mode;
  return {
    name,
    type,
    method: fileMethod,
    level,
    size,
    crc32: entry.crc32,
    compressedSize: fileMethod === "deflate" ? entry.compressedSize : undefined,
    buffered,
    source,
    path,
    mtime: entry.mtime ?? opts.defaultMtime,
    mode,
    comment,
    password: type === "directory" ? undefined : password,
  };
}

/**
 * Duplicate-name policy over compact storage. The names live in the writer's central directory
 * store (or, for the predictor, in a private byte store). Under `collisions: "portable"` the
 * table holds hashes of {@link portableKey}s, and a hash match is confirmed by computing the
 * stored name's key again, so no key is ever stored. Also refuses, unless
 * `allowUnsafeSymlinks`, an entry placed beneath an earlier symlink entry.
 */
export class NameRegistry {
  private readonly table: NameTable;
  private readonly own: ByteStore | undefined;
  private readonly policy: DuplicatePolicy;
  private readonly portable: boolean;
  private readonly nameAt: (pos: number) => Uint8Array;
  /** Keys of the symlink entries so far (undefined when unsafe symlinks are allowed). */
  private readonly links: Set<string> | undefined;

  /**
   * @param opts the policy, comparison and symlink rule; a bare policy compares names exactly
   *   and does not check symlinks (the verifier's use, which judges any archive).
   * @param nameAt reads back a name from its stored position (writer: from central records).
   */
  constructor(
    options: DuplicatePolicy | Pick<ResolvedOptions, "duplicates" | "collisions" | "allowUnsafeSymlinks">,
    nameAt?: (pos: number) => Uint8Array,
  ) {
    const opts = typeof options === "string" ? { duplicates: options, collisions: "exact", allowUnsafeSymlinks: true } : options;
    this.policy = opts.duplicates;
    this.portable = opts.collisions === "portable";
    this.links = opts.allowUnsafeSymlinks ? undefined : new Set();
    if (nameAt === undefined) {
      const own = new ByteStore();
      this.own = own;
      nameAt = (pos) => {
        const len = own.view(pos, 2);
        return own.view(pos + 2, len[0] | (len[1] << 8));
      };
    }
    this.nameAt = nameAt;
    const read = nameAt;
    this.table = new NameTable(this.portable ? (pos) => utf8(portableKey(decodeName(read(pos)))) : read);
  }

  /** The bytes compared for `name` (its UTF-8 bytes, or its portable key's). */
  private keyBytes(name: string, bytes: Uint8Array): Uint8Array {
    if (!this.portable) return bytes;
    // ASCII (most names): lower-case the bytes directly, without a string round trip.
    let upper = false;
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i];
      if (c >= 0x80) {
        const key = portableKey(name);
        return key === name ? bytes : utf8(key);
      }
      if (c >= 0x41 && c <= 0x5a) upper = true;
    }
    if (!upper) return bytes;
    const key = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      const c = bytes[i];
      key[i] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    }
    return key;
  }

  /**
   * Applies the policy: returns the final name and its bytes. Throws ERR_DUPLICATE_NAME under
   * "error". Under "rename", "a.txt" becomes "a (1).txt", then "a (2).txt", ...
   */
  resolve(name: string, type: EntryType = "file"): { name: string; bytes: Uint8Array; hash: number } {
    let bytes = utf8(name);
    checkNameLength(name, bytes);
    const out = this.resolveName(name, bytes);
    if (this.links !== undefined) this.checkLinks(out.name, type);
    return out;
  }

  private resolveName(name: string, bytes: Uint8Array): { name: string; bytes: Uint8Array; hash: number } {
    if (this.policy === "allow") return { name, bytes, hash: 0 };
    let key = this.keyBytes(name, bytes);
    let hash = hashBytes(key);
    const found = this.table.find(key, hash);
    if (found === NOT_FOUND) return { name, bytes, hash };
    if (this.policy === "error") {
      const earlier = decodeName(this.nameAt(found));
      throw new ZipError(
        "ERR_DUPLICATE_NAME",
        earlier === name
          ? `duplicate entry name ${quoteName(name)}`
          : `entry name ${quoteName(name)} collides with ${quoteName(earlier)}: one file on case-insensitive or Unicode-normalising file systems (macOS, Windows); collisions: "exact" compares bytes only`,
        { entry: name },
      );
    }
    for (let n = 1; ; n++) {
      const candidate = renamed(name, n);
      bytes = utf8(candidate);
      checkNameLength(candidate, bytes);
      key = this.keyBytes(candidate, bytes);
      hash = hashBytes(key);
      if (!this.table.has(key, hash)) return { name: candidate, bytes, hash };
    }
  }

  /**
   * Refuses an entry beneath a symlink entry: an extractor that follows `l` (a link to `..`)
   * writes `l/x` outside the directory the link was judged from. Links are recorded as they are
   * resolved: a later failure fails the whole archive anyway.
   */
  private checkLinks(name: string, type: EntryType): void {
    const links = this.links!;
    const key = this.portable ? portableKey(name) : name;
    if (links.size > 0) {
      for (let i = key.indexOf("/"); i >= 0 && i < key.length - 1; i = key.indexOf("/", i + 1)) {
        const parent = key.slice(0, i);
        if (links.has(parent)) {
          throw new ZipError("ERR_INVALID_ENTRY", `entry ${quoteName(name)}: it is beneath the symlink entry ${quoteName(name.slice(0, i))} (set allowUnsafeSymlinks to write it anyway)`, { entry: name });
        }
      }
    }
    if (type === "symlink") links.add(key);
  }

  /** Records a name once its entry is committed; `pos` locates it for `nameAt`. */
  commit(hash: number, bytes: Uint8Array, pos?: number): void {
    if (this.policy === "allow") return;
    if (this.own !== undefined) {
      const rec = new Uint8Array(2 + bytes.length);
      rec[0] = bytes.length & 0xff;
      rec[1] = bytes.length >> 8;
      rec.set(bytes, 2);
      pos = this.own.append(rec);
    }
    this.table.add(hash, pos!);
  }

  get memoryBytes(): number {
    return this.table.capacityBytes + (this.own?.capacity ?? 0);
  }
}

const NOT_FOUND = 0xffffffff;

function decodeName(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Layout of one entry

/** Everything about an entry's records that is decided before its data is written. */
export interface EntryLayout {
  name: Uint8Array;
  comment: Uint8Array;
  /** Method field of the headers: 0, 8, or 99 (AES). */
  methodField: number;
  /** The real compression method (inside the AES extra when encrypted). */
  realMethod: number;
  flags: number;
  versionNeeded: number;
  dosTime: number;
  dosDate: number;
  /** Seconds for the extended timestamp; undefined leaves the field out (see `unixTime32`). */
  unixMtime: number | undefined;
  externalAttributes: number;
  encrypted: boolean;
  /** Zip64 sizes for this entry: Zip64 extra in local and central header, 64-bit descriptor. */
  zip64: boolean;
  /** A data descriptor follows the data (CRC or sizes not known before the data). */
  descriptor: boolean;
  /** Known before the data: uncompressed size, stored size (after compression + encryption), CRC. */
  size: number | undefined;
  dataSize: number | undefined;
  crc32: number | undefined;
}

/**
 * Upper bound of raw deflate output for `n` input bytes: zlib's deflateBound() plus the sync-flush
 * markers of the parallel block compressor (one per 1 MiB block). Used only to decide Zip64.
 */
export function deflateBound(n: number): number {
  return n + Math.ceil(n / 4096) + Math.ceil(n / 16384) + Math.ceil(n / (1 << 25)) + 13 + 16 * Math.ceil(n / (1 << 20));
}

/**
 * THE Zip64 predicate for one entry's sizes.
 * - "always": yes. "never": no (limits are enforced by {@link assertFitsWithoutZip64}).
 * - "auto": yes when the size is unknown up front (so a stream of any length can be written and
 *   strict readers see a Zip64 extra matching the 64-bit descriptor), or when the size or the
 *   largest possible stored size reaches 0xFFFFFFFF.
 */
export function entryNeedsZip64(mode: Zip64Mode, size: number | undefined, maxDataSize: number | undefined): boolean {
  if (mode === "always") return true;
  if (mode === "never") return false;
  if (size === undefined || maxDataSize === undefined) return true;
  return size >= MAX_UINT32 || maxDataSize >= MAX_UINT32;
}

/** Whether the central header needs the local header offset in the Zip64 extra. */
export function offsetNeedsZip64(mode: Zip64Mode, offset: number): boolean {
  return mode === "always" || offset >= MAX_UINT32;
}

/** Whether the end of the archive needs the Zip64 EOCD record and locator. */
export function endNeedsZip64(mode: Zip64Mode, entries: number, cdSize: number, cdOffset: number): boolean {
  return mode === "always" || entries >= MAX_UINT16 || cdSize >= MAX_UINT32 || cdOffset >= MAX_UINT32;
}

/**
 * Decides an entry's records. `size` may be more precise than `n.size` (the writer knows a
 * local file's size once it has opened it).
 */
export function layoutEntry(n: NormalizedEntry, nameBytes: Uint8Array, mode: Zip64Mode, size = n.size, crc = n.crc32): EntryLayout {
  const encrypted = n.password !== undefined;
  const realMethod = n.method === "deflate" ? METHOD_DEFLATE : METHOD_STORE;
  const overhead = encrypted ? AES_OVERHEAD : 0;
  let dataSize: number | undefined;
  let maxDataSize: number | undefined;
  if (size !== undefined) {
    if (n.method === "store") dataSize = maxDataSize = size + overhead;
    else if (n.compressedSize !== undefined) dataSize = maxDataSize = n.compressedSize + overhead;
    else maxDataSize = deflateBound(size) + overhead;
  }
  const isDir = n.type === "directory";
  // AE-2 stores CRC 0, so an encrypted stored entry of known size needs no descriptor either.
  const crcKnown = encrypted || crc !== undefined || isDir;
  const descriptor = !isDir && !(n.method === "store" && size !== undefined && crcKnown);
  const zip64 = entryNeedsZip64(mode, size, maxDataSize);
  const dt = dosDateTime(n.mtime);
  let flags = FLAG_UTF8;
  if (descriptor) flags |= FLAG_DATA_DESCRIPTOR;
  if (encrypted) flags |= FLAG_ENCRYPTED;
  let versionNeeded = VERSION_DEFAULT;
  if (zip64) versionNeeded = VERSION_ZIP64;
  if (encrypted) versionNeeded = VERSION_AES;
  // MS-DOS directory attribute (0x10) in the low byte helps Windows readers (APPNOTE 4.4.15).
  const externalAttributes = ((n.mode << 16) >>> 0) + (isDir ? 0x10 : 0);
  return {
    name: nameBytes,
    comment: n.comment,
    methodField: encrypted ? METHOD_AES : realMethod,
    realMethod,
    flags,
    versionNeeded,
    dosTime: dt.time,
    dosDate: dt.date,
    unixMtime: unixTime32(n.mtime),
    externalAttributes,
    encrypted,
    zip64,
    descriptor,
    size,
    dataSize: descriptor ? undefined : dataSize,
    crc32: descriptor ? undefined : encrypted ? 0 : isDir ? 0 : crc,
  };
}

const NO_BYTES = new Uint8Array(0);

function aesExtra(l: EntryLayout): Uint8Array {
  return l.encrypted ? aesExtraField(l.realMethod) : NO_BYTES;
}

/** The extended timestamp is in both headers or in neither, decided once per entry by `unixTime32`. */
function timestampLength(l: EntryLayout): number {
  return l.unixMtime === undefined ? 0 : EXTENDED_TIMESTAMP_LENGTH;
}

export function localExtraLength(l: EntryLayout): number {
  return (l.zip64 ? ZIP64_LOCAL_EXTRA_LENGTH : 0) + (l.encrypted ? AES_EXTRA_LENGTH : 0) + timestampLength(l);
}

export function localHeaderLength(l: EntryLayout): number {
  return LOCAL_HEADER_FIXED + l.name.length + localExtraLength(l);
}

export function descriptorLength(l: EntryLayout): number {
  return l.descriptor ? (l.zip64 ? DATA_DESCRIPTOR_64 : DATA_DESCRIPTOR_32) : 0;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The local header. With a descriptor, CRC and sizes are 0 (APPNOTE 4.4.4 bit 3); under Zip64
 * the 32-bit size slots hold 0xFFFFFFFF and the Zip64 extra holds the sizes (0 when deferred).
 */
export function buildLocalHeader(l: EntryLayout): Uint8Array {
  const size = l.descriptor ? 0 : l.size!;
  const dataSize = l.descriptor ? 0 : l.dataSize!;
  const extras: Uint8Array[] = [];
  if (l.zip64) extras.push(zip64ExtraLocal(size, dataSize));
  extras.push(aesExtra(l));
  if (l.unixMtime !== undefined) extras.push(extendedTimestampExtra(l.unixMtime));
  const extra = concat(extras);
  return localFileHeader({
    versionNeeded: l.versionNeeded,
    flags: l.flags,
    method: l.methodField,
    dosTime: l.dosTime,
    dosDate: l.dosDate,
    crc32: l.descriptor ? 0 : l.crc32!,
    compressedSize: l.zip64 ? MAX_UINT32 : dataSize,
    uncompressedSize: l.zip64 ? MAX_UINT32 : size,
    name: l.name,
    extra,
  });
}

/** The data descriptor for an entry that has one. AE-2 writes CRC 0. */
export function buildDescriptor(l: EntryLayout, crc: number, dataSize: number, size: number): Uint8Array {
  return dataDescriptor(l.encrypted ? 0 : crc, dataSize, size, l.zip64);
}

/**
 * Which values of an entry's central header move to its Zip64 extra: under "always" all three;
 * otherwise exactly those that do not fit their 32-bit field (APPNOTE 4.5.3: a field appears in
 * the extra only when the header's field holds 0xFFFFFFFF). The central directory is written once
 * every size is known, so an entry streamed with Zip64 sizes (local Zip64 extra, 64-bit
 * descriptor) still gets plain 32-bit sizes here when they fit: readers that mishandle the
 * extra (The Unarchiver 1.10.1 reads 28 bytes of it whatever its length, issue 13) then never
 * see one on small entries.
 */
export function centralZip64Fields(mode: Zip64Mode, size: number, dataSize: number, offset: number): { size: boolean; dataSize: boolean; offset: boolean } {
  const always = mode === "always";
  return { size: always || size >= MAX_UINT32, dataSize: always || dataSize >= MAX_UINT32, offset: offsetNeedsZip64(mode, offset) };
}

/** Length of {@link buildCentralHeader}'s record for these sizes and offset. */
export function centralHeaderLength(l: EntryLayout, offset: number, mode: Zip64Mode, size: number, dataSize: number): number {
  const z = centralZip64Fields(mode, size, dataSize, offset);
  const fields = (z.size ? 1 : 0) + (z.dataSize ? 1 : 0) + (z.offset ? 1 : 0);
  return (
    CENTRAL_HEADER_FIXED +
    l.name.length +
    zip64ExtraCentralLength(fields) +
    (l.encrypted ? AES_EXTRA_LENGTH : 0) +
    timestampLength(l) +
    l.comment.length
  );
}

/** Offset of the name inside a central directory header (for reading names back). */
export const CENTRAL_NAME_OFFSET = CENTRAL_HEADER_FIXED;

/**
 * The central directory header once the entry's data is written. Sizes and offset that do not
 * fit 32 bits (all three under "always") are 0xFFFFFFFF in the header and in the Zip64 extra,
 * see {@link centralZip64Fields}. Version needed stays the local header's (45 for an entry with
 * Zip64 sizes there), and becomes 45 when the offset needs Zip64.
 */
export function buildCentralHeader(l: EntryLayout, crc: number, dataSize: number, size: number, offset: number, mode: Zip64Mode): Uint8Array {
  const z = centralZip64Fields(mode, size, dataSize, offset);
  const offset64 = z.offset;
  const extras: Uint8Array[] = [];
  if (z.size || z.dataSize || z.offset) {
    extras.push(
      zip64ExtraCentral({
        uncompressedSize: z.size ? size : undefined,
        compressedSize: z.dataSize ? dataSize : undefined,
        localHeaderOffset: offset64 ? offset : undefined,
      }),
    );
  }
  extras.push(aesExtra(l));
  if (l.unixMtime !== undefined) extras.push(extendedTimestampExtra(l.unixMtime));
  return centralDirectoryHeader({
    versionMadeBy: VERSION_MADE_BY,
    versionNeeded: offset64 && l.versionNeeded < VERSION_ZIP64 ? VERSION_ZIP64 : l.versionNeeded,
    flags: l.flags,
    method: l.methodField,
    dosTime: l.dosTime,
    dosDate: l.dosDate,
    crc32: l.encrypted ? 0 : crc,
    compressedSize: z.dataSize ? MAX_UINT32 : dataSize,
    uncompressedSize: z.size ? MAX_UINT32 : size,
    localHeaderOffset: offset64 ? MAX_UINT32 : offset,
    internalAttributes: 0,
    externalAttributes: l.externalAttributes,
    name: l.name,
    extra: concat(extras),
    comment: l.comment,
  });
}

/** Throws ERR_ZIP64_REQUIRED (under "never") when a value cannot be written without Zip64. */
export function zip64Required(what: string, entry?: string): ZipError {
  return new ZipError("ERR_ZIP64_REQUIRED", `${what} needs Zip64 but the zip64 option is "never"`, entry === undefined ? {} : { entry });
}

export function endRecordsLength(mode: Zip64Mode, entries: number, cdSize: number, cdOffset: number, commentLength: number): number {
  return (endNeedsZip64(mode, entries, cdSize, cdOffset) ? ZIP64_EOCD_LENGTH + ZIP64_LOCATOR_LENGTH : 0) + EOCD_FIXED + commentLength;
}

/**
 * Zip64 EOCD + locator (when needed) and the EOCD. EOCD fields that fit keep their real values
 * (readers without Zip64 support still work on small forced-Zip64 archives); those that do not
 * fit are set to 0xFFFF / 0xFFFFFFFF (APPNOTE 4.4.1.4).
 */
export function buildEndRecords(mode: Zip64Mode, entries: number, cdSize: number, cdOffset: number, comment: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  if (endNeedsZip64(mode, entries, cdSize, cdOffset)) {
    if (mode === "never") throw zip64Required("the end of central directory");
    const z64Offset = cdOffset + cdSize;
    parts.push(zip64EndOfCentralDirectory(entries, cdSize, cdOffset));
    parts.push(zip64EndOfCentralDirectoryLocator(z64Offset));
  }
  parts.push(
    endOfCentralDirectory(
      Math.min(entries, MAX_UINT16),
      Math.min(cdSize, MAX_UINT32),
      Math.min(cdOffset, MAX_UINT32),
      comment,
    ),
  );
  return concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Whole-archive layout: the predictor and layoutZip

/**
 * The one guard of `zip64: "never"` for values known before an entry's data: its number, its
 * offset and its sizes. (The writer applies the same limits as it goes, for sizes learned late.)
 */
export function assertFitsWithoutZip64(count: number, offset: number, size: number, dataSize: number, entry: string): void {
  if (count >= MAX_UINT16) throw zip64Required(`entry number ${count} (65,535 or more entries)`, entry);
  if (offset >= MAX_UINT32) throw zip64Required("the entry's offset (past 4 GiB)", entry);
  if (size >= MAX_UINT32 || dataSize >= MAX_UINT32) throw zip64Required("the entry's size (4 GiB or more)", entry);
}

/** One entry as the writer would place it, when its stored size is known up front. */
interface Placed {
  n: NormalizedEntry;
  name: string;
  layout: EntryLayout;
  /** Offset of the local header. */
  offset: number;
  /** Stored bytes (after compression and encryption). */
  dataSize: number;
  /** Local header + data + descriptor. */
  length: number;
}

/**
 * Walks the entries in order with the writer's rules (validation, the duplicates policy, the
 * Zip64 predicate, `"never"` limits) and places each one whose stored size is known up front.
 * From the first entry that is not, it yields that entry's name instead (and for every later
 * one), but the walk goes on, so every name is still validated. `crcOf` supplies the CRC that decides the
 * headers (the predictor passes a placeholder: lengths do not depend on the CRC's value).
 */
function* placeEntries(
  entries: Iterable<ZipEntry>,
  opts: ResolvedOptions,
  crcOf: (n: NormalizedEntry) => number | undefined,
  dataless: boolean,
): Generator<Placed | string, { count: number; end: number; cdSize: number } | undefined> {
  const mode = opts.zip64;
  const names = new NameRegistry(opts);
  let offset = 0;
  let cdSize = 0;
  let count = 0;
  let known = true;
  for (const entry of entries) {
    const n = normalizeEntry(entry, opts, dataless);
    const resolved = names.resolve(n.name, n.type);
    names.commit(resolved.hash, resolved.bytes);
    count++;
    const overhead = n.password !== undefined ? AES_OVERHEAD : 0;
    const stored = n.method === "store" ? n.size : n.compressedSize;
    if (!known || n.size === undefined || stored === undefined) {
      known = false;
      yield resolved.name;
      continue;
    }
    const dataSize = stored + overhead;
    if (mode === "never") assertFitsWithoutZip64(count, offset, n.size, dataSize, resolved.name);
    const l = layoutEntry(n, resolved.bytes, mode, n.size, crcOf(n));
    const length = localHeaderLength(l) + dataSize + descriptorLength(l);
    yield { n, name: resolved.name, layout: l, offset, dataSize, length };
    cdSize += centralHeaderLength(l, offset, mode, n.size, dataSize);
    offset += length;
  }
  if (!known) return undefined;
  if (mode === "never" && (cdSize >= MAX_UINT32 || offset >= MAX_UINT32)) throw zip64Required("the central directory (past 4 GiB)");
  return { count, end: offset, cdSize };
}

/**
 * The exact byte length of the archive `zipStream(entries, options)` would produce, when it can
 * be known without reading any data: every entry's size is known (declared `size`, a string or
 * Uint8Array source, or a directory) and it is stored, or deflated with a declared
 * `compressedSize`. Otherwise `undefined`. Encryption adds {@link AES_OVERHEAD} bytes per entry.
 *
 * A declared `compressedSize` must be what zipstream's deflate produces for that input at that
 * level (e.g. `onEntry`'s `compressedSize` from an earlier run): inputs over 1 MiB are compressed
 * in parallel blocks, whose output differs slightly from a single zlib stream.
 *
 * Consumes `entries` (pass an array, not a one-shot generator, if you will zip them afterwards).
 * Entries need no `source` or `path` here (no data is read). Applies the same name validation and `duplicates` policy as the writer and throws the same
 * ZipError for invalid entries, and ERR_ZIP64_REQUIRED when `zip64: "never"` cannot hold them.
 * Memory: about 24 bytes per entry plus its name under `duplicates` "error"/"rename".
 */
export function predictZipSize(entries: Iterable<ZipEntry>, options?: ZipOptions): number | undefined {
  const opts = resolveOptions(options);
  // An unknown CRC of a stored entry means a descriptor (a different layout), unless the writer
  // computes it before the header: in-memory sources. The value itself is irrelevant here.
  const walk = placeEntries(entries, opts, (n) => n.crc32 ?? (n.buffered !== undefined && n.method === "store" ? 0 : undefined), true);
  for (let r = walk.next(); ; r = walk.next()) {
    if (r.done) {
      const t = r.value;
      return t === undefined ? undefined : t.end + t.cdSize + endRecordsLength(opts.zip64, t.count, t.cdSize, t.end, opts.comment.length);
    }
  }
}

/** One member's place in a {@link ZipLayout}. */
export interface ZipLayoutEntry {
  /** The entry's name in the archive (after the `duplicates` policy). */
  name: string;
  method: ZipMethod;
  /** Uncompressed size. */
  size: number;
  /** CRC-32 written to the headers (0 for AES entries, as AE-2 requires). */
  crc32: number;
  /** Offset of the local header in the archive. */
  offset: number;
  /** The local header's bytes, written at `offset`. */
  localHeader: Uint8Array;
  /** Offset of the member's data: `offset + localHeader.length`. */
  dataOffset: number;
  /** Length of the member's data as stored (compressed and encrypted, when it is). */
  dataLength: number;
  /** The data descriptor written right after the data, when the entry has one (deflate). */
  descriptor: Uint8Array | undefined;
  /** The entry uses Zip64 sizes. */
  zip64: boolean;
  /** The entry is AES-encrypted (its data is the encrypted stream, and its CRC field 0). */
  encrypted: boolean;
}

/** The exact archive that `zipStream` writes for entries whose sizes and CRCs are known. */
export interface ZipLayout {
  /** Every member, in order, with its header bytes and where its data goes. */
  entries: ZipLayoutEntry[];
  /** Offset of the central directory (where `centralDirectory` is written). */
  centralDirectoryOffset: number;
  /** The central directory followed by the end records (Zip64 end record and locator when needed, then the EOCD). */
  centralDirectory: Uint8Array;
  /** The archive's total size in bytes. */
  size: number;
  /** The archive uses Zip64 anywhere. */
  zip64: boolean;
}

/**
 * The exact layout of the archive `zipStream(entries, options)` writes, without any data: each
 * member's local header bytes and the offset and length of its data, then the central directory
 * and end records as bytes. Writing each `localHeader` at its `offset`, the member's stored bytes
 * at `dataOffset`, its `descriptor` after them, and `centralDirectory` at
 * `centralDirectoryOffset` gives exactly the archive `zipStream` produces for the same entries
 * and options (the tests assert it byte for byte).
 *
 * Entries need no `source` or `path` here. Every entry must have a known `size` and `crc32` (a
 * string or Uint8Array source provides both; its CRC is computed here), and a deflated entry
 * also its `compressedSize`; else this throws
 * `ERR_INVALID_ENTRY` naming the entry. The data itself is never read. The same validation,
 * `duplicates` policy and Zip64 rules as the writer and {@link predictZipSize} apply: all three
 * call the same layout functions. Pass `defaultMtime` (or an `mtime` per entry) to reproduce a
 * particular archive: it is part of the headers.
 *
 * Memory: the layout holds every local header (30 bytes + name + up to 49 bytes of extra fields)
 * and the central directory (46 bytes + name + up to 61 bytes per entry): about 250 bytes per
 * entry with a 50-byte name.
 */
export function layoutZip(entries: Iterable<ZipEntry>, options?: ZipOptions): ZipLayout {
  const opts = resolveOptions(options);
  const mode = opts.zip64;
  const crcOf = (n: NormalizedEntry): number | undefined =>
    n.crc32 ?? (n.buffered !== undefined ? zlib.crc32(n.buffered) : n.type === "directory" ? 0 : undefined);
  const out: ZipLayoutEntry[] = [];
  const central: Uint8Array[] = [];
  let zip64 = false;
  const walk = placeEntries(entries, opts, crcOf, true);
  let r = walk.next();
  for (; !r.done; r = walk.next()) {
    const p = r.value;
    if (typeof p === "string") {
      throw new ZipError("ERR_INVALID_ENTRY", `entry ${JSON.stringify(p)}: layoutZip needs its size (and compressedSize when deflated)`, { entry: p });
    }
    const crc = crcOf(p.n);
    if (crc === undefined) {
      throw new ZipError("ERR_INVALID_ENTRY", `entry ${JSON.stringify(p.name)}: layoutZip needs its crc32`, { entry: p.name });
    }
    const l = p.layout;
    const headerCrc = l.encrypted ? 0 : crc;
    const localHeader = buildLocalHeader(l);
    out.push({
      name: p.name,
      method: p.n.method,
      size: p.n.size!,
      crc32: headerCrc,
      offset: p.offset,
      localHeader,
      dataOffset: p.offset + localHeader.length,
      dataLength: p.dataSize,
      descriptor: l.descriptor ? buildDescriptor(l, crc, p.dataSize, p.n.size!) : undefined,
      zip64: l.zip64,
      encrypted: l.encrypted,
    });
    central.push(buildCentralHeader(l, crc, p.dataSize, p.n.size!, p.offset, mode));
    if (l.zip64 || offsetNeedsZip64(mode, p.offset)) zip64 = true;
  }
  const t = r.value!;
  const end = buildEndRecords(mode, t.count, t.cdSize, t.end, opts.comment);
  if (endNeedsZip64(mode, t.count, t.cdSize, t.end)) zip64 = true;
  central.push(end);
  const centralDirectory = concat(central);
  return { entries: out, centralDirectoryOffset: t.end, centralDirectory, size: t.end + centralDirectory.length, zip64 };
}

/** Offset of the CRC-32 field in a local file header (APPNOTE 4.3.7: signature 4, version 2, flags 2, method 2, time 2, date 2). */
const LOCAL_CRC_OFFSET = 14;

/**
 * A layout entry's local header with `crc32` written in. For a layout made before the CRCs were
 * known (copy assembly learns a stored member's CRC-32 from S3 only when its bytes are copied):
 * lay out with a placeholder CRC, then fill each header in once its CRC is known; the CRC is the
 * only field of a stored member's local header that depends on its data, and it has no length
 * effect. The central directory is then built by {@link layoutZip} with the real CRCs.
 *
 * @throws ZipError ERR_INVALID_ENTRY for an entry with a data descriptor (its header carries no
 *   CRC) or an encrypted one (AE-2 writes 0).
 */
export function localHeaderWithCrc32(entry: ZipLayoutEntry, crc32: number): Uint8Array {
  if (entry.descriptor !== undefined || entry.encrypted) {
    const why = entry.encrypted ? "it is encrypted (AE-2 writes CRC 0)" : "it has a data descriptor";
    throw new ZipError("ERR_INVALID_ENTRY", `entry ${JSON.stringify(entry.name)}: its local header takes no CRC-32: ${why}`, { entry: entry.name });
  }
  const out = new Uint8Array(entry.localHeader); // a copy (Buffer#slice would be a view)
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(LOCAL_CRC_OFFSET, crc32 >>> 0, true);
  return out;
}
