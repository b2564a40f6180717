import { ZipError } from "./errors.js";

const EMPTY_BYTES = new Uint8Array(0);

/** UTF-8 bytes of a string (Buffer.from: pooled, faster than TextEncoder for short strings). */
export function utf8(s: string): Uint8Array {
  return s.length === 0 ? EMPTY_BYTES : Buffer.from(s, "utf8");
}

/**
 * Validates an entry name and returns the name to write. Rejects (ERR_INVALID_NAME): empty,
 * absolute (`/x`, `C:`), a `..` segment, a last segment `.` (`.`, `a/.`: the directory itself,
 * not a member), a backslash, NUL, or more than 65,535 bytes (checked later, on the bytes).
 *
 * Empty and `.` segments are collapsed (`a//b`, `./a`, `a/./b` are written `a/b`, `a`, `a/b`):
 * every extractor resolves them that way, so the archive lists what extraction creates and the
 * duplicate check compares the paths that land on disk. Collapsing rather than rejecting keeps
 * legal S3 keys such as `reports//summary.csv` (a prefix joined with a leading `/`) zippable.
 * Directories get their trailing `/` here.
 */
export function checkName(name: string, isDirectory: boolean): string {
  if (typeof name !== "string") throw new ZipError("ERR_INVALID_NAME", "entry name must be a string", { entry: String(name) });
  const fail = (why: string): never => {
    throw new ZipError("ERR_INVALID_NAME", `invalid entry name ${quoteName(name.slice(0, 200))}: ${why}`, { entry: name });
  };
  if (name.length === 0) fail("empty");
  if (name.includes("\0")) fail("contains NUL");
  if (name.includes("\\")) fail("contains a backslash (use '/')");
  if (name.startsWith("/")) fail("absolute path");
  if (!isDirectory && name.endsWith("/")) fail("a file name cannot end with '/'");
  const body = name.endsWith("/") ? name.slice(0, -1) : name;
  const segments = body.split("/");
  const last = segments[segments.length - 1];
  if (last === ".") fail("its last segment is '.' (the directory itself)");
  let kept = 0;
  for (const seg of segments) {
    if (seg === "..") fail("contains a '..' segment");
    if (seg !== "" && seg !== ".") segments[kept++] = seg;
  }
  if (kept === 0) fail("empty once '.' and empty segments are removed");
  const n = kept === segments.length ? body : segments.slice(0, kept).join("/");
  // After collapsing: "./C:/x" must not become a drive-letter path.
  if (/^[A-Za-z]:/.test(n)) fail("absolute path (drive letter)");
  return isDirectory ? n + "/" : n;
}

/**
 * Characters escaped by {@link printableName}: C0 controls (U+0000-U+001F: newline, ESC...), DEL,
 * C1 controls (U+0080-U+009F: U+009B is an 8-bit CSI to some terminals), the bidirectional
 * controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069: they reorder the rest of the
 * line, so `txt.exe` can show as `exe.txt`), the line and paragraph separators U+2028/U+2029,
 * lone surrogates (not encodable as UTF-8), and the backslash (so that the escaping is
 * unambiguous).
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\\]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNPRINTABLE_ALL = new RegExp(UNPRINTABLE.source, "g");
const SHORT_ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * A name (or any string from outside, such as an S3 key) made safe to print on a terminal or in
 * a log line: newline, carriage return, tab and backslash become `\n`, `\r`, `\t`, `\\`;
 * every other control character (C0, DEL, C1), bidirectional control, line or paragraph
 * separator and lone surrogate becomes `\uXXXX` (JSON's notation). Everything else, including
 * any other non-ASCII text, is kept as is, so an ordinary name prints unchanged. The result
 * cannot move the cursor, clear the screen, start an escape sequence, reorder the line or break
 * it in two. For display only: never use the result as a name.
 */
export function printableName(name: string): string {
  if (!UNPRINTABLE.test(name)) return name;
  return name.replace(UNPRINTABLE_ALL, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A name in double quotes for an error message, escaped by {@link printableName}. */
export function quoteName(name: string): string {
  return `"${printableName(name).replaceAll('"', '\\"')}"`;
}

/**
 * The key under which two names collide on a case-insensitive, Unicode-normalising file system
 * (APFS and HFS+ on macOS, NTFS and FAT on Windows): lower case, then Unicode NFC, so `A.txt`
 * and `a.txt`, and `é` precomposed (U+00E9) and decomposed (`e` U+0301), share a key. Simple
 * lower-casing, not full case folding: `ß` and `ss` stay apart, as they do on NTFS.
 */
export function portableKey(name: string): string {
  // ASCII: lower-casing alone is exact, and skips ICU's normalisation.
  return /^[\x00-\x7f]*$/.test(name) ? name.toLowerCase() : name.toLowerCase().normalize("NFC");
}

/** Throws ERR_INVALID_NAME when the UTF-8 name is over the 16-bit length field. */
export function checkNameLength(name: string, bytes: Uint8Array): void {
  if (bytes.length > 0xffff) {
    throw new ZipError("ERR_INVALID_NAME", `entry name is ${bytes.length} bytes in UTF-8, over 65,535`, { entry: name.slice(0, 200) });
  }
}

/** "a/b.txt" -> "a/b (n).txt"; "dir/" -> "dir (n)/"; ".bashrc" -> ".bashrc (n)". */
export function renamed(name: string, n: number): string {
  const dir = name.endsWith("/");
  const body = dir ? name.slice(0, -1) : name;
  const slash = body.lastIndexOf("/");
  const base = body.slice(slash + 1);
  const dot = dir ? -1 : base.lastIndexOf(".");
  const head = body.slice(0, slash + 1);
  const out = dot > 0 ? `${head}${base.slice(0, dot)} (${n})${base.slice(dot)}` : `${head}${base} (${n})`;
  return dir ? out + "/" : out;
}

/** 32-bit FNV-1a over bytes. */
export function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h >>> 0;
}

/** Capacity of one block of a {@link ByteStore}. Any single record must fit in one block. */
export const BLOCK_SIZE = 1 << 20;

/**
 * Append-only byte storage in 1 MiB blocks: a million central directory records live in a
 * few dozen `Uint8Array`s instead of a million JS objects. Positions are
 * `blockIndex * BLOCK_SIZE + offset`.
 */
export class ByteStore {
  readonly blocks: Uint8Array[] = [];
  /** Bytes used in each block (blocks are few: one per MiB). */
  private readonly fill: number[] = [];
  private used = BLOCK_SIZE;
  /** Total bytes appended. */
  length = 0;

  /** Copies `bytes` in and returns their position. */
  append(bytes: Uint8Array): number {
    if (bytes.length > BLOCK_SIZE) throw new RangeError("record larger than a block");
    if (this.used + bytes.length > BLOCK_SIZE) {
      this.blocks.push(new Uint8Array(BLOCK_SIZE));
      this.fill.push(0);
      this.used = 0;
    }
    const blockIndex = this.blocks.length - 1;
    this.blocks[blockIndex].set(bytes, this.used);
    const pos = blockIndex * BLOCK_SIZE + this.used;
    this.used += bytes.length;
    this.fill[blockIndex] = this.used;
    this.length += bytes.length;
    return pos;
  }

  /** A view of `length` bytes at `pos` (never spans blocks: records are appended whole). */
  view(pos: number, length: number): Uint8Array {
    const block = this.blocks[Math.floor(pos / BLOCK_SIZE)];
    const off = pos % BLOCK_SIZE;
    return block.subarray(off, off + length);
  }

  /** The used part of every block, in order (views, no copies). */
  *chunks(): Generator<Uint8Array> {
    for (let i = 0; i < this.blocks.length; i++) yield this.blocks[i].subarray(0, this.fill[i]);
  }

  /** Bytes of memory held (allocated block capacity). */
  get capacity(): number {
    return this.blocks.length * BLOCK_SIZE;
  }
}

/**
 * Open-addressing hash set of names without a JS object per name: each slot holds a 32-bit hash
 * and the position of the name's bytes in a {@link ByteStore} (read back through `nameAt` to
 * confirm a hash collision). 8 bytes per slot, load factor 0.25..0.5: 16-32 bytes per name.
 */
const EMPTY = 0xffffffff;

export class NameTable {
  private hashes: Uint32Array;
  private positions: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(private readonly nameAt: (pos: number) => Uint8Array, initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.hashes = new Uint32Array(cap);
    this.positions = new Uint32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  has(name: Uint8Array, hash = hashBytes(name)): boolean {
    return this.find(name, hash) !== EMPTY;
  }

  /** The stored position of an equal name, or 0xFFFFFFFF when there is none. */
  find(name: Uint8Array, hash = hashBytes(name)): number {
    for (let i = hash & this.mask; ; i = (i + 1) & this.mask) {
      const pos = this.positions[i];
      if (pos === EMPTY) return EMPTY;
      if (this.hashes[i] === hash && equalBytes(this.nameAt(pos), name)) return pos;
    }
  }

  /** Adds a name stored at `pos` (the caller checked {@link has} first). */
  add(hash: number, pos: number): void {
    if (pos >= EMPTY) throw new RangeError("name store over 4 GiB");
    if ((this.count + 1) * 2 > this.hashes.length) this.grow();
    this.place(hash, pos);
    this.count++;
  }

  private place(hash: number, pos: number): void {
    let i = hash & this.mask;
    while (this.positions[i] !== EMPTY) i = (i + 1) & this.mask;
    this.hashes[i] = hash;
    this.positions[i] = pos;
  }

  private grow(): void {
    const oldH = this.hashes;
    const oldP = this.positions;
    const cap = oldH.length * 2;
    this.hashes = new Uint32Array(cap);
    this.positions = new Uint32Array(cap).fill(EMPTY);
    this.mask = cap - 1;
    for (let i = 0; i < oldH.length; i++) if (oldP[i] !== EMPTY) this.place(oldH[i], oldP[i]);
  }

  /** Bytes held by the table's arrays. */
  get capacityBytes(): number {
    return this.hashes.byteLength + this.positions.byteLength;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
