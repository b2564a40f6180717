/**
 * `@zipstream/interop`: reads ZIP archives with independent, external implementations and
 * compares what each of them saw with what the archive was meant to hold.
 *
 * Readers (see {@link ReaderName}): Info-ZIP `unzip`, 7-Zip, Python `zipfile`, libarchive
 * `bsdtar` (seeking and from a pipe), the JDK's `ZipFile` and `ZipInputStream`, yauzl, The
 * Unarchiver (`lsar`/`unar`), and Apache Commons Compress (`ZipFile` and `ZipArchiveInputStream`).
 * Each reader is a function `(archive, options) => Promise<ReaderResult>` that throws a
 * {@link InteropError} carrying the tool's own output when the tool rejects the archive.
 *
 * The harness deliberately does not depend on `@zipstream/core` at run time: the checker must
 * keep working when the encoder under test is broken. Its errors are therefore plain `Error`
 * subclasses with stable `code`s.
 *
 * Install the tools with `scripts/install-readers.sh` (Debian/Ubuntu).
 * @packageDocumentation
 */
import { spawn, type StdioOptions } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import yauzl from "yauzl";

/**
 * Names of the available readers. `bsdtar-stream`, `java-stream` and `commons-stream` read front
 * to back from a pipe/stream (local headers and data descriptors only).
 */
export type ReaderName = "unzip" | "7z" | "python" | "bsdtar" | "bsdtar-stream" | "java" | "java-stream" | "yauzl" | "unar" | "commons" | "commons-stream";

/** Every reader, in the order {@link verifyZip} runs them by default. */
export const ALL_READERS: readonly ReaderName[] = [
  "unzip",
  "7z",
  "python",
  "bsdtar",
  "bsdtar-stream",
  "java",
  "java-stream",
  "yauzl",
  "unar",
  "commons",
  "commons-stream",
];

/**
 * Streaming readers that refuse a stored entry followed by a data descriptor (JDK
 * `ZipInputStream`: "only DEFLATED entries can have EXT descriptor"; Commons
 * `ZipArchiveInputStream` by default: it cannot find the end of stored data it has no size for).
 * Leave them out for archives with stored entries of unknown size or CRC.
 */
export const STREAM_READERS_WITHOUT_STORED_DESCRIPTORS: readonly ReaderName[] = ["java-stream", "commons-stream"];

/**
 * Readers that can decrypt WinZip AES (AE-1/AE-2). With a `password`, the others only list the
 * archive (names, sizes, types), since they cannot read encrypted data at all.
 */
export const AES_READERS: readonly ReaderName[] = ["7z", "bsdtar", "bsdtar-stream"];

export type EntryKind = "file" | "directory" | "symlink";

/** What an archive member is expected to be. A symlink's data/sha256/size describe its target string. */
export interface ExpectedEntry {
  /** Name in the archive; a directory's trailing `/` is optional. */
  name: string;
  /** Hex SHA-256 of the content (or of `data`, which is hashed when given). */
  sha256?: string;
  data?: Uint8Array;
  /** Uncompressed size; defaults to `data.length` when data is given. */
  size?: number;
  /** Default "file". */
  type?: EntryKind;
  /** Unix permission bits (compared as `mode & 0o777`) by readers that report them. */
  mode?: number;
  /** Modification time, compared to the second by readers that honour the extended timestamp. */
  mtime?: Date;
  /** Per-entry comment, compared by readers that report it (Python, Java ZipFile, yauzl). */
  comment?: string;
  /**
   * CRC-32 of the content, compared with the central directory's by readers that report it
   * (Python, yauzl): checks a huge member's content without hashing it.
   */
  crc32?: number;
}

/** One member as a reader reported it. Fields a reader cannot know are left undefined. */
export interface SeenEntry {
  name: string;
  type: EntryKind;
  size?: number;
  sha256?: string;
  mode?: number;
  mtime?: Date;
  comment?: string;
  /** CRC-32 recorded in the central directory (readers that report it). */
  crc32?: number;
}

export interface ReaderResult {
  reader: ReaderName;
  entries: SeenEntry[];
  /** Archive comment, for readers that report it. */
  comment?: string;
  /**
   * True when the reader extracted to disk, so parent directories of files appear even when the
   * archive has no entry for them.
   */
  implicitDirs: boolean;
  /** True when `type: "symlink"` can be told apart from a file by this reader. */
  knowsSymlinks: boolean;
  /** True when `mtime` comes from the extended timestamp (not only the 2-second DOS field). */
  exactMtime: boolean;
  /** Wall time of the reader, in milliseconds. */
  ms: number;
}

export interface ReadOptions {
  /**
   * true (default): extract/read every member and hash it. false: integrity (every CRC still
   * checked) and listing only; members named in `hash` are still hashed (readers that
   * extract do so for at most {@link SAMPLE_LIMIT} of them).
   */
  deep?: boolean;
  /** Names of members to hash when `deep` is false. */
  hash?: readonly string[];
  /** AES password; readers not in {@link AES_READERS} only list the archive. */
  password?: string;
  /**
   * Wall-time limit for this reader, in milliseconds (default {@link DEFAULT_READER_TIMEOUT_MS},
   * or `INTEROP_READER_TIMEOUT_MS` from the environment). When it passes, the reader's child
   * process is killed (SIGKILL), an in-process read (yauzl) is torn down, and the call rejects
   * with an {@link InteropError} `ERR_INTEROP_TIMEOUT` naming the reader and the step it was in.
   */
  timeoutMs?: number;
  /** Aborts the read the same way as a timeout (set by {@link readWith}; may also come from a caller). */
  signal?: AbortSignal;
}

export interface VerifyOptions {
  /** Readers to run; default {@link ALL_READERS}. */
  readers?: readonly ReaderName[];
  /** See {@link ReadOptions.deep}. Default true. */
  deep?: boolean;
  password?: string;
  /** Expected archive comment, compared by readers that report it. */
  comment?: string;
  /** Per-reader wall-time limit; see {@link ReadOptions.timeoutMs}. */
  timeoutMs?: number;
  /**
   * In non-deep mode, hash members whose expected size is at most this many bytes
   * (default 1 MiB). Bounds the time spent on huge members.
   */
  hashUpTo?: number;
}

export type InteropErrorCode = "ERR_INTEROP_READER" | "ERR_INTEROP_MISMATCH" | "ERR_INTEROP_TOOL_MISSING" | "ERR_INTEROP_TIMEOUT";

/** A reader rejected an archive, or saw something else than expected. */
export class InteropError extends Error {
  readonly code: InteropErrorCode;
  readonly reader?: ReaderName;
  readonly entry?: string;
  constructor(code: InteropErrorCode, message: string, opts: { reader?: ReaderName; entry?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "InteropError";
    this.code = code;
    if (opts.reader) this.reader = opts.reader;
    if (opts.entry !== undefined) this.entry = opts.entry;
  }
}

/** At most this many members are extracted by name in non-deep mode (per extracting reader). */
export const SAMPLE_LIMIT = 64;

/**
 * Default wall-time limit of one reader on one archive (10 minutes): far above what any archive
 * of the suite needs on a loaded 2-core machine (the slowest, Python on 4 GiB of deflated data,
 * took under a minute at load average 10), far below CI's budget, so that a hung reader fails
 * the test with a message instead of blocking the run. `INTEROP_READER_TIMEOUT_MS` overrides it.
 */
export const DEFAULT_READER_TIMEOUT_MS = 600_000;

function defaultTimeout(): number {
  const env = Number(process.env.INTEROP_READER_TIMEOUT_MS);
  return Number.isFinite(env) && env > 0 ? env : DEFAULT_READER_TIMEOUT_MS;
}

/**
 * What each running read is doing (the command line, or yauzl's member and byte count), keyed
 * by its abort signal, so that a timeout can say where the reader was stuck.
 */
const steps = new WeakMap<AbortSignal, string>();
/** Live detail for a step whose progress changes too often to record (yauzl's byte count). */
const progress = new WeakMap<AbortSignal, () => string>();

function setStep(signal: AbortSignal | undefined, step: string): void {
  if (signal !== undefined) steps.set(signal, step);
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** Child processes run in UTF-8 and UTC, so names and DOS times decode the same everywhere. */
const CHILD_ENV = { ...process.env, LC_ALL: "C.UTF-8", LANG: "C.UTF-8", TZ: "UTC" };
/** Tool output kept for error messages (the tail is what matters). */
const OUTPUT_TAIL = 4000;

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  /** File fed to stdin (for streaming readers); default no stdin, so no tool can prompt. */
  stdinFile?: string;
  /** Discard stdout (extraction to stdout of huge members). */
  discardStdout?: boolean;
  cwd?: string;
  /** Kills the child (SIGKILL) when aborted; the promise then rejects with the abort reason. */
  signal?: AbortSignal | undefined;
}

function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) return reject(signal.reason);
    setStep(signal, [cmd, ...args].join(" "));
    const stdio: StdioOptions = [opts.stdinFile ? "pipe" : "ignore", opts.discardStdout ? "ignore" : "pipe", "pipe"];
    // With `signal`, Node kills the child with killSignal when it aborts (and emits "error").
    const child = spawn(cmd, args, { stdio, env: CHILD_ENV, cwd: opts.cwd, ...(signal ? { signal, killSignal: "SIGKILL" as const } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    child.on("error", (e: NodeJS.ErrnoException) =>
      reject(
        e.code === "ENOENT"
          ? new InteropError("ERR_INTEROP_TOOL_MISSING", `${cmd} not found; run scripts/install-readers.sh`, { cause: e })
          : signal?.aborted
            ? signal.reason
            : e,
      ),
    );
    let src: ReturnType<typeof createReadStream> | undefined;
    if (opts.stdinFile && child.stdin) {
      src = createReadStream(opts.stdinFile);
      // A reader may stop reading early (and close the pipe); that is its verdict, not ours.
      child.stdin.on("error", () => {});
      src.on("error", reject);
      src.pipe(child.stdin);
    }
    child.on("close", (code, sig) => {
      // The file feeding stdin is not needed once the reader has gone (it may have stopped early).
      src?.destroy();
      if (signal?.aborted) return reject(signal.reason);
      resolve({ code, signal: sig, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") });
    });
  });
}

function tail(s: string): string {
  return s.length > OUTPUT_TAIL ? "…" + s.slice(-OUTPUT_TAIL) : s;
}

function fail(reader: ReaderName, what: string, r: RunResult): never {
  throw new InteropError(
    "ERR_INTEROP_READER",
    `${reader}: ${what} (exit ${r.code ?? r.signal})\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`,
    { reader },
  );
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `zipstream-interop-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (b) => h.update(b))
      .on("error", reject)
      .on("end", () => resolve(h.digest("hex")));
  });
}

/** Lists an extraction directory as the reader saw the archive: names, types, sizes, modes, times, hashes. */
async function walk(root: string, hash: (name: string) => boolean): Promise<SeenEntry[]> {
  const found: SeenEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const d of await readdir(join(root, rel), { withFileTypes: true })) {
      const name = rel ? `${rel}/${d.name}` : d.name;
      const full = join(root, name);
      const st = await lstat(full);
      if (st.isSymbolicLink()) {
        const target = Buffer.from(await readlink(full, { encoding: "buffer" }));
        found.push({ name, type: "symlink", size: target.length, sha256: sha256(target), mtime: st.mtime });
      } else if (st.isDirectory()) {
        found.push({ name, type: "directory", mode: st.mode & 0o7777, mtime: st.mtime });
        await visit(name);
      } else {
        found.push({
          name,
          type: "file",
          size: st.size,
          mode: st.mode & 0o7777,
          mtime: st.mtime,
          ...(hash(name) ? { sha256: await hashFile(full) } : {}),
        });
      }
    }
  };
  await visit("");
  return found;
}

/** Hex SHA-256 of bytes. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function stripSlash(name: string): string {
  return name.endsWith("/") ? name.slice(0, -1) : name;
}

/** Kind from Unix mode bits (APPNOTE 4.4.15: high 16 bits of external attributes when made by Unix). */
function kindFromMode(mode: number, isDir: boolean): EntryKind {
  const fmt = mode & 0o170000;
  if (fmt === 0o120000) return "symlink";
  if (fmt === 0o040000 || isDir) return "directory";
  return "file";
}

/** Names safe to pass to tools that treat arguments as wildcard patterns. */
function literalSafe(name: string): boolean {
  return !/[*?[\]\\]/.test(name) && !name.startsWith("-");
}

/** Up to SAMPLE_LIMIT names spread evenly over the list, first and last included. */
function sampleNames(opts: ReadOptions): string[] {
  const all = (opts.hash ?? []).filter(literalSafe);
  if (all.length <= SAMPLE_LIMIT) return all;
  const step = (all.length - 1) / (SAMPLE_LIMIT - 1);
  return Array.from({ length: SAMPLE_LIMIT }, (_, i) => all[Math.round(i * step)]!);
}

// ---------------------------------------------------------------------------------------------
// Readers

/** Parses `unzip -Z -T -l` (zipinfo) lines: permissions, version, host, size, type, csize, method, time, name. */
const ZIPINFO_LINE = /^([-a-z?][-rwxsStT?]{9})\s+\S+\s+(\S+)\s+(\d+)\s+\S+\s+\d+\s+\S+\s+\d{8}\.\d{6}\s(.*)$/;

function modeFromPerms(p: string): number {
  let m = 0;
  const bits = p.slice(1);
  for (let i = 0; i < 9; i++) if (bits[i] !== "-") m |= 1 << (8 - i);
  if (bits[2] === "s" || bits[2] === "S") m |= 0o4000;
  if (bits[5] === "s" || bits[5] === "S") m |= 0o2000;
  if (bits[8] === "t" || bits[8] === "T") m |= 0o1000;
  return m;
}

/** Info-ZIP UnZip: `unzip -t` for integrity, zipinfo for the listing, `unzip -o -d` to extract. */
export async function readUnzip(archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const t0 = performance.now();
  const listOnly = opts.password !== undefined;
  if (!listOnly) {
    // -q: only the verdict ("No errors detected ...") and errors, not a line per member.
    const t = await run("unzip", ["-t", "-q", archive], { signal: opts.signal });
    if (t.code !== 0 || !/No errors detected/.test(t.stdout)) fail("unzip", "unzip -t failed", t);
  }
  const l = await run("unzip", ["-Z", "-T", "-l", archive], { signal: opts.signal });
  if (l.code !== 0) fail("unzip", "zipinfo listing failed", l);
  const listed: SeenEntry[] = [];
  for (const line of l.stdout.split("\n")) {
    const m = ZIPINFO_LINE.exec(line);
    if (!m) continue;
    const [, perms, host, size, name] = m as unknown as [string, string, string, string, string];
    const type: EntryKind = perms[0] === "d" || name.endsWith("/") ? "directory" : perms[0] === "l" ? "symlink" : "file";
    listed.push({
      name: stripSlash(name),
      type,
      ...(type !== "directory" ? { size: Number(size) } : {}),
      ...(host === "unx" && type !== "symlink" ? { mode: modeFromPerms(perms) } : {}),
    });
  }
  let entries = listed;
  const deep = opts.deep !== false;
  const names = deep ? [] : sampleNames(opts);
  if (!listOnly && (deep || names.length > 0)) {
    entries = await withTempDir("unzip", async (dir) => {
      const x = await run("unzip", ["-o", "-q", archive, ...names, "-d", dir], { signal: opts.signal });
      if (x.code !== 0) fail("unzip", "extraction failed", x);
      const seen = await walk(dir, () => true);
      return mergeExtracted(listed, seen, deep);
    });
  }
  return { reader: "unzip", entries, implicitDirs: deep && !listOnly, knowsSymlinks: true, exactMtime: deep, ms: performance.now() - t0 };
}

/**
 * In deep mode the extraction is the truth (plus listing-only fields); otherwise only the
 * sampled members' hashes and times are taken from it.
 */
function mergeExtracted(listed: SeenEntry[], seen: SeenEntry[], deep: boolean): SeenEntry[] {
  if (deep) {
    const byName = new Map(listed.map((e) => [e.name, e]));
    return seen.map((e) => {
      const l = byName.get(e.name);
      // Modes on disk pass through the process umask for some tools; the listing is exact.
      return { ...e, ...(l?.mode !== undefined ? { mode: l.mode } : {}), ...(l?.comment !== undefined ? { comment: l.comment } : {}) };
    });
  }
  const got = new Map(seen.map((e) => [e.name, e]));
  return listed.map((e) => {
    const s = got.get(e.name);
    return s && s.type === e.type ? { ...e, sha256: s.sha256, mtime: s.mtime } : e;
  });
}

let sevenZipBin: string | undefined;
/** The 7-Zip binary: `7zz` (Debian `7zip` package, current 7-Zip) if present, else `7z` (p7zip-full). */
export async function sevenZipBinary(): Promise<string> {
  if (sevenZipBin) return sevenZipBin;
  for (const bin of ["7zz", "7z"]) {
    try {
      const r = await run(bin, ["i"]);
      if (r.code === 0) return (sevenZipBin = bin);
    } catch {
      // not installed; try the next name
    }
  }
  throw new InteropError("ERR_INTEROP_TOOL_MISSING", "neither 7zz nor 7z found; run scripts/install-readers.sh", { reader: "7z" });
}

/** 7-Zip: `7z t` (any warning fails), `7z l -slt` for the listing, `7z x` to extract. */
export async function read7z(archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const t0 = performance.now();
  const bin = await sevenZipBinary();
  // Always pass -p so 7-Zip never prompts (stdin is closed anyway).
  const pw = `-p${opts.password ?? ""}`;
  const t = await run(bin, ["t", pw, "-bd", archive], { signal: opts.signal });
  if (t.code !== 0 || /WARNING|Warnings:|ERROR/i.test(t.stdout + t.stderr) || !/Everything is Ok/.test(t.stdout))
    fail("7z", "7z t failed", t);
  const l = await run(bin, ["l", "-slt", "-ba", pw, archive], { signal: opts.signal });
  if (l.code !== 0 || /WARNING/i.test(l.stdout + l.stderr)) fail("7z", "7z l failed", l);
  const listed: SeenEntry[] = [];
  for (const block of l.stdout.split(/\n(?=Path = )/)) {
    const f = new Map<string, string>();
    for (const line of block.split("\n")) {
      const i = line.indexOf(" = ");
      if (i > 0) f.set(line.slice(0, i), line.slice(i + 3));
      else if (line.endsWith(" =")) f.set(line.slice(0, -2), "");
    }
    const path = f.get("Path");
    if (path === undefined) continue;
    const attrs = f.get("Attributes") ?? "";
    const perms = /([-dlbcps][-rwxsStT]{9})\s*$/.exec(attrs)?.[1];
    const type: EntryKind = f.get("Folder") === "+" ? "directory" : perms?.[0] === "l" ? "symlink" : "file";
    const comment = f.get("Comment");
    listed.push({
      name: stripSlash(path),
      type,
      ...(type !== "directory" ? { size: Number(f.get("Size")) } : {}),
      ...(perms && type !== "symlink" ? { mode: modeFromPerms(perms) } : {}),
      ...(comment ? { comment } : {}),
    });
  }
  let entries = listed;
  const deep = opts.deep !== false;
  const names = deep ? [] : sampleNames(opts);
  if (deep || names.length > 0) {
    entries = await withTempDir("7z", async (dir) => {
      // -snld: create symlinks even when they point outside (they are data under test here).
      const x = await run(bin, ["x", pw, "-bd", "-y", "-snld", `-o${dir}`, archive, ...names], { signal: opts.signal });
      if (x.code !== 0 || /WARNING/i.test(x.stdout + x.stderr)) fail("7z", "7z x failed", x);
      return mergeExtracted(listed, await walk(dir, () => true), deep);
    });
  }
  return { reader: "7z", entries, implicitDirs: deep, knowsSymlinks: true, exactMtime: deep, ms: performance.now() - t0 };
}

/**
 * The system Python (`/usr/bin/python3`, what install-readers.sh installs) when present: version
 * manager shims on PATH (pyenv) cost seconds per start. `INTEROP_PYTHON` overrides.
 */
function pythonBinary(): string {
  return process.env.INTEROP_PYTHON ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

interface PyHead {
  comment: string;
  count: number;
}
interface PyRec {
  name: string;
  dir: boolean;
  size: number;
  attr: number;
  system: number;
  date_time: number[];
  ext_mtime: number | null;
  comment: string;
  crc: number;
  sha256?: string;
}

/** Python `zipfile`: `testzip()` for every CRC, then reads (and hashes) members, listing names, sizes, attributes, times. */
export async function readPython(archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const t0 = performance.now();
  const deep = opts.deep !== false;
  const listOnly = opts.password !== undefined;
  return withTempDir("python", async (dir) => {
    const namesFile = join(dir, "names.txt");
    await writeFile(namesFile, (opts.hash ?? []).join("\n"));
    const args = [join(HERE, "zipcheck.py"), archive, String(deep), namesFile, ...(listOnly ? ["--list-only"] : [])];
    const r = await run(pythonBinary(), args, { signal: opts.signal });
    if (r.code !== 0) fail("python", "zipfile failed", r);
    const lines = r.stdout.split("\n").filter(Boolean);
    const head = JSON.parse(lines[0] ?? "{}") as PyHead;
    const entries = lines.slice(1).map((l): SeenEntry => {
      const p = JSON.parse(l) as PyRec;
      const unix = p.system === 3;
      const mode = p.attr >>> 16;
      const type = unix ? kindFromMode(mode, p.dir) : p.dir ? "directory" : "file";
      const [y, mo, d, h, mi, s] = p.date_time as [number, number, number, number, number, number];
      return {
        name: stripSlash(p.name),
        type,
        ...(type !== "directory" ? { size: p.size } : {}),
        ...(unix && type !== "symlink" ? { mode: mode & 0o7777 } : {}),
        mtime: p.ext_mtime !== null ? new Date(p.ext_mtime * 1000) : new Date(Date.UTC(y, mo - 1, d, h, mi, s)),
        comment: p.comment,
        ...(type !== "directory" ? { crc32: p.crc } : {}),
        ...(p.sha256 ? { sha256: p.sha256 } : {}),
      };
    });
    if (entries.length !== head.count) throw new InteropError("ERR_INTEROP_READER", `python: ${entries.length} records for ${head.count} entries`, { reader: "python" });
    return { reader: "python", entries, comment: head.comment, implicitDirs: false, knowsSymlinks: true, exactMtime: true, ms: performance.now() - t0 };
  });
}

/** `bsdtar -tf` gives exact names; `-tvf` (same order) gives the type in its first column. */
function bsdtarListing(names: string, verbose: string): SeenEntry[] {
  const types = verbose.split("\n").filter(Boolean).map((l) => l[0]);
  return names
    .split("\n")
    .filter(Boolean)
    .map((n, i): SeenEntry => ({
      name: stripSlash(n),
      type: n.endsWith("/") || types[i] === "d" ? "directory" : types[i] === "l" ? "symlink" : "file",
    }));
}

/**
 * libarchive `bsdtar`. `stream: false` opens the file (libarchive still reads ZIP front to back
 * but may consult the central directory); `stream: true` reads from a pipe on stdin, so only local
 * headers and data descriptors are available (APPNOTE 4.3.9).
 */
export async function readBsdtar(archive: string, opts: ReadOptions = {}, stream = false): Promise<ReaderResult> {
  const t0 = performance.now();
  const reader: ReaderName = stream ? "bsdtar-stream" : "bsdtar";
  const src = stream ? "-" : archive;
  const io: RunOptions = stream ? { stdinFile: archive, signal: opts.signal } : { signal: opts.signal };
  const pw = opts.password !== undefined ? ["--passphrase", opts.password] : [];
  let listed: SeenEntry[];
  if (stream) {
    // One pass over the pipe for listing and integrity: every member is extracted to stdout
    // (which makes libarchive check every CRC) and -v names it on stderr as "x <name>".
    // Types are unknowable from a pipe anyway (see below).
    const t = await run("bsdtar", ["-xvOf", src, ...pw], { ...io, discardStdout: true });
    const lines = t.stderr.split("\n").filter(Boolean);
    if (t.code !== 0 || lines.some((l) => !l.startsWith("x "))) fail(reader, "bsdtar -xvOf (integrity) failed", t);
    listed = bsdtarListing(lines.map((l) => l.slice(2)).join("\n"), "");
  } else {
    const l = await run("bsdtar", ["-tf", src, ...pw], io);
    if (l.code !== 0 || l.stderr.trim()) fail(reader, "bsdtar -tf failed", l);
    const lv = await run("bsdtar", ["-tvf", src, ...pw], io);
    if (lv.code !== 0 || lv.stderr.trim()) fail(reader, "bsdtar -tvf failed", lv);
    listed = bsdtarListing(l.stdout, lv.stdout);
    // Integrity: extracting every member to stdout makes libarchive check every CRC.
    const t = await run("bsdtar", ["-xOf", src, ...pw], { ...io, discardStdout: true });
    if (t.code !== 0 || t.stderr.trim()) fail(reader, "bsdtar -xOf (integrity) failed", t);
  }
  const deep = opts.deep !== false;
  let entries = listed;
  const names = deep ? [] : sampleNames(opts);
  if (deep || names.length > 0) {
    entries = await withTempDir("bsdtar", async (dir) => {
      const x = await run("bsdtar", ["-xf", src, "-C", dir, ...pw, ...names], io);
      if (x.code !== 0 || x.stderr.trim()) fail(reader, "bsdtar -xf failed", x);
      let seen = await walk(dir, () => true);
      // From a pipe, only local headers are seen, and they carry no external attributes
      // (APPNOTE 4.4.15 is central-directory only): modes are defaults and symlinks are files.
      if (stream) seen = seen.map(({ mode: _mode, ...e }) => e);
      return mergeExtracted(listed, seen, deep);
    });
  }
  return { reader, entries, implicitDirs: deep, knowsSymlinks: !stream, exactMtime: deep, ms: performance.now() - t0 };
}

let javaClassDir: Promise<string | undefined> | undefined;
/** Compiles ZipCheck.java once per source version into a cache dir (saves the source launcher's compile per run). */
function compiledJava(): Promise<string | undefined> {
  javaClassDir ??= (async () => {
    const srcPath = join(HERE, "ZipCheck.java");
    const src = await readFile(srcPath);
    const dir = join(tmpdir(), `zipstream-interop-java-${sha256(src).slice(0, 16)}`);
    if (existsSync(join(dir, "ZipCheck.class"))) return dir;
    await mkdir(dir, { recursive: true });
    try {
      const r = await run("javac", ["-d", dir, srcPath]);
      if (r.code === 0) return dir;
    } catch {
      // no javac (JRE only): fall back to the source launcher
    }
    return undefined;
  })();
  return javaClassDir;
}

interface JavaRec {
  name: string;
  dir: boolean;
  size: number;
  mtime: number | null;
  comment: string | null;
  sha256?: string;
}

/**
 * The JDK: `java.util.zip.ZipFile` (central directory; CRC recomputed and compared) or, with
 * `stream`, `ZipInputStream` (local headers; it checks CRCs itself). ZipInputStream cannot read
 * stored entries that have a data descriptor (a JDK limitation, "only DEFLATED entries can have
 * EXT descriptor"), so leave `java-stream` out for archives with stored entries of unknown size.
 */
export async function readJava(archive: string, opts: ReadOptions = {}, stream = false): Promise<ReaderResult> {
  const t0 = performance.now();
  const reader: ReaderName = stream ? "java-stream" : "java";
  const deep = opts.deep !== false;
  const classDir = await compiledJava();
  return withTempDir("java", async (dir) => {
    const namesFile = join(dir, "names.txt");
    await writeFile(namesFile, (opts.hash ?? []).join("\n"));
    const main = classDir ? ["-cp", classDir, "ZipCheck"] : [join(HERE, "ZipCheck.java")];
    const listOnly = opts.password !== undefined;
    if (listOnly && stream) throw new InteropError("ERR_INTEROP_READER", "java-stream cannot list encrypted archives", { reader });
    const r = await run("java", ["-Xss4m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", ...main, stream ? "stream" : "zipfile", archive, String(deep), namesFile], { signal: opts.signal });
    if (r.code !== 0) fail(reader, "java.util.zip failed", r);
    let lines = r.stdout.split("\n").filter(Boolean);
    let comment: string | undefined;
    if (!stream) {
      const head = JSON.parse(lines[0] ?? "{}") as { comment: string | null; count: number };
      comment = head.comment ?? "";
      lines = lines.slice(1);
      if (lines.length !== head.count) throw new InteropError("ERR_INTEROP_READER", `java: ${lines.length} records for ${head.count} entries`, { reader });
    }
    const entries = lines.map((l): SeenEntry => {
      const j = JSON.parse(l) as JavaRec;
      return {
        name: stripSlash(j.name),
        type: j.dir ? "directory" : "file",
        ...(j.dir ? {} : { size: j.size }),
        ...(j.mtime !== null ? { mtime: new Date(j.mtime) } : {}),
        // ZipInputStream sees only local headers, which carry no comment.
        ...(!stream ? { comment: j.comment ?? "" } : {}),
        ...(j.sha256 ? { sha256: j.sha256 } : {}),
      };
    });
    return { reader, entries, ...(comment !== undefined ? { comment } : {}), implicitDirs: false, knowsSymlinks: false, exactMtime: true, ms: performance.now() - t0 };
  });
}

interface LsarEntry {
  XADFileName: string;
  XADFileSize?: number;
  XADIsDirectory?: number;
  XADIsLink?: number;
  XADPosixPermissions?: number;
  XADComment?: string;
  ZipOS?: number;
}

/**
 * The Unarchiver (Debian `unar`): `lsar -t` tests every member (CRC), `lsar -j` lists (JSON),
 * `unar` extracts. Its times come from the DOS field only (it ignores the extended timestamp), so
 * they are not compared.
 */
export async function readUnar(archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const t0 = performance.now();
  const pw = opts.password !== undefined ? ["-p", opts.password] : [];
  const listOnly = opts.password !== undefined && !AES_READERS.includes("unar");
  if (!listOnly) {
    const t = await run("lsar", ["-t", ...pw, archive], { signal: opts.signal });
    // "N passed, 0 failed." is the verdict; a parsing failure stops the listing early with exit 1.
    if (t.code !== 0 || !/\d+ passed, 0 failed\./.test(t.stdout) || /failed!|Data is corrupted/i.test(t.stdout + t.stderr)) fail("unar", "lsar -t failed", t);
  }
  const l = await run("lsar", ["-j", ...pw, archive], { signal: opts.signal });
  let parsed: { lsarError?: number; lsarContents?: LsarEntry[]; lsarProperties?: { XADComment?: string } };
  try {
    // lsar 1.10.1's JSON writer garbles some non-ASCII names (it wrote "x/é" as "x/\0R", a raw
    // NUL inside the string): make the output parseable; in deep mode the names that count are
    // the extracted ones (unar itself decodes them correctly), merged with this listing by name.
    parsed = JSON.parse(l.stdout.replace(/[\u0000-\u0009\u000b-\u001f]/g, "\ufffd"));
  } catch {
    fail("unar", "lsar -j printed no JSON", l);
  }
  if (l.code !== 0 || (parsed.lsarError ?? 0) !== 0) fail("unar", `lsar -j failed (lsarError ${parsed.lsarError})`, l);
  const listed = (parsed.lsarContents ?? []).map((e): SeenEntry => {
    const type: EntryKind = e.XADIsDirectory ? "directory" : e.XADIsLink ? "symlink" : "file";
    return {
      name: stripSlash(e.XADFileName),
      type,
      ...(type !== "directory" ? { size: e.XADFileSize ?? 0 } : {}),
      ...(e.ZipOS === 3 && e.XADPosixPermissions !== undefined && type !== "symlink" ? { mode: e.XADPosixPermissions & 0o7777 } : {}),
      comment: e.XADComment ?? "",
    };
  });
  let entries = listed;
  const deep = opts.deep !== false;
  const names = deep ? [] : sampleNames(opts);
  if (!listOnly && (deep || names.length > 0)) {
    entries = await withTempDir("unar", async (dir) => {
      // -D: no enclosing directory; -f: overwrite; -q: no per-file lines.
      const x = await run("unar", ["-q", "-D", "-f", ...pw, "-o", dir, archive, ...names], { signal: opts.signal });
      if (x.code !== 0) fail("unar", "unar extraction failed", x);
      return mergeExtracted(listed, (await walk(dir, () => true)).map(({ mtime: _m, ...e }) => e), deep);
    });
  }
  return { reader: "unar", entries, comment: parsed.lsarProperties?.XADComment ?? "", implicitDirs: deep && !listOnly, knowsSymlinks: true, exactMtime: false, ms: performance.now() - t0 };
}

/** Commons Compress jar: `INTEROP_COMMONS_JAR`, else Debian's (`libcommons-compress-java`). */
function commonsJar(): string {
  return process.env.INTEROP_COMMONS_JAR ?? "/usr/share/java/commons-compress.jar";
}

let commonsClassDir: Promise<string> | undefined;
/** Compiles CommonsCheck.java against the jar once per source version (javac is required: no source launcher with a class path dependency). */
function compiledCommons(reader: ReaderName): Promise<string> {
  commonsClassDir ??= (async () => {
    const jar = commonsJar();
    if (!existsSync(jar)) throw new InteropError("ERR_INTEROP_TOOL_MISSING", `${jar} not found; run scripts/install-readers.sh`, { reader });
    const srcs = [join(HERE, "CommonsCheck.java"), join(HERE, "ZipCheck.java")];
    const dir = join(tmpdir(), `zipstream-interop-commons-${sha256(Buffer.concat([...(await Promise.all(srcs.map((f) => readFile(f)))), Buffer.from(jar)])).slice(0, 16)}`);
    if (existsSync(join(dir, "CommonsCheck.class"))) return dir;
    await mkdir(dir, { recursive: true });
    const r = await run("javac", ["-cp", jar, "-d", dir, ...srcs]);
    if (r.code !== 0) fail(reader, "javac CommonsCheck.java failed", r);
    return dir;
  })();
  commonsClassDir.catch(() => (commonsClassDir = undefined));
  return commonsClassDir;
}

interface CommonsRec extends JavaRec {
  unix?: boolean;
  mode?: number;
  crc?: number;
}

/**
 * Apache Commons Compress: `ZipFile` (central directory; reports Unix modes, symlinks and
 * comments) or, with `stream`, `ZipArchiveInputStream` with its default settings (local headers
 * and data descriptors; it refuses stored entries with a data descriptor, see
 * {@link STREAM_READERS_WITHOUT_STORED_DESCRIPTORS}). Every CRC is recomputed and compared.
 * Commons Compress cannot decrypt WinZip AES: with a password, `commons` lists only.
 */
export async function readCommons(archive: string, opts: ReadOptions = {}, stream = false): Promise<ReaderResult> {
  const t0 = performance.now();
  const reader: ReaderName = stream ? "commons-stream" : "commons";
  const deep = opts.deep !== false;
  const listOnly = opts.password !== undefined;
  if (listOnly && stream) throw new InteropError("ERR_INTEROP_READER", "commons-stream cannot list encrypted archives", { reader });
  const classDir = await compiledCommons(reader);
  return withTempDir("commons", async (dir) => {
    const namesFile = join(dir, "names.txt");
    await writeFile(namesFile, (opts.hash ?? []).join("\n"));
    const args = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", `${commonsJar()}:${classDir}`, "CommonsCheck", stream ? "stream" : "zipfile", archive, String(deep), namesFile];
    const r = await run("java", [...args, ...(listOnly ? ["--list-only"] : [])], { signal: opts.signal });
    if (r.code !== 0) fail(reader, "commons-compress failed", r);
    let lines = r.stdout.split("\n").filter(Boolean);
    if (!stream) {
      const head = JSON.parse(lines[0] ?? "{}") as { count: number };
      lines = lines.slice(1);
      if (lines.length !== head.count) throw new InteropError("ERR_INTEROP_READER", `commons: ${lines.length} records for ${head.count} entries`, { reader });
    }
    const entries = lines.map((l): SeenEntry => {
      const j = JSON.parse(l) as CommonsRec;
      const unix = j.unix === true && j.mode !== undefined && j.mode !== 0;
      const type: EntryKind = unix ? kindFromMode(j.mode!, j.dir) : j.dir ? "directory" : "file";
      return {
        name: stripSlash(j.name),
        type,
        ...(type !== "directory" ? { size: j.size } : {}),
        ...(unix && type !== "symlink" ? { mode: j.mode! & 0o7777 } : {}),
        ...(j.mtime !== null ? { mtime: new Date(j.mtime) } : {}),
        ...(!stream ? { comment: j.comment ?? "" } : {}),
        ...(j.crc !== undefined && type !== "directory" ? { crc32: j.crc } : {}),
        ...(j.sha256 ? { sha256: j.sha256 } : {}),
      };
    });
    return { reader, entries, implicitDirs: false, knowsSymlinks: !stream, exactMtime: true, ms: performance.now() - t0 };
  });
}

/** yauzl (Node): strict file names, entry sizes validated, every member read and its CRC-32 compared. */
export function readYauzl(archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const t0 = performance.now();
  const deep = opts.deep !== false;
  const toHash = new Set(opts.hash ?? []);
  const listOnly = opts.password !== undefined;
  const err = (msg: string, entry?: string, cause?: unknown): InteropError =>
    new InteropError("ERR_INTEROP_READER", `yauzl: ${msg}`, { reader: "yauzl", ...(entry !== undefined ? { entry } : {}), cause });
  const yopts: yauzl.Options = { lazyEntries: true, autoClose: true, strictFileNames: true, validateEntrySizes: true, decodeStrings: true };
  const signal = opts.signal;
  return new Promise((resolve, reject) => {
    // On abort (timeout), stop the in-process work: destroy the member's stream (which stops
    // inflating) and close the file; the promise rejects with the abort reason.
    let zipFile: yauzl.ZipFile | undefined;
    let current: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
    const onAbort = (): void => {
      current?.destroy?.();
      if (zipFile?.isOpen) zipFile.close();
      reject(signal!.reason);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const settle = <A extends unknown[]>(f: (...a: A) => void) => (...a: A): void => {
      signal?.removeEventListener("abort", onAbort);
      f(...a);
    };
    resolve = settle(resolve);
    reject = settle(reject);
    setStep(signal, "yauzl: opening the archive");
    const opened = (e: Error | null, zip?: yauzl.ZipFile): void => {
      if (e || !zip) return reject(err(`open failed: ${String(e)}`, undefined, e));
      zipFile = zip;
      if (signal?.aborted) return onAbort();
      const entries: SeenEntry[] = [];
      zip.on("error", (e2: unknown) => reject(err(String(e2), undefined, e2)));
      // No archive comment: yauzl decodes it as CP437 regardless of content (the end record has
      // no UTF-8 flag, APPNOTE 4.4.4 bit 11 covers entry names and comments only).
      zip.on("end", () =>
        resolve({ reader: "yauzl", entries, implicitDirs: false, knowsSymlinks: true, exactMtime: true, ms: performance.now() - t0 }),
      );
      zip.on("entry", (entry: yauzl.Entry) => {
        const unix = entry.versionMadeBy >>> 8 === 3;
        const mode = entry.externalFileAttributes >>> 16;
        const isDir = entry.fileName.endsWith("/");
        const type = unix ? kindFromMode(mode, isDir) : isDir ? "directory" : "file";
        const seen: SeenEntry = {
          name: stripSlash(entry.fileName),
          type,
          ...(type !== "directory" ? { size: entry.uncompressedSize } : {}),
          ...(unix && type !== "symlink" ? { mode: mode & 0o7777 } : {}),
          mtime: entry.getLastModDate(),
          comment: (entry as unknown as { fileComment: string }).fileComment,
          ...(type !== "directory" ? { crc32: entry.crc32 >>> 0 } : {}),
        };
        entries.push(seen);
        if (isDir || listOnly) return zip.readEntry();
        zip.openReadStream(entry, (e3, rs) => {
          if (e3 || !rs) return reject(err(`openReadStream: ${String(e3)}`, entry.fileName, e3));
          if (signal?.aborted) return rs.destroy();
          current = rs;
          const hash = deep || toHash.has(entry.fileName) ? createHash("sha256") : undefined;
          let crc = 0;
          let n = 0;
          const step = `yauzl: reading ${JSON.stringify(entry.fileName)} (${entry.uncompressedSize} bytes)`;
          setStep(signal, step);
          rs.on("data", (b: Buffer) => {
            crc = crc32(b, crc);
            hash?.update(b);
            n += b.length;
          });
          // The byte count is reported only when asked (a timeout), not per chunk.
          if (signal) progress.set(signal, () => `${step}, ${n} read`);
          rs.on("error", (e4) => reject(err(`read failed: ${e4.message}`, entry.fileName, e4)));
          rs.on("end", () => {
            current = undefined;
            if (signal) progress.delete(signal);
            if (crc >>> 0 !== entry.crc32 >>> 0)
              return reject(err(`CRC mismatch in ${entry.fileName}: recorded ${entry.crc32.toString(16)}, computed ${(crc >>> 0).toString(16)}`, entry.fileName));
            if (hash) seen.sha256 = hash.digest("hex");
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    };
    // Small archives are read from memory: the same parser, without two file reads per member
    // (which cost ~7x the CPU on 65,536 members). Big ones are read through the file.
    stat(archive).then(
      (st) =>
        st.size <= YAUZL_BUFFER_LIMIT
          ? readFile(archive).then((buf) => yauzl.fromBuffer(buf, yopts, opened), reject)
          : yauzl.open(archive, yopts, opened),
      reject,
    );
  });
}

/** Archives up to this size are given to yauzl as a buffer. */
const YAUZL_BUFFER_LIMIT = 256 * 1024 * 1024;

/**
 * Runs one reader by name, within `opts.timeoutMs` (see {@link ReadOptions.timeoutMs}): on
 * timeout its child process is killed, an in-process read is torn down, and the promise rejects
 * with `ERR_INTEROP_TIMEOUT` naming the reader, the archive and the step it was in.
 */
export async function readWith(reader: ReaderName, archive: string, opts: ReadOptions = {}): Promise<ReaderResult> {
  const { password, timeoutMs = defaultTimeout(), signal: outer, ...rest } = opts;
  if (!(timeoutMs > 0)) throw new TypeError(`timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  const ac = new AbortController();
  const o: ReadOptions = { ...rest, signal: ac.signal };
  // Every reader gets the password: those that cannot decrypt then only list the archive (each
  // reader decides; without it they would try to read the encrypted data and fail).
  if (password !== undefined) o.password = password;
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let onOuterAbort: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    const stop = (reason: unknown): void => {
      ac.abort(reason);
      reject(reason);
    };
    timer = setTimeout(() => {
      const where = progress.get(ac.signal)?.() ?? steps.get(ac.signal) ?? "before its first step";
      stop(
        new InteropError(
          "ERR_INTEROP_TIMEOUT",
          `${reader}: no verdict after ${Math.round(performance.now() - t0)} ms (limit ${timeoutMs} ms) on ${archive}; it was at: ${where}. The reader was stopped.`,
          { reader },
        ),
      );
    }, timeoutMs);
    if (outer?.aborted) stop(outer.reason);
    else if (outer !== undefined) {
      onOuterAbort = () => stop(outer.reason);
      outer.addEventListener("abort", onOuterAbort, { once: true });
    }
  });
  try {
    return await Promise.race([dispatch(reader, archive, o), expired]);
  } finally {
    clearTimeout(timer);
    if (onOuterAbort !== undefined) outer?.removeEventListener("abort", onOuterAbort);
    // Anything the reader left running (a step after the race was lost) is stopped too.
    if (!ac.signal.aborted) ac.abort(new InteropError("ERR_INTEROP_READER", `${reader}: finished`, { reader }));
  }
}

function dispatch(reader: ReaderName, archive: string, o: ReadOptions): Promise<ReaderResult> {
  switch (reader) {
    case "unzip":
      return readUnzip(archive, o);
    case "7z":
      return read7z(archive, o);
    case "python":
      return readPython(archive, o);
    case "bsdtar":
      return readBsdtar(archive, o, false);
    case "bsdtar-stream":
      return readBsdtar(archive, o, true);
    case "java":
      return readJava(archive, o, false);
    case "java-stream":
      return readJava(archive, o, true);
    case "yauzl":
      return readYauzl(archive, o);
    case "unar":
      return readUnar(archive, o);
    case "commons":
      return readCommons(archive, o, false);
    case "commons-stream":
      return readCommons(archive, o, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Comparison

interface NormExpected {
  name: string;
  type: EntryKind;
  size?: number;
  sha256?: string;
  mode?: number;
  mtime?: Date;
  comment?: string;
  crc32?: number;
}

function normalize(expected: readonly ExpectedEntry[]): Map<string, NormExpected> {
  const map = new Map<string, NormExpected>();
  for (const e of expected) {
    const name = stripSlash(e.name);
    const type = e.type ?? (e.name.endsWith("/") ? "directory" : "file");
    const n: NormExpected = { name, type };
    const size = e.size ?? e.data?.length;
    if (size !== undefined && type !== "directory") n.size = size;
    const h = e.sha256 ?? (e.data ? sha256(e.data) : undefined);
    if (h !== undefined && type !== "directory") n.sha256 = h;
    if (e.mode !== undefined) n.mode = e.mode & 0o777;
    if (e.mtime) n.mtime = e.mtime;
    if (e.comment !== undefined) n.comment = e.comment;
    if (e.crc32 !== undefined) n.crc32 = e.crc32 >>> 0;
    if (map.has(name)) throw new TypeError(`expected: duplicate entry name ${JSON.stringify(name)}`);
    map.set(name, n);
  }
  return map;
}

/**
 * Compares one reader's view with the expectation; returns the list of problems (empty when it
 * matches). `requireHash` lists names whose hash this reader must have produced.
 */
export function compareResult(result: ReaderResult, expected: readonly ExpectedEntry[], opts: { comment?: string; requireHash?: ReadonlySet<string> } = {}): string[] {
  const want = normalize(expected);
  const problems: string[] = [];
  const seen = new Map<string, SeenEntry>();
  const parents = new Set<string>();
  for (const s of result.entries) {
    if (seen.has(s.name)) problems.push(`entry ${JSON.stringify(s.name)} seen twice`);
    seen.set(s.name, s);
    for (let i = s.name.indexOf("/"); i >= 0; i = s.name.indexOf("/", i + 1)) parents.add(s.name.slice(0, i));
  }
  for (const [name, w] of want) {
    const s = seen.get(name);
    const q = JSON.stringify(name);
    if (!s) {
      problems.push(`missing entry ${q}`);
      continue;
    }
    // Readers that cannot tell symlinks from files see a symlink as a file holding its target.
    const wType = w.type === "symlink" && !result.knowsSymlinks ? "file" : w.type;
    if (s.type !== wType) problems.push(`entry ${q}: type ${s.type}, expected ${wType}`);
    if (w.size !== undefined && s.size !== undefined && s.size !== w.size) problems.push(`entry ${q}: size ${s.size}, expected ${w.size}`);
    if (w.sha256 !== undefined && s.sha256 !== undefined && s.sha256 !== w.sha256) problems.push(`entry ${q}: content differs (sha256 ${s.sha256}, expected ${w.sha256})`);
    if (w.sha256 !== undefined && s.sha256 === undefined && opts.requireHash?.has(name) && s.type === wType)
      problems.push(`entry ${q}: content was not read`);
    if (w.mode !== undefined && s.mode !== undefined && s.type !== "symlink" && (s.mode & 0o777) !== w.mode)
      problems.push(`entry ${q}: mode ${(s.mode & 0o777).toString(8)}, expected ${w.mode.toString(8)}`);
    if (w.mtime && s.mtime && result.exactMtime && s.type !== "directory" && s.type !== "symlink") {
      // The extended timestamp has 1 s resolution; DOS time (when a reader falls back) 2 s.
      const diff = Math.abs(s.mtime.getTime() - Math.floor(w.mtime.getTime() / 1000) * 1000);
      if (diff > 2000) problems.push(`entry ${q}: mtime ${s.mtime.toISOString()}, expected ${w.mtime.toISOString()}`);
    }
    if (w.comment !== undefined && s.comment !== undefined && s.comment !== w.comment)
      problems.push(`entry ${q}: comment ${JSON.stringify(s.comment)}, expected ${JSON.stringify(w.comment)}`);
    if (w.crc32 !== undefined && s.crc32 !== undefined && s.crc32 !== w.crc32)
      problems.push(`entry ${q}: CRC-32 ${s.crc32.toString(16)}, expected ${w.crc32.toString(16)}`);
  }
  for (const [name, s] of seen) {
    if (want.has(name)) continue;
    if (result.implicitDirs && s.type === "directory" && parents.has(name)) continue;
    problems.push(`unexpected entry ${JSON.stringify(name)} (${s.type})`);
  }
  if (opts.comment !== undefined && result.comment !== undefined && result.comment !== opts.comment)
    problems.push(`archive comment ${JSON.stringify(result.comment)}, expected ${JSON.stringify(opts.comment)}`);
  return problems;
}

/**
 * Has every selected reader read `archive` and compares names, types, sizes, content hashes and,
 * where a reader reports them, modes, times and comments with `expected`. Throws an
 * {@link InteropError} listing every reader that failed and why (at most 20 problems each).
 * Resolves with each reader's result (for timings).
 *
 * Readers run one after the other (each is CPU- or IO-bound; running them in parallel on a small
 * machine only adds contention). Temp dirs are removed.
 */
export async function verifyZip(archive: string, expected: readonly ExpectedEntry[], options: VerifyOptions = {}): Promise<ReaderResult[]> {
  const readers = options.readers ?? (options.password !== undefined ? ALL_READERS.filter((r) => r !== "java-stream" && r !== "commons-stream") : ALL_READERS);
  const deep = options.deep !== false;
  const hashUpTo = options.hashUpTo ?? 1 << 20;
  const hashable = expected.filter(
    (e) => (e.sha256 !== undefined || e.data !== undefined) && (e.type ?? "file") !== "directory" && (e.size ?? e.data?.length ?? 0) <= hashUpTo,
  );
  const hash = deep ? undefined : hashable.map((e) => e.name);
  const results: ReaderResult[] = [];
  const failures: string[] = [];
  for (const reader of readers) {
    let result: ReaderResult;
    try {
      result = await readWith(reader, archive, {
        deep,
        ...(hash ? { hash } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
    } catch (e) {
      failures.push(e instanceof Error ? e.message : `${reader}: ${String(e)}`);
      continue;
    }
    results.push(result);
    const encryptedListOnly = options.password !== undefined && !AES_READERS.includes(reader);
    // Which hashes this reader must have produced: all (deep), the requested ones for in-stream
    // readers, the sampled ones for extracting readers; none when it can only list.
    const inStream = ["python", "java", "java-stream", "yauzl", "commons", "commons-stream"].includes(reader);
    const required = encryptedListOnly
      ? new Set<string>()
      : new Set((deep ? hashable.map((e) => e.name) : inStream ? hash ?? [] : sampleNames({ hash: hash ?? [] })).map(stripSlash));
    const problems = compareResult(result, expected, { ...(options.comment !== undefined ? { comment: options.comment } : {}), requireHash: required });
    if (problems.length > 0)
      failures.push(`${reader}: ${problems.length} problem(s) in ${archive}:\n  ${problems.slice(0, 20).join("\n  ")}${problems.length > 20 ? "\n  …" : ""}`);
  }
  if (process.env.INTEROP_TIMINGS) console.log(`verifyZip ${archive}: ${results.map((r) => `${r.reader} ${Math.round(r.ms)} ms`).join(", ")}`);
  if (failures.length > 0)
    throw new InteropError("ERR_INTEROP_MISMATCH", `${failures.length} of ${readers.length} readers disagree with the expectation:\n${failures.join("\n")}`);
  return results;
}

/** Versions of the installed readers, for logs and reports. */
export async function readerVersions(): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[], pick: RegExp): Promise<string> => {
    try {
      const r = await run(cmd, args);
      return pick.exec(r.stdout + r.stderr)?.[0]?.trim() ?? "unknown";
    } catch {
      return "missing";
    }
  };
  const bin = await sevenZipBinary().catch(() => "7z");
  return {
    unzip: await first("unzip", ["-v"], /UnZip \S+/),
    "7z": `${bin} ` + (await first(bin, ["i"], /7-Zip[^:\n]*\d+\.\d+/)),
    python: await first(pythonBinary(), ["--version"], /Python \S+/),
    bsdtar: await first("bsdtar", ["--version"], /bsdtar \S+ - libarchive \S+/),
    java: await first("java", ["-version"], /version "[^"]+"/),
    unar: await first("unar", ["-v"], /v\d+\.\d+(\.\d+)?/),
    commons: existsSync(commonsJar()) ? `commons-compress ${await first("unzip", ["-p", commonsJar(), "META-INF/MANIFEST.MF"], /(?<=Implementation-Version: )\S+/)}` : "missing",
    yauzl: (JSON.parse(await readFile(join(HERE, "..", "node_modules", "yauzl", "package.json"), "utf8")) as { version: string }).version,
  };
}

/** Writes a readable stream to a file (big archives in tests go to disk, never memory). Resolves with the byte count. */
export async function writeToFile(stream: AsyncIterable<Uint8Array>, path: string): Promise<number> {
  const { pipeline } = await import("node:stream/promises");
  let n = 0;
  await pipeline(
    stream,
    async function* (src: AsyncIterable<Uint8Array>) {
      for await (const b of src) {
        n += b.length;
        yield b;
      }
    },
    createWriteStream(path),
  );
  return n;
}
