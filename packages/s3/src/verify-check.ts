/**
 * The ZIP structure checker of `verifyS3Zip`: reads the end records, the central directory and
 * the local headers through a {@link RangeSource} (byte ranges of any store) and records every
 * broken invariant as a {@link VerifyProblem} with a stable code. No S3 here: `verify-read.ts`
 * supplies the ranges. Record parsing is `@zipstream/core`'s (the inverse of its builders), and
 * names are judged by the encoder's own rules (`checkName`, `NameRegistry`).
 */
import {
  CENTRAL_HEADER_FIXED,
  EOCD_FIXED,
  EOCD_MAX,
  FLAG_DATA_DESCRIPTOR,
  FLAG_ENCRYPTED,
  LOCAL_HEADER_FIXED,
  MAX_UINT16,
  MAX_UINT32,
  METHOD_AES,
  METHOD_STORE,
  NameRegistry,
  ZIP64_EOCD_LENGTH,
  ZIP64_LOCATOR_LENGTH,
  ZipError,
  checkName,
  decodeName,
  findEndOfCentralDirectory,
  localHeaderLength,
  parseCentralHeader,
  parseLocalHeader,
  parseZip64EndOfCentralDirectory,
  parseZip64Locator,
  type CentralHeader,
  type LocalHeader,
  pool,
} from "@zipstream/core";
import type { RangeSource } from "./verify-read.js";

/**
 * Stable codes of the problems `verifyS3Zip` reports (the package README has the table).
 * Structure: `NOT_A_ZIP`, `TRUNCATED`, `TRAILING_DATA`, `MULTI_DISK`, `ZIP64_LOCATOR_INVALID`,
 * `ZIP64_MISSING`, `END_RECORDS_DISAGREE`, `CD_OUT_OF_BOUNDS`, `CD_MISPLACED`, `CD_RECORD_INVALID`,
 * `CD_SIZE_MISMATCH`, `ENTRY_COUNT_MISMATCH`, `EXTRA_FIELD_INVALID`, `OFFSET_OUT_OF_BOUNDS`,
 * `OVERLAP`, `LOCAL_HEADER_INVALID`, `LOCAL_HEADER_MISMATCH`, `STORED_SIZE_MISMATCH`.
 * Names: `NAME_UNSAFE`, `NAME_DUPLICATE`. Data (deep): `CRC_MISMATCH`, `SIZE_MISMATCH`,
 * `DATA_CORRUPT`, `DESCRIPTOR_MISMATCH`, `AES_PASSWORD_WRONG`, `AES_AUTH_FAILED`.
 * Against `expect`: `EXPECTED_MISSING`, `UNEXPECTED_ENTRY`, `EXPECTED_SIZE_MISMATCH`,
 * `EXPECTED_CRC_MISMATCH`. The object: `OBJECT_CHANGED`. `TOO_MANY_PROBLEMS` ends a capped list.
 */
export type VerifyProblemCode =
  | "NOT_A_ZIP"
  | "TRUNCATED"
  | "TRAILING_DATA"
  | "MULTI_DISK"
  | "ZIP64_LOCATOR_INVALID"
  | "ZIP64_MISSING"
  | "END_RECORDS_DISAGREE"
  | "CD_OUT_OF_BOUNDS"
  | "CD_MISPLACED"
  | "CD_RECORD_INVALID"
  | "CD_SIZE_MISMATCH"
  | "ENTRY_COUNT_MISMATCH"
  | "EXTRA_FIELD_INVALID"
  | "OFFSET_OUT_OF_BOUNDS"
  | "OVERLAP"
  | "LOCAL_HEADER_INVALID"
  | "LOCAL_HEADER_MISMATCH"
  | "STORED_SIZE_MISMATCH"
  | "NAME_UNSAFE"
  | "NAME_DUPLICATE"
  | "CRC_MISMATCH"
  | "SIZE_MISMATCH"
  | "DATA_CORRUPT"
  | "DESCRIPTOR_MISMATCH"
  | "AES_PASSWORD_WRONG"
  | "AES_AUTH_FAILED"
  | "EXPECTED_MISSING"
  | "UNEXPECTED_ENTRY"
  | "EXPECTED_SIZE_MISMATCH"
  | "EXPECTED_CRC_MISMATCH"
  | "OBJECT_CHANGED"
  | "TOO_MANY_PROBLEMS";

/**
 * Codes of observations that break no invariant (`ok` stays true): `ZIP64_UNNEEDED` (Zip64
 * records or extras where every value fits 32 bits: `zip64: "always"`, Info-ZIP's streaming
 * mode), `AES_NOT_CHECKED` (no password given), `ENCRYPTED_NOT_CHECKED` (traditional PKWARE
 * encryption), `METHOD_NOT_CHECKED` (a compression method other than store and deflate),
 * `AES_STRENGTH_NOT_CHECKED` (AES-128/192: only AES-256 can be checked).
 */
export type VerifyWarningCode =
  | "ZIP64_UNNEEDED"
  | "AES_NOT_CHECKED"
  | "ENCRYPTED_NOT_CHECKED"
  | "METHOD_NOT_CHECKED"
  | "AES_STRENGTH_NOT_CHECKED";

export interface VerifyProblem<C extends string = VerifyProblemCode> {
  code: C;
  /** The member's name, when the problem concerns one. */
  entry?: string;
  message: string;
}

/** At most this many problems are listed (then one `TOO_MANY_PROBLEMS`); memory stays bounded. */
export const MAX_PROBLEMS = 1000;

export class Findings {
  readonly problems: VerifyProblem[] = [];
  readonly warnings: VerifyProblem<VerifyWarningCode>[] = [];
  private dropped = 0;
  problem(code: VerifyProblemCode, message: string, entry?: string): void {
    if (this.problems.length >= MAX_PROBLEMS) {
      this.dropped++;
      return;
    }
    this.problems.push(entry === undefined ? { code, message } : { code, entry, message });
  }
  /** Warnings are grouped by code: one line per code with a count. */
  warn(code: VerifyWarningCode, message: string, entry?: string): void {
    const w = this.warnings.find((x) => x.code === code);
    if (w === undefined) this.warnings.push(entry === undefined ? { code, message } : { code, entry, message });
    else this.counts.set(code, (this.counts.get(code) ?? 1) + 1);
  }
  private readonly counts = new Map<string, number>();
  finish(): void {
    if (this.dropped > 0) this.problems.push({ code: "TOO_MANY_PROBLEMS", message: `${this.dropped} more problems not listed` });
    this.dropped = 0;
    for (const w of this.warnings) {
      const n = this.counts.get(w.code);
      if (n !== undefined) w.message += ` (and ${n - 1} more entries)`;
    }
    this.counts.clear();
  }
  has(code: VerifyProblemCode): boolean {
    return this.problems.some((p) => p.code === code);
  }
}

// ---------------------------------------------------------------------------------------------
// The end records

/** What the end records say, resolved (Zip64 values where present). */
export interface EndRecords {
  entries: number;
  cdSize: number;
  cdOffset: number;
  /** Where the end records begin: the Zip64 record, else the EOCD. The directory must end here. */
  endStart: number;
  zip64: boolean;
  comment: Uint8Array;
}

/** Size of the first read: the longest EOCD with the Zip64 locator and record before it. */
export const END_RECORDS_MAX = EOCD_MAX + ZIP64_LOCATOR_LENGTH + ZIP64_EOCD_LENGTH;

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * Checks the end records in `tail` (the last bytes of the object, which start at `tailStart`).
 * Returns undefined when there is no usable end record (the problem is recorded).
 */
export async function readEnd(src: RangeSource, tail: Uint8Array, tailStart: number, f: Findings): Promise<EndRecords | undefined> {
  const eocd = findEndOfCentralDirectory(tail);
  if (eocd === undefined) {
    // A ZIP that lost its end: it still starts with a local header (APPNOTE 4.3.6).
    const head = src.size >= 4 ? (tailStart === 0 ? tail.subarray(0, 4) : await src.read(0, 4)) : new Uint8Array(0);
    const zipStart = head.length === 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4;
    if (zipStart) f.problem("TRUNCATED", `the object starts like a ZIP archive but has no end of central directory record: it was cut short (${src.size} bytes)`);
    else f.problem("NOT_A_ZIP", `no end of central directory record in the last ${tail.length} bytes: not a ZIP archive`);
    return undefined;
  }
  const eocdOffset = tailStart + eocd.pos;
  if (eocd.trailing > 0) f.problem("TRAILING_DATA", `${eocd.trailing} bytes follow the end of central directory record and its comment`);
  if (eocd.disk !== 0 || eocd.cdDisk !== 0 || eocd.entriesOnDisk !== eocd.entries) {
    f.problem("MULTI_DISK", "the end record describes a split (multi-disk) archive, which S3 objects cannot be");
  }
  const out: EndRecords = {
    entries: eocd.entries,
    cdSize: eocd.cdSize,
    cdOffset: eocd.cdOffset,
    endStart: eocdOffset,
    zip64: false,
    comment: eocd.comment,
  };
  const saturated = eocd.entries === MAX_UINT16 || eocd.cdSize === MAX_UINT32 || eocd.cdOffset === MAX_UINT32;
  const locator = parseZip64Locator(tail, eocd.pos - ZIP64_LOCATOR_LENGTH);
  if (locator === undefined) {
    if (saturated) f.problem("ZIP64_MISSING", "the end record holds 0xFFFF/0xFFFFFFFF values but no Zip64 end records follow");
    return out;
  }
  out.zip64 = true;
  const z64Offset = locator.zip64EocdOffset;
  const locatorOffset = eocdOffset - ZIP64_LOCATOR_LENGTH;
  if (locator.disk !== 0 || locator.disks > 1) f.problem("MULTI_DISK", "the Zip64 locator describes a split (multi-disk) archive");
  if (!(z64Offset + ZIP64_EOCD_LENGTH <= locatorOffset)) {
    f.problem("ZIP64_LOCATOR_INVALID", `the Zip64 locator points at ${z64Offset}, which leaves no room for the Zip64 record before the locator at ${locatorOffset}`);
    return undefined;
  }
  const bytes = z64Offset >= tailStart ? tail.subarray(z64Offset - tailStart, locatorOffset - tailStart) : await src.read(z64Offset, locatorOffset);
  const z = parseZip64EndOfCentralDirectory(bytes, 0);
  if (z === undefined || "bad" in z) {
    f.problem("ZIP64_LOCATOR_INVALID", `no Zip64 end of central directory record at offset ${z64Offset}, where the locator points`);
    return undefined;
  }
  if (z64Offset + z.length !== locatorOffset) {
    f.problem("ZIP64_LOCATOR_INVALID", `the Zip64 record at ${z64Offset} is ${z.length} bytes long but the locator follows at ${locatorOffset}`);
  }
  if (z.disk !== 0 || z.cdDisk !== 0 || z.entriesOnDisk !== z.entries) f.problem("MULTI_DISK", "the Zip64 record describes a split (multi-disk) archive");
  // A field of the EOCD that is not saturated must agree with the Zip64 record (APPNOTE 4.4.1.4).
  const pairs: [string, number, number, number][] = [
    ["entry count", eocd.entries, z.entries, MAX_UINT16],
    ["central directory size", eocd.cdSize, z.cdSize, MAX_UINT32],
    ["central directory offset", eocd.cdOffset, z.cdOffset, MAX_UINT32],
  ];
  for (const [what, small, big, max] of pairs) {
    if (small !== max && small !== big) f.problem("END_RECORDS_DISAGREE", `the end record's ${what} is ${small}, the Zip64 record's ${big}`);
  }
  if (!saturated && z.entries < MAX_UINT16 && z.cdSize < MAX_UINT32 && z.cdOffset < MAX_UINT32) {
    f.warn("ZIP64_UNNEEDED", "the archive has Zip64 end records though its entry count, directory size and offset fit the plain end record");
  }
  out.entries = z.entries;
  out.cdSize = z.cdSize;
  out.cdOffset = z.cdOffset;
  out.endStart = z64Offset;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The central directory

/**
 * Every central directory entry, compactly: typed arrays for the numbers (about 50 bytes per
 * entry) and the names as strings.
 */
export class EntryTable {
  length = 0;
  names: string[] = [];
  offset = new Float64Array(1024);
  compressedSize = new Float64Array(1024);
  uncompressedSize = new Float64Array(1024);
  crc32 = new Uint32Array(1024);
  method = new Uint16Array(1024);
  flags = new Uint16Array(1024);
  /** AES: actual method (0xFFFF when not AES), strength, vendor version. */
  aesMethod = new Uint16Array(1024);
  aesStrength = new Uint8Array(1024);
  aesVersion = new Uint8Array(1024);
  nameLength = new Uint16Array(1024);
  extraLength = new Uint16Array(1024);
  /** Bytes of the local header once read (0 until then). */
  localLength = new Uint32Array(1024);
  /** CRC-32 recomputed by the deep check (valid where `computed` is 1). */
  computedCrc = new Uint32Array(1024);
  computed = new Uint8Array(1024);

  private grow(): void {
    const n = this.offset.length * 2;
    for (const k of Object.keys(this) as (keyof this)[]) {
      const a = this[k];
      if (ArrayBuffer.isView(a) && !(a instanceof DataView)) {
        const b = new (a.constructor as new (n: number) => typeof a & { set(x: ArrayLike<number>): void })(n);
        b.set(a as unknown as ArrayLike<number>);
        this[k] = b as this[keyof this];
      }
    }
  }

  add(h: CentralHeader, name: string): number {
    if (this.length === this.offset.length) this.grow();
    const i = this.length++;
    this.names.push(name);
    this.offset[i] = h.localHeaderOffset;
    this.compressedSize[i] = h.compressedSize;
    this.uncompressedSize[i] = h.uncompressedSize;
    this.crc32[i] = h.crc32;
    this.method[i] = h.method;
    this.flags[i] = h.flags;
    this.aesMethod[i] = h.aes ? h.aes.actualMethod : 0xffff;
    this.aesStrength[i] = h.aes?.strength ?? 0;
    this.aesVersion[i] = h.aes?.vendorVersion ?? 0;
    this.nameLength[i] = h.nameBytes.length;
    this.extraLength[i] = h.extra.length;
    return i;
  }

  isDirectory(i: number): boolean {
    return this.names[i]!.endsWith("/");
  }

  /** Entry indexes in the order of their local headers. */
  byOffset(): Uint32Array {
    const order = new Uint32Array(this.length);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const off = this.offset;
    return order.sort((a, b) => off[a]! - off[b]! || a - b);
  }
}

/**
 * Parses the central directory as it streams in (records may straddle chunks), checking each
 * record and its name. Memory: the entry table plus one record's worth of carried bytes.
 */
export class DirectoryReader {
  private carry: Uint8Array = new Uint8Array(0);
  private consumed = 0;
  private broken = false;
  private readonly names = new NameRegistry("error");
  zip64Entries = 0;
  zip64Unneeded = 0;

  constructor(
    readonly table: EntryTable,
    private readonly end: EndRecords,
    private readonly f: Findings,
  ) {}

  push(chunk: Uint8Array): void {
    if (this.broken) return;
    let b = chunk;
    if (this.carry.length > 0) {
      b = new Uint8Array(this.carry.length + chunk.length);
      b.set(this.carry, 0);
      b.set(chunk, this.carry.length);
    }
    let p = 0;
    for (;;) {
      const h = parseCentralHeader(b, p);
      if (h === undefined) break;
      if ("bad" in h) {
        this.broken = true;
        this.f.problem(
          "CD_RECORD_INVALID",
          `no central directory header signature at offset ${this.end.cdOffset + this.consumed + p} (record ${this.table.length + 1} of ${this.end.entries})`,
        );
        return;
      }
      this.record(h);
      p += h.length;
    }
    this.consumed += p;
    this.carry = b.subarray(p).slice();
  }

  /** Call once the directory's bytes are all in. */
  finish(): void {
    const t = this.table;
    if (!this.broken && this.carry.length > 0) {
      this.f.problem("CD_SIZE_MISMATCH", `the central directory ends with ${this.carry.length} bytes that are not a whole record (size ${this.end.cdSize})`);
    }
    if (t.length !== this.end.entries) {
      this.f.problem("ENTRY_COUNT_MISMATCH", `the end records count ${this.end.entries} entries, the central directory holds ${t.length}${this.broken ? " before a broken record" : ""}`);
    }
    if (this.zip64Unneeded > 0) {
      this.f.warn("ZIP64_UNNEEDED", `${this.zip64Unneeded} entries have a Zip64 extra field though their sizes and offset fit 32 bits`);
    }
  }

  private record(h: CentralHeader): void {
    const name = decodeName(h);
    const i = this.table.add(h, name);
    const f = this.f;
    if (h.extraMalformed) f.problem("EXTRA_FIELD_INVALID", "the extra field block is malformed (a field runs past its end)", name);
    if (h.zip64Missing) f.problem("ZIP64_MISSING", "a size or offset field holds 0xFFFFFFFF but the Zip64 extra field does not carry its value", name);
    if (h.diskStart !== 0 && h.diskStart !== MAX_UINT16) f.problem("MULTI_DISK", `the entry starts on disk ${h.diskStart}`, name);
    if (h.hasZip64Extra) {
      this.zip64Entries++;
      const fits = h.compressedSize < MAX_UINT32 && h.uncompressedSize < MAX_UINT32 && h.localHeaderOffset < MAX_UINT32;
      if (fits || h.zip64ExtraSurplus) this.zip64Unneeded++;
    }
    if (h.method === METHOD_STORE && (h.flags & FLAG_ENCRYPTED) === 0 && h.compressedSize !== h.uncompressedSize) {
      f.problem("STORED_SIZE_MISMATCH", `a stored entry's compressed size ${h.compressedSize} differs from its size ${h.uncompressedSize}`, name);
    }
    if (h.method === METHOD_AES && h.aes === undefined) f.problem("EXTRA_FIELD_INVALID", "method 99 (AES) without a valid 0x9901 extra field", name);
    // Names: the encoder's own rules and duplicate detection, so both sides agree by construction.
    let normal: string;
    try {
      normal = checkName(name, name.endsWith("/"));
    } catch (err) {
      f.problem("NAME_UNSAFE", err instanceof ZipError ? err.message : String(err), name);
      return;
    }
    try {
      const r = this.names.resolve(normal);
      this.names.commit(r.hash, r.bytes);
    } catch (err) {
      if (err instanceof ZipError && err.code === "ERR_DUPLICATE_NAME") f.problem("NAME_DUPLICATE", `more than one entry is named ${JSON.stringify(normal)}`, name);
      else f.problem("NAME_UNSAFE", err instanceof Error ? err.message : String(err), name);
    }
    void i;
  }
}

/**
 * Reads and checks the central directory: from the end records' offset and size, streaming the
 * part not already in `tail` with one ranged GET.
 */
export async function readDirectory(src: RangeSource, end: EndRecords, tail: Uint8Array, tailStart: number, f: Findings): Promise<{ table: EntryTable; zip64Entries: number } | undefined> {
  const { cdOffset, cdSize } = end;
  if (!(cdOffset + cdSize <= src.size) || !Number.isFinite(cdOffset + cdSize)) {
    f.problem("CD_OUT_OF_BOUNDS", `the central directory (offset ${cdOffset}, ${cdSize} bytes) runs past the end of the ${src.size}-byte object`);
    return undefined;
  }
  if (cdOffset + cdSize !== end.endStart) {
    f.problem("CD_MISPLACED", `the central directory ends at ${cdOffset + cdSize}, but the end records begin at ${end.endStart}`);
    if (cdOffset + cdSize > end.endStart) return undefined;
  }
  const table = new EntryTable();
  const reader = new DirectoryReader(table, end, f);
  const cdEnd = cdOffset + cdSize;
  if (cdOffset < tailStart) await src.stream(cdOffset, Math.min(cdEnd, tailStart), (c) => reader.push(c));
  if (cdEnd > tailStart) reader.push(tail.subarray(Math.max(0, cdOffset - tailStart), cdEnd - tailStart));
  reader.finish();
  return { table, zip64Entries: reader.zip64Entries };
}

// ---------------------------------------------------------------------------------------------
// Layout and local headers

/** Smallest span a member occupies before the next one: its header, data and descriptor. */
function memberSpan(t: EntryTable, i: number): number {
  const header = t.localLength[i] || LOCAL_HEADER_FIXED + t.nameLength[i]!;
  const descriptor = t.flags[i]! & FLAG_DATA_DESCRIPTOR ? 12 : 0;
  return header + t.compressedSize[i]! + descriptor;
}

/**
 * Offsets inside the object and before the directory; no two members overlap (each member's
 * header, data and minimal descriptor end before the next header). With local headers read,
 * their real lengths are used.
 */
export function checkLayout(t: EntryTable, order: Uint32Array, cdOffset: number, f: Findings): void {
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const off = t.offset[i]!;
    const name = t.names[i];
    if (off >= cdOffset) {
      f.problem("OFFSET_OUT_OF_BOUNDS", `the local header offset ${off} is not before the central directory at ${cdOffset}`, name);
      continue;
    }
    const end = off + memberSpan(t, i);
    const next = k + 1 < order.length ? Math.min(t.offset[order[k + 1]!]!, cdOffset) : cdOffset;
    if (end > next) {
      const other = k + 1 < order.length && t.offset[order[k + 1]!]! <= cdOffset ? `the entry ${JSON.stringify(t.names[order[k + 1]!])} at ${next}` : `the central directory at ${cdOffset}`;
      f.problem("OVERLAP", `the member spans at least ${off}..${end}, overlapping ${other}`, name);
    }
  }
}

export type LocalHeaderMode = "all" | "sample" | "none";

/** Members whose local headers the "sample" mode reads: the first, the last, and evenly between. */
export const SAMPLE_SIZE = 64;

/**
 * Reads through a gap of up to this many bytes rather than issuing another request.
 *
 * Chosen by measurement (`packages/s3/bench/range-cost.mjs`, Ceph RGW 16 on 127.0.0.1, median of
 * 30 GETs each): 64 KiB 2.1 ms, 128 KiB 2.7 ms, 512 KiB 3.7 ms, 2 MiB 6.0 ms, 8 MiB 20.6 ms,
 * i.e. about 2.1 ms per request plus 2.2 ms per MiB: a request costs as much as reading ~1 MiB.
 * On AWS S3 a request costs more (tens of ms to the first byte) and a connection reads 50-100
 * MB/s, so 1 MiB is the conservative side there too.
 */
export const MERGE_GAP = 1 << 20;

/**
 * Every ranged read is at least this long (unless the directory comes first). Measured on the
 * same gateway: every GET of 1 to 57,344 bytes took 44 ms (median; the server's Nagle delay meets
 * the client's delayed ACK), 64 KiB and more 2.1 ms. Reading 64 KiB costs well under a
 * millisecond more than 1 KiB anywhere.
 */
export const MIN_READ = 64 * 1024;

/** Guess of a local header's length before reading it: its central name and extra, plus slack. */
function headerGuess(t: EntryTable, i: number): number {
  return LOCAL_HEADER_FIXED + t.nameLength[i]! + t.extraLength[i]! + 64;
}

/** Merged ranges covering the wanted headers (indexes into `wanted`, in offset order). */
export function planHeaderReads(t: EntryTable, wanted: number[], limit: number, gap = MERGE_GAP, minRead = MIN_READ): { start: number; end: number; members: number[] }[] {
  const ranges: { start: number; end: number; members: number[] }[] = [];
  for (const i of wanted) {
    const start = t.offset[i]!;
    const end = Math.min(limit, start + headerGuess(t, i));
    const last = ranges[ranges.length - 1];
    if (last !== undefined && start - last.end <= gap) {
      last.end = Math.max(last.end, end);
      last.members.push(i);
    } else ranges.push({ start, end, members: [i] });
  }
  for (const r of ranges) r.end = Math.min(limit, Math.max(r.end, r.start + minRead));
  return ranges;
}

/** Which members "sample" reads: up to {@link SAMPLE_SIZE}, the first and last included. */
export function sampleMembers(order: ArrayLike<number>, n = SAMPLE_SIZE): number[] {
  if (order.length <= n) return Array.from(order);
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(order[Math.round((k * (order.length - 1)) / (n - 1))]!);
  return out;
}

/** Compares a local header with its directory entry (APPNOTE 4.3.7 vs 4.3.12). */
export function compareLocal(t: EntryTable, i: number, h: LocalHeader | { bad: "signature" } | undefined, f: Findings): void {
  const name = t.names[i];
  if (h === undefined || "bad" in h) {
    f.problem("LOCAL_HEADER_INVALID", `no local file header at offset ${t.offset[i]}`, name);
    return;
  }
  t.localLength[i] = h.length;
  const diffs: string[] = [];
  if (decodeName(h) !== name) diffs.push(`name ${JSON.stringify(decodeName(h))}`);
  if (h.method !== t.method[i]) diffs.push(`method ${h.method} (directory ${t.method[i]})`);
  if (h.flags !== t.flags[i]) diffs.push(`flags ${hex(h.flags)} (directory ${hex(t.flags[i]!)})`);
  // Under a data descriptor the local CRC and sizes may be zero (APPNOTE 4.4.4 bit 3).
  const deferred = (h.flags & FLAG_DATA_DESCRIPTOR) !== 0;
  const agree = (local: number, central: number) => local === central || (deferred && local === 0);
  if (!agree(h.crc32, t.crc32[i]!)) diffs.push(`CRC-32 ${hex(h.crc32)} (directory ${hex(t.crc32[i]!)})`);
  if (!agree(h.compressedSize, t.compressedSize[i]!)) diffs.push(`compressed size ${h.compressedSize} (directory ${t.compressedSize[i]})`);
  if (!agree(h.uncompressedSize, t.uncompressedSize[i]!)) diffs.push(`size ${h.uncompressedSize} (directory ${t.uncompressedSize[i]})`);
  if (h.zip64Missing) diffs.push("a size holds 0xFFFFFFFF without a Zip64 extra");
  if (diffs.length > 0) f.problem("LOCAL_HEADER_MISMATCH", `the local header disagrees with the central directory: ${diffs.join(", ")}`, name);
  if (h.extraMalformed) f.problem("EXTRA_FIELD_INVALID", "the local header's extra field block is malformed", name);
}

/**
 * Reads the chosen local headers as merged ranges, `concurrency` at once, each range streamed
 * (memory: one header plus one chunk per range in flight), and compares each with its entry.
 */
export async function checkLocalHeaders(src: RangeSource, t: EntryTable, wanted: number[], limit: number, f: Findings, concurrency = 4): Promise<void> {
  const ranges = planHeaderReads(t, wanted, limit);
  const late: number[] = [];
  const readRange = async (r: (typeof ranges)[number]): Promise<void> => {
    let m = 0;
    let carry = new Uint8Array(0);
    let carryStart = r.start;
    await src.stream(r.start, r.end, (chunk, pos) => {
      let b = chunk;
      let bStart = pos;
      if (carry.length > 0) {
        b = new Uint8Array(carry.length + chunk.length);
        b.set(carry, 0);
        b.set(chunk, carry.length);
        bStart = carryStart;
      }
      while (m < r.members.length) {
        const i = r.members[m]!;
        const p = t.offset[i]! - bStart;
        if (p >= b.length) break;
        const len = localHeaderLength(b, p);
        if (len !== undefined && bStart + p + len > r.end) {
          // Longer than guessed (a big local extra): read it on its own afterwards.
          late.push(i);
          m++;
          continue;
        }
        const h = len === undefined ? undefined : parseLocalHeader(b, p);
        if (h === undefined) break;
        compareLocal(t, i, h, f);
        m++;
      }
      const keepFrom = m < r.members.length ? Math.max(0, t.offset[r.members[m]!]! - bStart) : b.length;
      carry = keepFrom < b.length ? b.slice(keepFrom) : new Uint8Array(0);
      carryStart = bStart + keepFrom;
    });
    // A range that ended before a header did (the object is shorter than the directory claims).
    for (; m < r.members.length; m++) compareLocal(t, r.members[m]!, undefined, f);
  };
  await pool(ranges, readRange, { concurrency });
  for (const i of late) {
    const head = await src.read(t.offset[i]!, Math.min(limit, t.offset[i]! + LOCAL_HEADER_FIXED));
    const len = localHeaderLength(head, 0);
    const whole = len === undefined ? head : await src.read(t.offset[i]!, Math.min(limit, t.offset[i]! + len));
    compareLocal(t, i, parseLocalHeader(whole, 0), f);
  }
}

export { CENTRAL_HEADER_FIXED, EOCD_FIXED };
