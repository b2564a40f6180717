/**
 * Pure record parsers: the inverse of `records.ts` (PKWARE APPNOTE.TXT 6.3.x).
 *
 * Each parser reads one structure at a position in a byte array and returns its fields, or
 * `undefined` when the bytes given end before the record does (the caller fetches more). A wrong
 * signature is not an exception either: it is reported as `{ bad: "signature" }` so a checker
 * can name the problem. Nothing here does I/O or decides policy; `@zipstream/s3`'s
 * `verifyS3Zip` builds its checks on these.
 */
import {
  CENTRAL_HEADER_FIXED,
  EOCD_FIXED,
  LOCAL_HEADER_FIXED,
  MAX_UINT16,
  MAX_UINT32,
  SIG_CENTRAL_DIRECTORY,
  SIG_DATA_DESCRIPTOR,
  SIG_EOCD,
  SIG_LOCAL_FILE_HEADER,
  SIG_ZIP64_EOCD,
  SIG_ZIP64_EOCD_LOCATOR,
  ZIP64_EOCD_LENGTH,
  ZIP64_LOCATOR_LENGTH,
  type HeaderFields,
} from "./records.js";

export {
  CENTRAL_HEADER_FIXED,
  EOCD_FIXED,
  LOCAL_HEADER_FIXED,
  ZIP64_EOCD_LENGTH,
  ZIP64_LOCATOR_LENGTH,
  MAX_UINT16,
  MAX_UINT32,
};

/** Longest possible end of central directory record: the fixed part and a 65,535-byte comment. */
export const EOCD_MAX = EOCD_FIXED + MAX_UINT16;

const u16 = (b: Uint8Array, p: number): number => b[p] | (b[p + 1] << 8);
const u32 = (b: Uint8Array, p: number): number => (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
/** A 64-bit field as a number; values past 2^53 come back as Infinity (no archive is that big). */
const u64 = (b: Uint8Array, p: number): number => {
  const hi = u32(b, p + 4);
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + u32(b, p);
};

/** Where the central directory is: the fields the end record and its Zip64 form share (APPNOTE 4.3.14, 4.3.16). */
export interface CentralDirectoryLocation {
  disk: number;
  cdDisk: number;
  entriesOnDisk: number;
  entries: number;
  cdSize: number;
  cdOffset: number;
}

/** End of central directory record (APPNOTE 4.3.16), as written: 0xFFFF/0xFFFFFFFF kept. */
export interface EndOfCentralDirectory extends CentralDirectoryLocation {
  /** Position of the record's signature in the bytes searched. */
  pos: number;
  comment: Uint8Array;
  /** Bytes after the record's comment (0 in a well-formed archive). */
  trailing: number;
}

/**
 * Finds the end of central directory record in the last bytes of an archive (APPNOTE 4.3.16:
 * the record is last, followed only by its comment of up to 65,535 bytes). Searches backwards for
 * the signature; a candidate whose comment length runs exactly to the end wins, else the last
 * candidate whose comment fits (junk after it is reported in `trailing`). Undefined when none.
 */
export function findEndOfCentralDirectory(tail: Uint8Array): EndOfCentralDirectory | undefined {
  let loose: number | undefined;
  for (let p = tail.length - EOCD_FIXED; p >= 0 && p >= tail.length - EOCD_MAX - 1024; p--) {
    if (tail[p] !== 0x50 || u32(tail, p) !== SIG_EOCD) continue;
    const commentLength = u16(tail, p + 20);
    const end = p + EOCD_FIXED + commentLength;
    if (end === tail.length) return eocdAt(tail, p);
    if (end < tail.length && loose === undefined) loose = p;
  }
  return loose === undefined ? undefined : eocdAt(tail, loose);
}

function eocdAt(b: Uint8Array, p: number): EndOfCentralDirectory {
  const commentLength = u16(b, p + 20);
  return {
    pos: p,
    disk: u16(b, p + 4),
    cdDisk: u16(b, p + 6),
    entriesOnDisk: u16(b, p + 8),
    entries: u16(b, p + 10),
    cdSize: u32(b, p + 12),
    cdOffset: u32(b, p + 16),
    comment: b.subarray(p + 22, p + 22 + commentLength),
    trailing: b.length - (p + 22 + commentLength),
  };
}

/** Zip64 end of central directory locator (APPNOTE 4.3.15). */
export interface Zip64Locator {
  disk: number;
  zip64EocdOffset: number;
  disks: number;
}

/** Parses the locator at `p`, or undefined when the signature is not there. */
export function parseZip64Locator(b: Uint8Array, p: number): Zip64Locator | undefined {
  if (p < 0 || p + ZIP64_LOCATOR_LENGTH > b.length || u32(b, p) !== SIG_ZIP64_EOCD_LOCATOR) return undefined;
  return { disk: u32(b, p + 4), zip64EocdOffset: u64(b, p + 8), disks: u32(b, p + 16) };
}

/** Zip64 end of central directory record (APPNOTE 4.3.14). */
export interface Zip64EndOfCentralDirectory extends CentralDirectoryLocation {
  /** Length of the whole record, signature included (56 plus any extensible data). */
  length: number;
  versionMadeBy: number;
  versionNeeded: number;
}

/** Parses the Zip64 record at `p`: undefined when too short, `{ bad }` on a wrong signature. */
export function parseZip64EndOfCentralDirectory(b: Uint8Array, p: number): Zip64EndOfCentralDirectory | { bad: "signature" } | undefined {
  if (p + ZIP64_EOCD_LENGTH > b.length) return undefined;
  if (u32(b, p) !== SIG_ZIP64_EOCD) return { bad: "signature" };
  return {
    length: 12 + u64(b, p + 4),
    versionMadeBy: u16(b, p + 12),
    versionNeeded: u16(b, p + 14),
    disk: u32(b, p + 16),
    cdDisk: u32(b, p + 20),
    entriesOnDisk: u64(b, p + 24),
    entries: u64(b, p + 32),
    cdSize: u64(b, p + 40),
    cdOffset: u64(b, p + 48),
  };
}

/** One extra field (APPNOTE 4.5.1): header id and its data. */
export interface ExtraField {
  id: number;
  data: Uint8Array;
}

/** Splits an extra field block; `malformed` when a field's length runs past the block. */
export function parseExtraFields(extra: Uint8Array): { fields: ExtraField[]; malformed: boolean } {
  const fields: ExtraField[] = [];
  let p = 0;
  while (p + 4 <= extra.length) {
    const id = u16(extra, p);
    const size = u16(extra, p + 2);
    if (p + 4 + size > extra.length) return { fields, malformed: true };
    fields.push({ id, data: extra.subarray(p + 4, p + 4 + size) });
    p += 4 + size;
  }
  // Some writers pad the block with up to 3 zero bytes (Android's zipalign); anything else is malformed.
  const rest = extra.subarray(p);
  return { fields, malformed: rest.some((x) => x !== 0) };
}

export const EXTRA_ZIP64 = 0x0001;
export const EXTRA_AES = 0x9901;
export const EXTRA_UNICODE_PATH = 0x7075;

/** The 0x9901 WinZip AES extra field (AE-1/AE-2). */
export interface AesExtra {
  /** 1 = AE-1 (CRC kept), 2 = AE-2 (CRC 0). */
  vendorVersion: number;
  /** 1, 2, 3 = AES-128, -192, -256. */
  strength: number;
  /** Compression method of the data inside the encryption. */
  actualMethod: number;
}

export function parseAesExtra(data: Uint8Array): AesExtra | undefined {
  if (data.length < 7 || data[2] !== 0x41 || data[3] !== 0x45) return undefined;
  return { vendorVersion: u16(data, 0), strength: data[4], actualMethod: u16(data, 5) };
}

/** Fields common to local and central headers, with Zip64 values resolved. */
interface HeaderCommon extends HeaderFields {
  /** Sizes and offset as the 32-bit fields hold them (0xFFFFFFFF when in the Zip64 extra). */
  rawCompressedSize: number;
  rawUncompressedSize: number;
  /** Resolved through the Zip64 extra when the 32-bit field holds 0xFFFFFFFF. */
  compressedSize: number;
  uncompressedSize: number;
  nameBytes: Uint8Array;
  extra: Uint8Array;
  fields: ExtraField[];
  /** The extra block runs past its length (or ends in junk). */
  extraMalformed: boolean;
  /** A 32-bit field holds 0xFFFFFFFF but the Zip64 extra does not carry its value. */
  zip64Missing: boolean;
  /** A Zip64 extra field is present. */
  hasZip64Extra: boolean;
  /** The Zip64 extra holds more 8-byte values than the header's saturated fields call for. */
  zip64ExtraSurplus: boolean;
  aes: AesExtra | undefined;
  /** Total length of the record. */
  length: number;
}

export interface CentralHeader extends HeaderCommon {
  versionMadeBy: number;
  diskStart: number;
  internalAttributes: number;
  externalAttributes: number;
  rawLocalHeaderOffset: number;
  localHeaderOffset: number;
  comment: Uint8Array;
}

export interface LocalHeader extends HeaderCommon {}

/**
 * Reads the Zip64 extra (APPNOTE 4.5.3): its values appear only for the header fields that hold
 * 0xFFFFFFFF, in the order original size, compressed size, local header offset, disk number.
 */
function resolveZip64(h: HeaderCommon, raws: { u: number; c: number; o?: number }, local: boolean): { o?: number } {
  const z = h.fields.find((f) => f.id === EXTRA_ZIP64);
  h.hasZip64Extra = z !== undefined;
  const want: ("u" | "c" | "o")[] = [];
  if (raws.u === MAX_UINT32) want.push("u");
  if (raws.c === MAX_UINT32) want.push("c");
  if (raws.o === MAX_UINT32) want.push("o");
  const out: { u?: number; c?: number; o?: number } = {};
  if (z === undefined) {
    if (want.length > 0) h.zip64Missing = true;
  } else if (local) {
    if (z.data.length < 16) h.zip64Missing = true;
    else {
      // The local header's Zip64 extra MUST hold both sizes (APPNOTE 4.5.3); they replace only
      // the fields that say so (under a data descriptor both sides may be zero).
      if (raws.u === MAX_UINT32) out.u = u64(z.data, 0);
      if (raws.c === MAX_UINT32) out.c = u64(z.data, 8);
    }
  } else {
    if (z.data.length < 8 * want.length) h.zip64Missing = true;
    else {
      want.forEach((k, i) => (out[k] = u64(z.data, 8 * i)));
      // Values beyond those called for (the disk number, 4 bytes, may follow and is allowed).
      if (z.data.length >= 8 * (want.length + 1)) h.zip64ExtraSurplus = true;
    }
  }
  h.uncompressedSize = out.u ?? raws.u;
  h.compressedSize = out.c ?? raws.c;
  return { o: out.o ?? raws.o };
}

function common(b: Uint8Array, p: number, at: number, nameLength: number, extraLength: number, length: number): HeaderCommon {
  const nameStart = p + at;
  const extra = b.subarray(nameStart + nameLength, nameStart + nameLength + extraLength);
  const parsed = parseExtraFields(extra);
  const aesField = parsed.fields.find((f) => f.id === EXTRA_AES);
  return {
    versionNeeded: 0,
    flags: 0,
    method: 0,
    dosTime: 0,
    dosDate: 0,
    crc32: 0,
    rawCompressedSize: 0,
    rawUncompressedSize: 0,
    compressedSize: 0,
    uncompressedSize: 0,
    nameBytes: b.subarray(nameStart, nameStart + nameLength),
    extra,
    fields: parsed.fields,
    extraMalformed: parsed.malformed,
    zip64Missing: false,
    hasZip64Extra: false,
    zip64ExtraSurplus: false,
    aes: aesField ? parseAesExtra(aesField.data) : undefined,
    length,
  };
}

/** Central directory file header at `p` (APPNOTE 4.3.12); undefined when the bytes end first. */
export function parseCentralHeader(b: Uint8Array, p: number): CentralHeader | { bad: "signature" } | undefined {
  if (p + 4 > b.length) return undefined;
  if (u32(b, p) !== SIG_CENTRAL_DIRECTORY) return { bad: "signature" };
  if (p + CENTRAL_HEADER_FIXED > b.length) return undefined;
  const n = u16(b, p + 28);
  const m = u16(b, p + 30);
  const k = u16(b, p + 32);
  const length = CENTRAL_HEADER_FIXED + n + m + k;
  if (p + length > b.length) return undefined;
  const h = common(b, p, CENTRAL_HEADER_FIXED, n, m, length) as CentralHeader;
  h.versionMadeBy = u16(b, p + 4);
  h.versionNeeded = u16(b, p + 6);
  h.flags = u16(b, p + 8);
  h.method = u16(b, p + 10);
  h.dosTime = u16(b, p + 12);
  h.dosDate = u16(b, p + 14);
  h.crc32 = u32(b, p + 16);
  h.rawCompressedSize = u32(b, p + 20);
  h.rawUncompressedSize = u32(b, p + 24);
  h.diskStart = u16(b, p + 34);
  h.internalAttributes = u16(b, p + 36);
  h.externalAttributes = u32(b, p + 38);
  h.rawLocalHeaderOffset = u32(b, p + 42);
  h.comment = b.subarray(p + CENTRAL_HEADER_FIXED + n + m, p + length);
  const r = resolveZip64(h, { u: h.rawUncompressedSize, c: h.rawCompressedSize, o: h.rawLocalHeaderOffset }, false);
  h.localHeaderOffset = r.o!;
  return h;
}

/** Length of the local header at `p` once its fixed part is available, else undefined. */
export function localHeaderLength(b: Uint8Array, p: number): number | undefined {
  if (p + LOCAL_HEADER_FIXED > b.length) return undefined;
  return LOCAL_HEADER_FIXED + u16(b, p + 26) + u16(b, p + 28);
}

/** Local file header at `p` (APPNOTE 4.3.7); undefined when the bytes end first. */
export function parseLocalHeader(b: Uint8Array, p: number): LocalHeader | { bad: "signature" } | undefined {
  if (p + 4 > b.length) return undefined;
  if (u32(b, p) !== SIG_LOCAL_FILE_HEADER) return { bad: "signature" };
  const length = localHeaderLength(b, p);
  if (length === undefined || p + length > b.length) return undefined;
  const h = common(b, p, LOCAL_HEADER_FIXED, u16(b, p + 26), u16(b, p + 28), length) as LocalHeader;
  h.versionNeeded = u16(b, p + 4);
  h.flags = u16(b, p + 6);
  h.method = u16(b, p + 8);
  h.dosTime = u16(b, p + 10);
  h.dosDate = u16(b, p + 12);
  h.crc32 = u32(b, p + 14);
  h.rawCompressedSize = u32(b, p + 18);
  h.rawUncompressedSize = u32(b, p + 22);
  resolveZip64(h, { u: h.rawUncompressedSize, c: h.rawCompressedSize }, true);
  return h;
}

/** Data descriptor (APPNOTE 4.3.9). */
export interface DataDescriptor {
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Length including the optional signature. */
  length: number;
}

/**
 * Data descriptor at `p`, with or without its optional signature, 64-bit sizes when `zip64`
 * (the local header had a Zip64 extra, APPNOTE 4.3.9.2). Undefined when the bytes end first.
 */
export function parseDataDescriptor(b: Uint8Array, p: number, zip64: boolean): DataDescriptor | undefined {
  const sig = p + 4 <= b.length && u32(b, p) === SIG_DATA_DESCRIPTOR ? 4 : 0;
  const length = sig + 4 + (zip64 ? 16 : 8);
  if (p + length > b.length) return undefined;
  const q = p + sig;
  return zip64
    ? { crc32: u32(b, q), compressedSize: u64(b, q + 4), uncompressedSize: u64(b, q + 12), length }
    : { crc32: u32(b, q), compressedSize: u32(b, q + 4), uncompressedSize: u32(b, q + 8), length };
}

/** The Info-ZIP Unicode Path extra (0x7075): version 1, CRC-32 of the header name, UTF-8 name. */
function unicodePath(fields: ExtraField[]): Uint8Array | undefined {
  const f = fields.find((x) => x.id === EXTRA_UNICODE_PATH);
  return f !== undefined && f.data.length > 5 && f.data[0] === 1 ? f.data.subarray(5) : undefined;
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/**
 * An entry's name as text. UTF-8 when general purpose bit 11 says so (APPNOTE 4.4.4, Appendix D)
 * or when the Info-ZIP Unicode Path extra gives it; otherwise APPNOTE's default is IBM 437, but
 * many writers (macOS, Python for ASCII) store UTF-8 without the flag, so valid UTF-8 is read as
 * UTF-8 and anything else byte for byte. The characters the safety checks look at (`/`, `\`, `.`,
 * `:`) are ASCII and read the same under every one of these.
 */
export function decodeName(h: { nameBytes: Uint8Array; flags: number; fields: ExtraField[] }): string {
  const bytes = unicodePath(h.fields) ?? h.nameBytes;
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}
