/**
 * Pure byte builders, one per ZIP structure (PKWARE APPNOTE.TXT 6.3.x).
 *
 * Every builder takes the exact field values to write and returns a fresh `Uint8Array`.
 * Policy (which value goes where, when Zip64 is used) lives in `plan.ts`; these functions only
 * lay bytes out, little-endian, in the order APPNOTE gives. Each field is on its own line with
 * its size in bytes.
 */

export const SIG_LOCAL_FILE_HEADER = 0x04034b50;
export const SIG_DATA_DESCRIPTOR = 0x08074b50;
export const SIG_CENTRAL_DIRECTORY = 0x02014b50;
export const SIG_ZIP64_EOCD = 0x06064b50;
export const SIG_ZIP64_EOCD_LOCATOR = 0x07064b50;
export const SIG_EOCD = 0x06054b50;

/** Fixed part of the local file header (APPNOTE 4.3.7). */
export const LOCAL_HEADER_FIXED = 30;
/** Fixed part of the central directory header (APPNOTE 4.3.12). */
export const CENTRAL_HEADER_FIXED = 46;
/** Data descriptor with signature, 32-bit sizes (APPNOTE 4.3.9). */
export const DATA_DESCRIPTOR_32 = 16;
/** Data descriptor with signature, 64-bit sizes (APPNOTE 4.3.9.2). */
export const DATA_DESCRIPTOR_64 = 24;
/** Zip64 end of central directory record, version 1, no extensible data (APPNOTE 4.3.14). */
export const ZIP64_EOCD_LENGTH = 56;
/** Zip64 end of central directory locator (APPNOTE 4.3.15). */
export const ZIP64_LOCATOR_LENGTH = 20;
/** End of central directory record without its comment (APPNOTE 4.3.16). */
export const EOCD_FIXED = 22;
/** Extended timestamp extra field carrying mtime only (header 4 + flags 1 + mtime 4). */
export const EXTENDED_TIMESTAMP_LENGTH = 9;

export const MAX_UINT16 = 0xffff;
export const MAX_UINT32 = 0xffffffff;

/** Compression method codes (APPNOTE 4.4.5). 99 marks WinZip AES encryption. */
export const METHOD_STORE = 0;
export const METHOD_DEFLATE = 8;
export const METHOD_AES = 99;

/** General purpose bit flags (APPNOTE 4.4.4). */
export const FLAG_ENCRYPTED = 1 << 0;
export const FLAG_DATA_DESCRIPTOR = 1 << 3;
export const FLAG_UTF8 = 1 << 11;

/** "Version made by": upper byte 3 = UNIX (APPNOTE 4.4.2.2), lower byte 63 = spec 6.3. */
export const VERSION_MADE_BY = (3 << 8) | 63;
/** "Version needed to extract" (APPNOTE 4.4.3.2). */
export const VERSION_DEFAULT = 20; // deflate, directories
export const VERSION_ZIP64 = 45;
export const VERSION_AES = 51;

/**
 * Little-endian writer over a fixed buffer; throws on a value that does not fit (a bug upstream).
 * Uses Node's pooled `Buffer.allocUnsafe` and its integer writers: records are small and
 * numerous (a million entries means millions of records), so allocation cost matters. Every
 * byte is written (checked by `done()`), so the unsafe allocation never leaks old memory.
 */
class Writer {
  readonly bytes: Buffer;
  private pos = 0;
  constructor(length: number) {
    this.bytes = Buffer.allocUnsafe(length);
  }
  u8(v: number): this {
    check(v, 0xff);
    this.pos = this.bytes.writeUInt8(v, this.pos);
    return this;
  }
  u16(v: number): this {
    check(v, MAX_UINT16);
    this.pos = this.bytes.writeUInt16LE(v, this.pos);
    return this;
  }
  u32(v: number): this {
    check(v, MAX_UINT32);
    this.pos = this.bytes.writeUInt32LE(v, this.pos);
    return this;
  }
  i32(v: number): this {
    this.pos = this.bytes.writeInt32LE(v, this.pos);
    return this;
  }
  /** The 26 bytes local and central headers share, "version needed to extract" to "uncompressed size". */
  headerFields(f: HeaderFields, compressedSize: number, uncompressedSize: number): this {
    return this.u16(f.versionNeeded) // 2 version needed to extract
      .u16(f.flags) // 2 general purpose bit flag
      .u16(f.method) // 2 compression method
      .u16(f.dosTime) // 2 last mod file time
      .u16(f.dosDate) // 2 last mod file date
      .u32(f.crc32) // 4 crc-32
      .u32(compressedSize) // 4 compressed size
      .u32(uncompressedSize); // 4 uncompressed size
  }
  u64(v: number): this {
    check(v, Number.MAX_SAFE_INTEGER);
    this.bytes.writeUInt32LE(v % 0x100000000, this.pos);
    this.bytes.writeUInt32LE(Math.floor(v / 0x100000000), this.pos + 4);
    this.pos += 8;
    return this;
  }
  raw(b: Uint8Array): this {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  done(): Uint8Array {
    if (this.pos !== this.bytes.length) throw new Error(`record length ${this.pos} != ${this.bytes.length}`);
    return this.bytes;
  }
}

function check(v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`field value ${v} out of range 0..${max}`);
}

// ---------------------------------------------------------------------------------------------
// Dates

/** Earliest DOS timestamp: 1980-01-01 00:00:00. */
const DOS_MIN_MS = Date.UTC(1980, 0, 1, 0, 0, 0);
/** Latest DOS timestamp: 2107-12-31 23:59:58 (seconds have a 2 s resolution). */
const DOS_MAX_MS = Date.UTC(2107, 11, 31, 23, 59, 58);

/**
 * MS-DOS date and time (APPNOTE 4.4.6), computed in UTC and clamped to 1980-01-01..2107-12-31.
 * UTC (not the host's zone) keeps the output independent of the machine; the extended timestamp
 * extra field carries the exact time for readers that honour it.
 */
export function dosDateTime(date: Date): { time: number; date: number } {
  const key = date.getTime();
  // Archives usually give many entries the same time: remember the last conversion.
  if (key === lastDos.key) return lastDos.value;
  let ms = key;
  if (!Number.isFinite(ms) || ms < DOS_MIN_MS) ms = DOS_MIN_MS;
  else if (ms > DOS_MAX_MS) ms = DOS_MAX_MS;
  const d = new Date(ms);
  const value = {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
  lastDos = { key, value };
  return value;
}
let lastDos: { key: number; value: { time: number; date: number } } = { key: NaN, value: { time: 0, date: 0 } };

/**
 * Unix seconds for the extended timestamp (0x5455), or undefined when the time does not fit it:
 * only 0..0x7FFFFFFF, 1970-01-01T00:00:00Z..2038-01-19T03:14:07Z. Info-ZIP defines the field
 * as a signed 32-bit count (1901-12-13..2038-01-19), but 7-Zip and libarchive (bsdtar) read it
 * unsigned: a 1960 time written as a negative count shows there as 2096. Only the range where
 * both readings agree is written; outside it the field is left out and readers use the DOS date
 * (clamped to 1980..2107), which is right after 2038 and no worse than a wrong year before 1970.
 */
export function unixTime32(date: Date): number | undefined {
  const s = Math.floor(date.getTime() / 1000);
  return Number.isFinite(s) && s >= 0 && s <= 0x7fffffff ? s : undefined;
}

// ---------------------------------------------------------------------------------------------
// Extra fields

/**
 * Zip64 extended information extra field, local header variant (APPNOTE 4.5.3): the local
 * header MUST carry both sizes. Under a data descriptor they are written as zero and the real
 * values follow the data.
 */
export function zip64ExtraLocal(uncompressedSize: number, compressedSize: number): Uint8Array {
  return new Writer(20)
    .u16(0x0001) // 2 header ID: Zip64 extended information
    .u16(16) // 2 data size
    .u64(uncompressedSize) // 8 original size
    .u64(compressedSize) // 8 compressed size
    .done();
}

/**
 * Zip64 extended information extra field, central directory variant (APPNOTE 4.5.3): only the
 * fields whose 32-bit slot in the central header holds 0xFFFFFFFF appear, in this fixed order.
 */
export function zip64ExtraCentral(fields: {
  uncompressedSize?: number;
  compressedSize?: number;
  localHeaderOffset?: number;
}): Uint8Array {
  const n =
    (fields.uncompressedSize !== undefined ? 1 : 0) +
    (fields.compressedSize !== undefined ? 1 : 0) +
    (fields.localHeaderOffset !== undefined ? 1 : 0);
  const w = new Writer(4 + 8 * n)
    .u16(0x0001) // 2 header ID: Zip64 extended information
    .u16(8 * n); // 2 data size
  if (fields.uncompressedSize !== undefined) w.u64(fields.uncompressedSize); // 8 original size
  if (fields.compressedSize !== undefined) w.u64(fields.compressedSize); // 8 compressed size
  if (fields.localHeaderOffset !== undefined) w.u64(fields.localHeaderOffset); // 8 local header offset
  return w.done();
}

/** Length of {@link zip64ExtraCentral} for the given number of 8-byte fields (0 = field absent). */
export function zip64ExtraCentralLength(fieldCount: number): number {
  return fieldCount === 0 ? 0 : 4 + 8 * fieldCount;
}

/**
 * Extended timestamp extra field 0x5455 ("UT", Info-ZIP; APPNOTE 4.6.1 lists it as third-party),
 * modification time only, identical in local and central headers.
 * @param mtime Unix seconds, 0..0x7FFFFFFF (see {@link unixTime32}).
 */
export function extendedTimestampExtra(mtime: number): Uint8Array {
  return new Writer(EXTENDED_TIMESTAMP_LENGTH)
    .u16(0x5455) // 2 header ID "UT"
    .u16(5) // 2 data size
    .u8(0x01) // 1 flags: bit 0 = modification time present
    .i32(mtime) // 4 mtime, seconds since 1970-01-01 UTC (signed)
    .done();
}

// ---------------------------------------------------------------------------------------------
// Headers

/** Fields the local and the central header share, in this order (APPNOTE 4.3.7 and 4.3.12). */
export interface HeaderFields {
  versionNeeded: number;
  flags: number;
  method: number;
  dosTime: number;
  dosDate: number;
  crc32: number;
}

export interface LocalHeaderFields extends HeaderFields {
  /** 32-bit values exactly as written (0 under a data descriptor, 0xFFFFFFFF under Zip64). */
  compressedSize: number;
  uncompressedSize: number;
  name: Uint8Array;
  extra: Uint8Array;
}

/** Local file header (APPNOTE 4.3.7). */
export function localFileHeader(f: LocalHeaderFields): Uint8Array {
  return new Writer(LOCAL_HEADER_FIXED + f.name.length + f.extra.length)
    .u32(SIG_LOCAL_FILE_HEADER) // 4 local file header signature
    .headerFields(f, f.compressedSize, f.uncompressedSize) // 26 version needed … uncompressed size
    .u16(f.name.length) // 2 file name length
    .u16(f.extra.length) // 2 extra field length
    .raw(f.name) // n file name
    .raw(f.extra) // m extra field
    .done();
}

/**
 * Data descriptor (APPNOTE 4.3.9) with its optional signature, which every common reader
 * expects. The 64-bit form (4.3.9.2) is used exactly when the local header has a Zip64 extra.
 */
export function dataDescriptor(crc32: number, compressedSize: number, uncompressedSize: number, zip64: boolean): Uint8Array {
  const w = new Writer(zip64 ? DATA_DESCRIPTOR_64 : DATA_DESCRIPTOR_32)
    .u32(SIG_DATA_DESCRIPTOR) // 4 data descriptor signature
    .u32(crc32); // 4 crc-32
  if (zip64) {
    w.u64(compressedSize) // 8 compressed size
      .u64(uncompressedSize); // 8 uncompressed size
  } else {
    w.u32(compressedSize) // 4 compressed size
      .u32(uncompressedSize); // 4 uncompressed size
  }
  return w.done();
}

export interface CentralHeaderFields extends HeaderFields {
  versionMadeBy: number;
  /** 32-bit values exactly as written (0xFFFFFFFF when the value is in the Zip64 extra). */
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  internalAttributes: number;
  externalAttributes: number;
  name: Uint8Array;
  extra: Uint8Array;
  comment: Uint8Array;
}

/** Central directory file header (APPNOTE 4.3.12). */
export function centralDirectoryHeader(f: CentralHeaderFields): Uint8Array {
  return new Writer(CENTRAL_HEADER_FIXED + f.name.length + f.extra.length + f.comment.length)
    .u32(SIG_CENTRAL_DIRECTORY) // 4 central file header signature
    .u16(f.versionMadeBy) // 2 version made by
    .headerFields(f, f.compressedSize, f.uncompressedSize) // 26 version needed … uncompressed size
    .u16(f.name.length) // 2 file name length
    .u16(f.extra.length) // 2 extra field length
    .u16(f.comment.length) // 2 file comment length
    .u16(0) // 2 disk number start (single-disk archives only)
    .u16(f.internalAttributes) // 2 internal file attributes
    .u32(f.externalAttributes) // 4 external file attributes (Unix mode in the high 16 bits)
    .u32(f.localHeaderOffset) // 4 relative offset of local header
    .raw(f.name) // n file name
    .raw(f.extra) // m extra field
    .raw(f.comment) // k file comment
    .done();
}

// ---------------------------------------------------------------------------------------------
// End records

/** Zip64 end of central directory record, version 1 (APPNOTE 4.3.14). */
export function zip64EndOfCentralDirectory(entries: number, cdSize: number, cdOffset: number): Uint8Array {
  return new Writer(ZIP64_EOCD_LENGTH)
    .u32(SIG_ZIP64_EOCD) // 4 zip64 end of central dir signature
    .u64(ZIP64_EOCD_LENGTH - 12) // 8 size of the record after this field (APPNOTE 4.3.14.1)
    .u16(VERSION_MADE_BY) // 2 version made by
    .u16(VERSION_ZIP64) // 2 version needed to extract
    .u32(0) // 4 number of this disk
    .u32(0) // 4 disk where the central directory starts
    .u64(entries) // 8 entries on this disk
    .u64(entries) // 8 total entries
    .u64(cdSize) // 8 size of the central directory
    .u64(cdOffset) // 8 offset of the central directory
    .done();
}

/** Zip64 end of central directory locator (APPNOTE 4.3.15). */
export function zip64EndOfCentralDirectoryLocator(zip64EocdOffset: number): Uint8Array {
  return new Writer(ZIP64_LOCATOR_LENGTH)
    .u32(SIG_ZIP64_EOCD_LOCATOR) // 4 zip64 end of central dir locator signature
    .u32(0) // 4 disk with the zip64 end of central directory
    .u64(zip64EocdOffset) // 8 relative offset of the zip64 end of central directory record
    .u32(1) // 4 total number of disks
    .done();
}

/**
 * End of central directory record (APPNOTE 4.3.16). Values that do not fit are passed as
 * 0xFFFF / 0xFFFFFFFF by the caller, with the real ones in the Zip64 record (APPNOTE 4.4.1.4).
 */
export function endOfCentralDirectory(entries: number, cdSize: number, cdOffset: number, comment: Uint8Array): Uint8Array {
  return new Writer(EOCD_FIXED + comment.length)
    .u32(SIG_EOCD) // 4 end of central dir signature
    .u16(0) // 2 number of this disk
    .u16(0) // 2 disk where the central directory starts
    .u16(entries) // 2 entries on this disk
    .u16(entries) // 2 total entries
    .u32(cdSize) // 4 size of the central directory
    .u32(cdOffset) // 4 offset of the central directory
    .u16(comment.length) // 2 comment length
    .raw(comment) // n comment
    .done();
}

